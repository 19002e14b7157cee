//! Second factors in Chromium: a tenant that requires one has the person set up an
//! authenticator app while signing in (QR code and key on the page, a code from the app to
//! confirm), shows the recovery codes once, and at the next sign-in asks for a code; a
//! recovery code works in its place, once. Also the sign-in page in Japanese.

use mandate_core::login::totp::code_for_key;
use serde_json::json;

use crate::common::*;

fn code_now(key: &str, offset_steps: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    code_for_key(key, ((now / 30 + offset_steps) * 30) as u64).unwrap()
}

/// The password form on the page the browser shows.
async fn password(c: &Chromium) {
    c.fill("input[name=username]", "alice").await;
    c.fill("input[name=password]", PASSWORD).await;
    c.click("button[type=submit]").await;
}

/// Past the offer of a passkey, when it shows.
async fn not_now_if_offered(c: &Chromium) {
    if c.count("input[name=skip_passkey]").await > 0 {
        c.click("role=button[name='Not now']").await;
    }
}

#[tokio::test]
async fn an_authenticator_app_set_up_while_signing_in_then_codes_and_a_recovery_code() {
    let (s, c) = super::start(
        Backend::Sqlite,
        "an_authenticator_app_set_up_while_signing_in_then_codes_and_a_recovery_code",
    )
    .await;
    let issuer = s.issuer("default");
    s.create_user("default", "alice");
    let web = s.create_web_client("default", &[]);
    s.cli(
        &["tenant", "set", "default", "--second-factor", "required"],
        None,
    );
    c.capture_redirects(REDIRECT).await;

    // 1. Password, then the enrolment page: QR code and key; a code from the app confirms.
    let (verifier, challenge) = pkce();
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    password(&c).await;
    c.wait_for_selector("#totp-secret").await;
    assert_eq!(c.count("figure.qr svg").await, 1, "the QR code is drawn");
    c.screenshot_for_docs("enrol", "totp-enrol").await;
    let key = c.text("#totp-secret").await;
    c.fill("#totp-code", &code_now(&key, 0)).await;
    c.press("#totp-code", "Enter").await;
    // 2. The recovery codes, shown once.
    c.wait_for_selector("ul.recovery-codes code").await;
    c.screenshot("recovery-codes").await;
    let codes = c
        .evaluate(
            "[...document.querySelectorAll('ul.recovery-codes code')].map(e => e.textContent)",
        )
        .await;
    let codes: Vec<String> = serde_json::from_value(codes).unwrap();
    assert_eq!(codes.len(), 10);
    c.click("role=button[name='Continue']").await;
    not_now_if_offered(&c).await;
    c.wait_for_selector("button[value=approve]").await;
    c.click("button[value=approve]").await;
    let back = c.next_redirect().await;
    let (status, tokens) = token(
        &issuer,
        &web,
        &[
            ("grant_type", "authorization_code"),
            ("code", &query_param(&back, "code").unwrap()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "urn:mandate:acr:mfa");
    assert_eq!(id["amr"], json!(["pwd", "otp"]));

    // 3. Next visit: the password, then a code (the next one: each is accepted once).
    c.cdp("Network.clearBrowserCookies", json!({})).await;
    let (_, challenge) = pkce();
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    password(&c).await;
    c.wait_for_selector("#totp-code").await;
    c.screenshot_for_docs("second-factor", "totp-code").await;
    c.fill("#totp-code", &code_now(&key, 1)).await;
    c.press("#totp-code", "Enter").await;
    not_now_if_offered(&c).await;
    let back = c.next_redirect().await;
    assert!(query_param(&back, "code").is_some(), "{back}");

    // 4. A recovery code in place of the app, once.
    for attempt in 0..2 {
        c.cdp("Network.clearBrowserCookies", json!({})).await;
        let (_, challenge) = pkce();
        c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
            .await;
        password(&c).await;
        c.wait_for_selector("#totp-code").await;
        c.click("summary").await;
        c.fill("#recovery-code", &codes[0]).await;
        c.press("#recovery-code", "Enter").await;
        if attempt == 0 {
            c.wait_for_selector("#remaining").await;
            assert_eq!(
                c.text("#remaining").await,
                "Recovery code accepted. You have 9 left."
            );
            c.screenshot("recovery-code-used").await;
            c.click("role=button[name='Continue']").await;
            not_now_if_offered(&c).await;
            let back = c.next_redirect().await;
            assert!(query_param(&back, "code").is_some(), "{back}");
        } else {
            c.wait_for_selector("role=alert").await;
            assert_eq!(c.count("button[value=approve]").await, 0);
        }
    }
    // The only errors: the refused second use of the recovery code (401).
    let errors = c.errors().await;
    assert!(
        errors
            .iter()
            .all(|e| e.contains("401") && e.contains("/login/second-factor")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn the_sign_in_page_in_japanese() {
    let (s, c) = super::start(Backend::Sqlite, "the_sign_in_page_in_japanese").await;
    let issuer = s.issuer("default");
    let web = s.create_web_client("default", &[]);
    let (_, challenge) = pkce();
    c.goto(&auth_url(
        &issuer,
        &web.0,
        &challenge,
        "openid",
        &[("ui_locales", "ja")],
    ))
    .await;
    c.wait_for_selector("input[name=username]").await;
    assert_eq!(c.attribute("html", "lang").await.as_deref(), Some("ja"));
    assert_eq!(c.text("h1").await, "サインイン");
    c.screenshot_for_docs("sign-in-ja", "sign-in-ja").await;
}

/// A tenant that offers codes by e-mail: after the password, "E-mail me a code", the masked
/// address, the code from the mail (read from the file outbox), and on to the client.
#[tokio::test]
async fn an_emailed_code_as_the_second_step() {
    let outbox = crate::common::mail::Outbox::new();
    let (s, c) = tokio::join!(
        outbox.server(Backend::Sqlite, PublicUrl::Localhost),
        Chromium::launch("an_emailed_code_as_the_second_step")
    );
    let issuer = s.issuer("default");
    s.create_user("default", "alice");
    let pool = s.db().await;
    sqlx::query("UPDATE users SET email_verified = 1 WHERE username = 'alice'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let web = s.create_web_client("default", &[]);
    s.cli(
        &[
            "tenant",
            "set",
            "default",
            "--second-factor",
            "required",
            "--email-code",
            "on",
        ],
        None,
    );
    c.capture_redirects(REDIRECT).await;

    let (_, challenge) = pkce();
    c.goto(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    password(&c).await;
    c.wait_for_selector("#email_code_send").await;
    assert_eq!(c.count("#totp-secret").await, 0, "no app to set up");
    c.screenshot("email-code-offer").await;
    c.click("role=button[name='E-mail me a code']").await;
    c.wait_for_selector("#email-code").await;
    let page = c.text("#email_code").await;
    assert!(page.contains("a•••@example.com"), "{page}");
    assert!(!c.content().await.contains("alice@example.com"));
    c.screenshot("email-code-sent").await;
    let mail = outbox.nth_of(1, "sign-in code").await;
    let code = mail
        .text
        .split(|ch: char| !ch.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("{}", mail.text))
        .to_string();
    c.fill("#email-code", &code).await;
    c.press("#email-code", "Enter").await;
    not_now_if_offered(&c).await;
    c.wait_for_selector("button[value=approve]").await;
    c.click("button[value=approve]").await;
    let back = c.next_redirect().await;
    assert!(query_param(&back, "code").is_some(), "{back}");
    assert!(c.errors().await.is_empty(), "{:?}", c.errors().await);
}
