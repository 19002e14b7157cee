//! Password sign-in through the authorization-code flow, as a person does it in Chromium.

use crate::common::*;

/// A server on localhost with user `alice` and a web client; (server, client, alice's id).
fn setup(s: &Server) -> ((String, String), String) {
    let alice = s.create_user("default", "alice");
    (s.create_web_client("default", &[]), alice)
}

#[tokio::test]
async fn password_sign_in_through_the_code_flow() {
    let (s, c) = super::start(Backend::Sqlite, "password_sign_in_through_the_code_flow").await;
    let issuer = s.issuer("default");
    assert!(issuer.starts_with("http://localhost:"), "{issuer}");
    let (web, alice) = setup(&s);
    let (verifier, challenge) = pkce();
    c.capture_redirects(REDIRECT).await;

    let url = auth_url(&issuer, &web.0, &challenge, "openid profile email", &[]);
    assert_eq!(c.goto(&url).await, Some(200));
    assert_eq!(c.text("h1").await, "Sign in");
    assert_eq!(
        c.text("main h1 + p").await,
        "Sign in to continue to Web App"
    );
    c.wait_for_selector("[data-passkey-signin]").await;
    c.screenshot_for_docs("sign-in", "sign-in").await;
    c.fill("input[name=username]", "alice").await;
    c.fill("input[name=password]", PASSWORD).await;
    c.click("role=button[name='Sign in']").await;
    // The first password sign-in offers a passkey (see browser::passkeys); not now.
    c.wait_for_selector("h1:has-text('Sign in faster next time')")
        .await;
    c.screenshot("passkey-offer").await;
    c.click("role=button[name='Not now']").await;

    c.wait_for_selector("button[value=approve]").await;
    assert!(c.url().await.starts_with(&issuer), "{}", c.url().await);
    assert_eq!(c.text("h1").await, "Authorize access");
    assert!(c.text("main").await.contains("alice"));
    c.screenshot_for_docs("consent", "consent").await;
    assert!(c.captured().await.is_empty(), "no redirect before consent");
    c.click("button[value=approve]").await;

    let back = c.next_redirect().await;
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(query_param(&back, "iss").as_deref(), Some(issuer.as_str()));
    let code = query_param(&back, "code").expect("code in the redirect");
    // The browser shows the capture page at the client's address.
    assert_eq!(c.wait_for_url(REDIRECT).await, back);
    assert_eq!(c.text("#captured-url").await, back);
    c.screenshot("redirect").await;
    assert!(c.errors().await.is_empty(), "{:?}", c.errors().await);

    let (status, tokens) = token(
        &issuer,
        &web,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(id["sub"], alice.as_str());
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert_eq!(id["iss"], issuer.as_str());
    assert_eq!(id["nonce"], "n-456");
}

#[tokio::test]
async fn a_wrong_password_shows_an_alert_and_does_not_redirect() {
    let (s, c) = super::start(
        Backend::Sqlite,
        "a_wrong_password_shows_an_alert_and_does_not_redirect",
    )
    .await;
    let issuer = s.issuer("default");
    let (web, _) = setup(&s);
    let (_, challenge) = pkce();
    c.capture_redirects(REDIRECT).await;
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    assert_eq!(c.count("role=alert").await, 0);
    c.fill("input[name=username]", "alice").await;
    c.fill("input[name=password]", "not the password").await;
    c.press("input[name=password]", "Enter").await;

    c.wait_for_selector("role=alert").await;
    assert_eq!(c.text("role=alert").await, "Invalid username or password.");
    c.screenshot("wrong-password").await;
    assert!(c.url().await.starts_with(&issuer), "{}", c.url().await);
    // The form again, the username kept and the password not.
    assert_eq!(c.value("input[name=username]").await, "alice");
    assert_eq!(c.value("input[name=password]").await, "");
    assert_eq!(c.count("button[value=approve]").await, 0);
    assert!(c.captured().await.is_empty(), "{:?}", c.captured().await);

    // The same form then signs in: the capture above would have seen a redirect.
    c.fill("input[name=password]", PASSWORD).await;
    c.click("role=button[name='Sign in']").await;
    c.click("role=button[name='Not now']").await;
    c.click("button[value=approve]").await;
    let back = c.next_redirect().await;
    assert!(query_param(&back, "code").is_some(), "{back}");
}

/// The sign-in page's language, its English counterpart being checked elsewhere.
async fn assert_german(c: &Chromium) {
    c.wait_for_selector("input[name=username]").await;
    assert_eq!(c.attribute("html", "lang").await.as_deref(), Some("de"));
    assert_eq!(c.text("h1").await, "Anmelden");
    assert_eq!(c.text("label[for=username]").await, "Benutzername");
    assert_eq!(c.text("label[for=password]").await, "Passwort");
    assert_eq!(c.text("button[type=submit]").await, "Anmelden");
}

#[tokio::test]
async fn german_sign_in_page_by_ui_locales() {
    let (s, c) = super::start(Backend::Sqlite, "german_sign_in_page_by_ui_locales").await;
    let issuer = s.issuer("default");
    let (web, _) = setup(&s);
    let (_, challenge) = pkce();
    let extra = [("ui_locales", "de")];
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &extra))
        .await;
    assert_german(&c).await;
    c.screenshot_for_docs("sign-in-de", "sign-in-de").await;
    // The browser itself asks for English: ui_locales wins.
    assert_eq!(c.evaluate("navigator.language").await, "en-US");
}

