//! Pages people trust (issue 14, item 7), over real HTTP on SQLite and PostgreSQL: a tenant's
//! branding set with the CLI and the admin API shows on its pages, whose CSP allows exactly
//! the configured origins; bad colours and URLs are refused with the standard errors; a
//! tenant's scope descriptions show on the consent page in the page's language; pages come in
//! French, Spanish, German and Japanese by `ui_locales` and `Accept-Language`, error pages in
//! plain words; every page labels its inputs; a filled-in username can be swapped for another
//! account.

use crate::common::*;
use serde_json::{Value, json};

/// Settings as the admin API answers them, or its problem details.
async fn settings_call(
    method: &str,
    url: &str,
    bearer: &str,
    body: Option<(&str, String)>,
) -> (u16, String, Value) {
    let mut r = reqwest::Client::new()
        .request(method.parse().unwrap(), url)
        .bearer_auth(bearer);
    if let Some((kind, b)) = body {
        r = r.header("content-type", kind).body(b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    (
        status,
        kind,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn patch(s: &Server, bearer: &str, body: Value) -> (u16, String, Value) {
    settings_call(
        "PATCH",
        &format!("{}/admin/v1/tenants/default/settings", s.base),
        bearer,
        Some(("application/merge-patch+json", body.to_string())),
    )
    .await
}

/// A client_credentials token with `mandate:admin` for the default tenant.
async fn admin_token(s: &Server) -> String {
    let v = s.cli(
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "Ops console",
            "--grant-type",
            "client_credentials",
            "--scope",
            "mandate:admin",
        ],
        None,
    );
    let client = (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().unwrap().to_string(),
    );
    let (status, v) = token(
        &s.issuer("default"),
        &client,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

/// A page with its status, Content-Security-Policy and body.
async fn page_with(url: &str, accept_language: Option<&str>) -> (u16, String, String) {
    let mut r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url);
    if let Some(l) = accept_language {
        r = r.header("accept-language", l);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let csp = r
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, csp, r.text().await.unwrap())
}

/// One directive of a CSP, e.g. `img-src 'self' data:`.
fn directive(csp: &str, name: &str) -> String {
    csp.split(';')
        .map(str::trim)
        .find(|d| d.starts_with(&format!("{name} ")))
        .unwrap_or_default()
        .to_string()
}

/// The `href` of the `<link rel="stylesheet">` that points at `needle`.
fn stylesheet_href(html: &str, needle: &str) -> Option<String> {
    html.split("<link rel=\"stylesheet\" href=\"")
        .skip(1)
        .map(|r| unescape(r.split('"').next().unwrap()))
        .find(|h| h.contains(needle))
}

/// Every visible `<input>` has an id named by a `<label for>`; one `h1`; a `lang`.
fn assert_accessible(what: &str, html: &str) {
    assert!(html.contains("<html lang=\""), "{what}: no lang: {html}");
    assert_eq!(html.matches("<h1").count(), 1, "{what}: one h1: {html}");
    for (i, _) in html.match_indices("<input") {
        let tag = &html[i..i + html[i..].find('>').unwrap()];
        if tag.contains("type=\"hidden\"") {
            continue;
        }
        let id = tag
            .split(" id=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("{what}: an input without id: {tag}"));
        assert!(
            html.contains(&format!("<label for=\"{id}\"")),
            "{what}: no label for {tag}"
        );
    }
    for (i, _) in html.match_indices("<button") {
        let end = i + html[i..].find("</button>").unwrap();
        let text = &html[html[i..].find('>').unwrap() + i + 1..end];
        assert!(!text.trim().is_empty(), "{what}: a button says nothing");
    }
}

async fn branding_by_cli_and_admin_api(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "alice");
    let web = s.create_web_client("default", &[]);
    let (_, challenge) = pkce();
    let sign_in = auth_url(&issuer, &web.0, &challenge, "openid", &[]);

    // Unbranded: Mandate's own look, the plain policy.
    let (status, csp, html) = page_with(&sign_in, None).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(directive(&csp, "img-src"), "img-src 'self' data:");
    assert_eq!(directive(&csp, "style-src"), "style-src 'self'");
    assert!(!html.contains("branding.css") && !html.contains("<header"));

    // Set with the CLI.
    let shown = s.cli(
        &[
            "tenant",
            "set",
            "default",
            "--display-name",
            "Acme Corp",
            "--logo-url",
            "https://cdn.acme.test/img/logo.svg",
            "--primary-color",
            "#0b57d0",
            "--stylesheet-url",
            "https://style.acme.test/brand.css",
        ],
        None,
    );
    assert_eq!(
        shown["settings"]["branding"],
        json!({
            "display_name": "Acme Corp",
            "logo_url": "https://cdn.acme.test/img/logo.svg",
            "primary_color": "#0b57d0",
            "stylesheet_url": "https://style.acme.test/brand.css",
        }),
        "{shown}"
    );
    let (status, csp, html) = page_with(&sign_in, None).await;
    assert_eq!(status, 200);
    assert_accessible("sign-in", &html);
    assert!(
        html.contains("<img class=\"brand-logo\" src=\"https:&#x2f;&#x2f;cdn.acme.test&#x2f;img&#x2f;logo.svg\" alt=\"Acme Corp\">"),
        "{html}"
    );
    assert!(
        html.contains("<title>Sign in – Acme Corp</title>"),
        "{html}"
    );
    assert_eq!(
        directive(&csp, "img-src"),
        "img-src 'self' data: https://cdn.acme.test"
    );
    assert_eq!(
        directive(&csp, "style-src"),
        "style-src 'self' https://style.acme.test"
    );
    assert_eq!(directive(&csp, "script-src"), "script-src 'self'");
    assert!(stylesheet_href(&html, "https://style.acme.test/brand.css").is_some());
    // The colours come as a stylesheet of this tenant (no inline styles).
    assert!(!html.contains("style="), "{html}");
    let css_url = stylesheet_href(&html, "/branding.css?v=").expect("branding.css linked");
    assert!(css_url.starts_with(&issuer), "{css_url}");
    let r = reqwest::get(&css_url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let css = r.text().await.unwrap();
    assert!(
        css.contains("--mandate-primary:#0b57d0;--mandate-on-primary:#ffffff;"),
        "{css}"
    );
    // The account sign-in page names the tenant.
    let (_, _, html) = page_with(&format!("{issuer}/account/login"), None).await;
    assert!(html.contains("your Acme Corp account"), "{html}");
    assert_accessible("account sign-in", &html);

    // Bad values are refused by the CLI and change nothing.
    for (flag, value, says) in [
        ("--primary-color", "red", "primary_color must be a colour"),
        (
            "--primary-color",
            "#fff;}body{x:y",
            "primary_color must be a colour",
        ),
        (
            "--logo-url",
            "http://cdn.acme.test/logo.png",
            "logo_url must be an https URL",
        ),
        (
            "--stylesheet-url",
            "javascript:alert(1)",
            "stylesheet_url must be an https URL",
        ),
        ("--background-color", "#222222", "contrast"),
    ] {
        let (ok, _, err) = s.cli_raw(&["tenant", "set", "default", flag, value], None);
        assert!(!ok, "{flag} {value}");
        assert!(err.contains(says), "{flag} {value}: {err}");
    }

    // The admin API: the same settings, a merge patch changes what it names.
    let admin = admin_token(&s).await;
    let url = format!("{}/admin/v1/tenants/default/settings", s.base);
    let (status, _, v) = settings_call("GET", &url, &admin, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["branding"]["display_name"], "Acme Corp");
    assert_eq!(v["min_password_length"], 8);
    let (status, _, v) = patch(
        &s,
        &admin,
        json!({"branding": {"logo_url": "https://img.example.org/new.png", "stylesheet_url": null}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["branding"]["logo_url"], "https://img.example.org/new.png");
    assert_eq!(v["branding"]["display_name"], "Acme Corp", "untouched");
    assert!(v["branding"].get("stylesheet_url").is_none(), "{v}");
    let (_, csp, html) = page_with(&sign_in, None).await;
    assert_eq!(
        directive(&csp, "img-src"),
        "img-src 'self' data: https://img.example.org"
    );
    assert_eq!(directive(&csp, "style-src"), "style-src 'self'");
    assert!(stylesheet_href(&html, "style.acme.test").is_none());
    // An inline logo needs no origin.
    let (status, _, v) = patch(
        &s,
        &admin,
        json!({"branding": {"logo_url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (_, csp, html) = page_with(&sign_in, None).await;
    assert_eq!(directive(&csp, "img-src"), "img-src 'self' data:");
    assert!(html.contains("src=\"data:image&#x2f;png;base64,"), "{html}");

    // Refusals: RFC 9457 problem details, nothing changes, nothing is recorded.
    let before: Value = settings_call("GET", &url, &admin, None).await.2;
    for (body, says) in [
        (
            json!({"branding": {"primary_color": "red; }"}}),
            "primary_color must be a colour",
        ),
        (
            json!({"branding": {"logo_url": "http://img.example.org/x.png"}}),
            "logo_url must be an https URL",
        ),
        (
            json!({"branding": {"stylesheet_url": "https://a;script-src*.test/x.css"}}),
            "stylesheet_url must be an https URL",
        ),
        (
            json!({"branding": {"display_name": ""}}),
            "display_name must be",
        ),
        (json!({"branding": {"logo": "x"}}), "unknown field"),
        (json!({"colour": "x"}), "unknown field"),
        (
            json!({"scope_descriptions": {"calendar.read": {"German": "x"}}}),
            "invalid language tag",
        ),
        (
            json!({"scope_descriptions": {"two words": {"en": "x"}}}),
            "invalid scope name",
        ),
        (json!(["not", "an", "object"]), "must be a JSON object"),
    ] {
        let (status, kind, v) = patch(&s, &admin, body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(kind, "application/problem+json", "{body}");
        assert_eq!(v["status"], 400);
        assert_eq!(v["error"], "invalid_request");
        assert!(v["detail"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let (status, _, _) =
        settings_call("PATCH", &url, &admin, Some(("text/plain", "{}".into()))).await;
    assert_eq!(status, 415);
    // No token: the admin API's usual 401.
    let r = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(settings_call("GET", &url, &admin, None).await.2, before);

    // Clearing with the CLI brings Mandate's own look back.
    s.cli(&["tenant", "set", "default", "--clear", "branding"], None);
    let (_, csp, html) = page_with(&sign_in, None).await;
    assert_eq!(directive(&csp, "img-src"), "img-src 'self' data:");
    assert!(!html.contains("Acme Corp"));

    // Each accepted change is recorded: CLI set, two patches, CLI clear.
    let pool = s.db().await;
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE kind = 'tenant_settings_changed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 4);
    pool.close().await;
}

#[tokio::test]
async fn branding_by_cli_and_admin_api_sqlite() {
    branding_by_cli_and_admin_api(Backend::Sqlite).await;
}

#[tokio::test]
async fn branding_by_cli_and_admin_api_postgres() {
    branding_by_cli_and_admin_api(Backend::Postgres).await;
}

/// The consent page of a browser whose sign-in page is asked for in `ui_locales`.
async fn consent_page(s: &Server, web: &(String, String), ui_locales: &str) -> String {
    let issuer = s.issuer("default");
    let b = Browser::new();
    let (_, challenge) = pkce();
    let url = auth_url(
        &issuer,
        &web.0,
        &challenge,
        "openid calendar.read files.read",
        &[("ui_locales", ui_locales)],
    );
    let (status, html, _) = b.get(&url).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&format!("<html lang=\"{ui_locales}\">")),
        "{html}"
    );
    let (status, html, _) = b.login(&issuer, &html, "alice", PASSWORD).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("name=\"decision\""), "{html}");
    assert_accessible("consent", &html);
    html
}

async fn scope_descriptions_on_the_consent_page(backend: Backend) {
    let s = Server::start(backend).await;
    s.create_user("default", "alice");
    let web = s.create_web_client(
        "default",
        &[
            "--scope",
            "openid",
            "--scope",
            "calendar.read",
            "--scope",
            "files.read",
        ],
    );
    s.cli(
        &[
            "tenant",
            "set",
            "default",
            "--scope-description",
            "calendar.read",
            "en",
            "See your calendar",
            "--scope-description",
            "calendar.read",
            "de",
            "Ihren Kalender sehen",
            "--scope-description",
            "calendar.read",
            "ja",
            "カレンダーを見る",
        ],
        None,
    );
    let de = consent_page(&s, &web, "de").await;
    assert!(de.contains("Ihren Kalender sehen"), "{de}");
    assert!(de.contains("Ihre Identität bestätigen"), "{de}");
    // A scope nobody described: the catalogue's generic words, in German.
    assert!(de.contains("Die Berechtigung „files.read“ nutzen"), "{de}");
    assert!(de.contains("Zugriff erlauben"), "{de}");
    let ja = consent_page(&s, &web, "ja").await;
    assert!(ja.contains("カレンダーを見る"), "{ja}");
    assert!(ja.contains("本人であることの確認"), "{ja}");
    assert!(ja.contains("アクセスを許可"), "{ja}");
    // No Spanish text: the tenant's English one.
    let es = consent_page(&s, &web, "es").await;
    assert!(es.contains("See your calendar"), "{es}");
    assert!(es.contains("Confirmar tu identidad"), "{es}");

    // Set by the admin API too: French now, German replaced, English kept.
    let admin = admin_token(&s).await;
    let (status, _, v) = patch(
        &s,
        &admin,
        json!({"scope_descriptions": {"calendar.read": {"fr": "Voir votre agenda", "de": "Kalender ansehen"}}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["scope_descriptions"]["calendar.read"]["en"],
        "See your calendar"
    );
    let fr = consent_page(&s, &web, "fr").await;
    assert!(fr.contains("Voir votre agenda"), "{fr}");
    let de = consent_page(&s, &web, "de").await;
    assert!(de.contains("Kalender ansehen"), "{de}");
}

#[tokio::test]
async fn scope_descriptions_on_the_consent_page_sqlite() {
    scope_descriptions_on_the_consent_page(Backend::Sqlite).await;
}

#[tokio::test]
async fn scope_descriptions_on_the_consent_page_postgres() {
    scope_descriptions_on_the_consent_page(Backend::Postgres).await;
}

/// French and Spanish by `ui_locales` and by `Accept-Language`; error pages in plain words of
/// the language, the code in small print.
#[tokio::test]
async fn french_and_spanish_pages() {
    let s = Server::start(Backend::Sqlite).await;
    let issuer = s.issuer("default");
    let web = s.create_web_client("default", &[]);
    let (_, challenge) = pkce();
    for (how, lang, says) in [
        ("ui", "fr", "Connectez-vous pour continuer vers Web App"),
        ("ui", "es", "Inicia sesión para continuar en Web App"),
        ("header", "fr", "Nom d’utilisateur"),
        ("header", "es", "Contraseña"),
    ] {
        let (url, header) = if how == "ui" {
            (
                auth_url(
                    &issuer,
                    &web.0,
                    &challenge,
                    "openid",
                    &[("ui_locales", lang)],
                ),
                None,
            )
        } else {
            (
                auth_url(&issuer, &web.0, &challenge, "openid", &[]),
                Some(format!("{lang}-{};q=1, en;q=0.5", lang.to_uppercase())),
            )
        };
        let (status, _, html) = page_with(&url, header.as_deref()).await;
        assert_eq!(status, 200, "{html}");
        assert!(
            html.contains(&format!("<html lang=\"{lang}\">")),
            "{how} {lang}"
        );
        assert!(html.contains(says), "{how} {lang}: {html}");
        assert_accessible("sign-in", &html);
    }
    // An error page: the person's language, the technical code underneath.
    let bad = format!(
        "{issuer}/authorize?client_id=nobody&response_type=code&redirect_uri=https%3A%2F%2Fx.test%2F"
    );
    for (lang, title) in [
        ("fr", "Un problème est survenu"),
        ("es", "Algo ha salido mal"),
        ("ja", "問題が発生しました"),
    ] {
        let (status, _, html) = page_with(&bad, Some(lang)).await;
        assert_eq!(status, 400, "{html}");
        assert!(html.contains(title), "{lang}: {html}");
        assert!(html.contains("<code class=\"error\">"), "{html}");
        assert!(!html.contains("Something went wrong"), "{html}");
        assert_accessible("error", &html);
    }
}

/// Every page a person sees labels its inputs, has one h1 and buttons that say something; a
/// filled-in username comes with "Not you?", which restarts the request without it.
#[tokio::test]
async fn every_page_is_labelled_and_another_account_can_sign_in() {
    let s = Server::start(Backend::Sqlite).await;
    let issuer = s.issuer("default");
    s.create_user("default", "alice");
    s.create_user("default", "bob");
    let web = s.create_web_client("default", &[]);
    let (_, challenge) = pkce();
    let b = Browser::new();

    let hinted = auth_url(
        &issuer,
        &web.0,
        &challenge,
        "openid email",
        &[("login_hint", "alice"), ("ui_locales", "de")],
    );
    let (status, html, _) = b.get(&hinted).await;
    assert_eq!(status, 200, "{html}");
    assert_accessible("hinted sign-in", &html);
    assert!(html.contains("value=\"alice\""), "{html}");
    assert!(html.contains(" readonly "), "{html}");
    assert!(
        html.contains("Nicht Sie? Mit einem anderen Konto anmelden"),
        "{html}"
    );
    let other = html
        .split("<a href=\"")
        .skip(1)
        .map(|r| unescape(r.split('"').next().unwrap()))
        .find(|h| h.contains("/authorize?"))
        .expect("a link to use another account");
    assert_eq!(query_param(&other, "prompt").as_deref(), Some("login"));
    assert_eq!(query_param(&other, "login_hint"), None);
    assert_eq!(
        query_param(&other, "client_id").as_deref(),
        Some(web.0.as_str())
    );
    assert_eq!(query_param(&other, "state").as_deref(), Some("st-123"));
    assert_eq!(query_param(&other, "ui_locales").as_deref(), Some("de"));
    assert_eq!(
        query_param(&other, "code_challenge").as_deref(),
        Some(challenge.as_str())
    );
    let (status, html, _) = b.get(&other).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        !html.contains("value=\"alice\"") && !html.contains(" readonly "),
        "{html}"
    );
    // Bob signs in there and the flow goes on for him.
    let (status, consent, _) = b.login(&issuer, &html, "bob", PASSWORD).await;
    assert_eq!(status, 200, "{consent}");
    assert!(consent.contains("bob"), "{consent}");
    assert_accessible("consent", &consent);
    // A wrong password: the error is announced and tied to the fields.
    let b2 = Browser::new();
    let (_, form, _) = b2
        .get(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    let (status, html, _) = b2.login(&issuer, &form, "alice", "wrong password").await;
    assert_eq!(status, 401);
    assert!(
        html.contains("<div class=\"error-summary\" id=\"sign-in-error\">"),
        "{html}"
    );
    assert!(
        html.contains("<p role=\"alert\">Invalid username or password.</p>"),
        "{html}"
    );
    assert!(
        html.contains("aria-describedby=\"sign-in-error\""),
        "{html}"
    );
    assert!(
        !html.contains(" readonly "),
        "a typed username stays editable"
    );
    assert_accessible("sign-in with an error", &html);

    // The account pages, the logout confirmation and a message page.
    let (status, _, _) = b.consent(&issuer, &consent, "approve").await;
    assert_eq!(status, 303);
    for path in ["/account/consents", "/account/agents"] {
        let (status, html, _) = b.get(&format!("{issuer}{path}")).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert_accessible(path, &html);
    }
    let (status, html, _) = b.get(&format!("{issuer}/logout")).await;
    assert_eq!(status, 200, "{html}");
    assert_accessible("logout", &html);
    let (status, html, _) = b
        .post_form(&format!("{issuer}/logout/confirm"), &[("csrf", "x")])
        .await;
    assert_eq!(status, 400, "{html}");
    assert_accessible("form expired", &html);
}