#[tokio::test]
async fn german_sign_in_page_by_browser_locale() {
    let (s, c) = tokio::join!(
        Server::start_localhost(Backend::Sqlite),
        Chromium::launch_with("german_sign_in_page_by_browser_locale", "de-DE")
    );
    let issuer = s.issuer("default");
    let (web, _) = setup(&s);
    let (_, challenge) = pkce();
    let url = auth_url(&issuer, &web.0, &challenge, "openid", &[]);
    assert_eq!(c.evaluate("navigator.language").await, "de-DE");
    c.goto(&url).await;
    assert_german(&c).await;
    c.screenshot("sign-in-de").await;
    // On to the consent page, in German too.
    c.fill("input[name=username]", "alice").await;
    c.fill("input[name=password]", PASSWORD).await;
    c.click("role=button[name='Anmelden']").await;
    c.click("role=button[name='Jetzt nicht']").await;
    c.wait_for_selector("button[value=approve]").await;
    assert_eq!(c.attribute("html", "lang").await.as_deref(), Some("de"));
    assert_eq!(c.text("h1").await, "Zugriff erlauben");
    assert_eq!(c.text("main h1 + p").await, "Web App möchte:");
    assert_eq!(c.text("button[value=approve]").await, "Zugriff erlauben");
    c.screenshot_for_docs("consent-de", "consent-de").await;
    // The same page for a browser in English.
    c.new_context("en-US").await;
    c.goto(&url).await;
    assert_eq!(c.attribute("html", "lang").await.as_deref(), Some("en"));
    assert_eq!(c.text("h1").await, "Sign in");
}

/// Two nodes behind one public URL: the sign-in page comes from one, the form goes to the
/// other, and the flow ends as if there were one server (the browser keeps one origin).
#[tokio::test]
async fn sign_in_across_two_nodes_behind_one_url() {
    let (mut a, c) =
        super::start(Backend::Postgres, "sign_in_across_two_nodes_behind_one_url").await;
    let b = a.second_node_same_public_url(&[]).await;
    let issuer = a.issuer("default");
    assert_eq!(b.issuer("default"), issuer);
    let (web, _) = setup(&a);
    let (verifier, challenge) = pkce();
    c.capture_redirects(REDIRECT).await;
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    c.fill("input[name=username]", "alice").await;
    c.fill("input[name=password]", PASSWORD).await;
    // Node a is gone: only a request that reaches node b can succeed.
    let public = a.public_base();
    c.reroute(&public, Some(&b.localhost_base())).await;
    a.kill();
    c.click("role=button[name='Sign in']").await;
    c.click("role=button[name='Not now']").await;
    c.click("button[value=approve]").await;
    let back = c.next_redirect().await;
    assert!(c.url().await.starts_with(REDIRECT));
    let code = query_param(&back, "code").expect("code");
    let (status, tokens) = token(
        &format!("{}/t/default", b.base),
        &web,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["iss"],
        issuer.as_str()
    );
}

/// A tenant's branding in the browser: its name and logo in the header (the logo a `data:`
/// image the page's policy lets in), its colours on the page and the primary button, and the
/// page still passing the accessibility checks with them.
#[tokio::test]
async fn a_branded_sign_in_page() {
    let (s, c) = super::start(Backend::Sqlite, "a_branded_sign_in_page").await;
    let issuer = s.issuer("default");
    let (web, _) = setup(&s);
    let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="176" height="40" viewBox="0 0 176 40"><rect width="40" height="40" rx="10" fill="#6a1b9a"/><path d="M11 29 20 11l9 18h-5l-4-9-4 9z" fill="#fff"/><text x="50" y="28" font-family="sans-serif" font-size="22" font-weight="700" fill="#4a148c">Acme Corp</text></svg>"##;
    use base64::Engine as _;
    let logo = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    );
    s.cli(
        &[
            "tenant",
            "set",
            "default",
            "--display-name",
            "Acme Corp",
            "--primary-color",
            "#6a1b9a",
            "--background-color",
            "#f6f1fa",
            "--text-color",
            "#1d1523",
            "--logo-url",
            &logo,
        ],
        None,
    );
    let (_, challenge) = pkce();
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    c.wait_for_selector("header.brand img.brand-logo").await;
    assert_eq!(
        c.attribute("header.brand img", "alt").await.as_deref(),
        Some("Acme Corp")
    );
    // Drawn: the policy let the image in.
    assert!(
        c.evaluate("document.querySelector('img.brand-logo').naturalWidth")
            .await
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    assert!(
        c.title().await.ends_with("Acme Corp"),
        "{}",
        c.title().await
    );
    let style =
        |sel: &str, prop: &str| format!("getComputedStyle(document.querySelector('{sel}')).{prop}");
    assert_eq!(
        c.evaluate(&style("button.button--primary", "backgroundColor"))
            .await,
        "rgb(106, 27, 154)"
    );
    assert_eq!(
        c.evaluate(&style("body", "backgroundColor")).await,
        "rgb(246, 241, 250)"
    );
    c.wait_for_selector("[data-passkey-signin]").await;
    c.screenshot_for_docs("sign-in-branded", "sign-in-branded")
        .await;
    super::accessibility::audit(&c, "sign-in-branded-audit", "button.button--primary").await;
    assert!(c.errors().await.is_empty(), "{:?}", c.errors().await);
}
