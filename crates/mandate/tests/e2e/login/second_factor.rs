//! Second factors over real HTTP on SQLite and PostgreSQL, across two server nodes: enrolling
//! an authenticator app on the account page (the test computes the codes from the key shown),
//! signing in with password + TOTP through the authorization-code flow (`acr` mfa, `amr`
//! `["pwd","otp"]`), a code accepted once, wrong codes throttled and locked out, recovery codes
//! (each once, the count shown), the tenant's `required` policy enrolling at sign-in, clients
//! that always need a second factor, a step-up by `acr_values`, `prompt=none`, the account
//! pages refusing a session that owes a factor, and the admin API and CLI.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mandate_core::login::totp::code_for_key;
use serde_json::Value;

use crate::common::*;

const MFA: &str = "urn:mandate:acr:mfa";

/// An authenticator app: the key shown at enrolment, and the last step it gave a code for (a
/// step is accepted once, so each code is of a later step; waits when it would run ahead).
pub(super) struct App {
    key: String,
    last: u64,
}

fn now_step() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

impl App {
    fn new(key: &str) -> Self {
        App {
            key: key.to_string(),
            last: 0,
        }
    }

    /// A code the server accepts now (a step after the last one used).
    async fn code(&mut self) -> String {
        loop {
            let now = now_step();
            let step = (self.last + 1).max(now - 1);
            if step <= now + 1 {
                self.last = step;
                return code_for_key(&self.key, step * 30).unwrap();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The code last given (to try it again).
    fn last_code(&self) -> String {
        code_for_key(&self.key, self.last * 30).unwrap()
    }
}

/// The text of the element with this id.
fn by_id(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {html}"));
    let open = html[start..].find('>').unwrap() + start + 1;
    let close = html[open..].find('<').unwrap() + open;
    unescape(&html[open..close])
}

/// The recovery codes on a page.
fn recovery_codes(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .map(|p| p[..p.find('<').unwrap()].to_string())
        .collect()
}

/// Sign in to the account pages with a password (`return_to`); the answer after the password.
async fn account_login(
    s: &Server,
    b: &Browser,
    username: &str,
    back: &str,
) -> (u16, String, Option<String>) {
    let issuer = s.issuer("default");
    let (status, html, _) = b
        .get(&format!("{issuer}/account/login?return_to={back}"))
        .await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    b.post_form(
        &format!("{issuer}/account/login"),
        &[
            ("csrf", &csrf),
            ("return_to", back),
            ("username", username),
            ("password", PASSWORD),
        ],
    )
    .await
}

/// Enrol an authenticator app on the account page of a signed-in browser: its key and the
/// recovery codes shown.
pub(super) async fn enrol_on_account_page(s: &Server, b: &Browser) -> (App, Vec<String>) {
    let issuer = s.issuer("default");
    let (status, html, _) = b.get(&format!("{issuer}/account/security")).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let (status, html, _) = b
        .post_form(
            &format!("{issuer}/account/security/totp"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<svg"), "the QR code is inline SVG: {html}");
    let mut app = App::new(&by_id(&html, "totp-secret"));
    // A wrong code: the same key shown again.
    let (status, again, _) = b
        .post_form(
            &format!("{issuer}/account/security/totp/confirm"),
            &[("csrf", &csrf), ("code", "000000x")],
        )
        .await;
    assert_eq!(status, 401, "{again}");
    assert_eq!(by_id(&again, "totp-secret"), app.key);
    let code = app.code().await;
    let (status, html, _) = b
        .post_form(
            &format!("{issuer}/account/security/totp/confirm"),
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    let codes = recovery_codes(&html);
    assert_eq!(codes.len(), 10, "{html}");
    (app, codes)
}

/// A person signed in on the account pages with an authenticator app and recovery codes.
async fn enrolled(s: &Server, username: &str) -> (App, Vec<String>) {
    s.create_user("default", username);
    let b = Browser::new();
    let (status, _, loc) = account_login(s, &b, username, "/account/security").await;
    assert_eq!(
        (status, loc.unwrap().ends_with("/account/security")),
        (303, true)
    );
    enrol_on_account_page(s, &b).await
}

/// Authorize with a password; the answer after the password (the second-factor page).
async fn password_step(
    s: &Server,
    b: &Browser,
    client: &str,
    username: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let issuer = s.issuer("default");
    let url = auth_url(&issuer, client, challenge, "openid profile", extra);
    let (status, html, _) = b.get(&url).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("name=\"password\""), "{html}");
    b.login(&issuer, &html, username, PASSWORD).await
}

/// Post a second factor on the page `html`.
async fn second_factor(
    s: &Server,
    b: &Browser,
    html: &str,
    method: &str,
    code: &str,
) -> (u16, String, Option<String>) {
    let mut form = vec![
        ("csrf".to_string(), hidden(html, "csrf").expect("csrf")),
        ("method".to_string(), method.to_string()),
        ("code".to_string(), code.to_string()),
    ];
    for name in ["interaction", "return_to"] {
        if let Some(v) = hidden(html, name) {
            form.push((name.to_string(), v));
        }
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post_form(
        &format!("{}/login/second-factor", s.issuer("default")),
        &form,
    )
    .await
}

/// Post the "continue" form on `html`.
async fn go_on(s: &Server, b: &Browser, html: &str) -> (u16, String, Option<String>) {
    let mut form = vec![("csrf".to_string(), hidden(html, "csrf").expect("csrf"))];
    for name in ["interaction", "return_to"] {
        if let Some(v) = hidden(html, name) {
            form.push((name.to_string(), v));
        }
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post_form(
        &format!("{}/login/second-factor/continue", s.issuer("default")),
        &form,
    )
    .await
}

/// Approve consent if asked; the redirect to the client.
async fn finish(s: &Server, b: &Browser, r: (u16, String, Option<String>)) -> String {
    let (mut status, mut html, mut loc) = r;
    if status == 200 && html.contains("name=\"decision\"") {
        (status, html, loc) = b.consent(&s.issuer("default"), &html, "approve").await;
    }
    assert_eq!(status, 303, "{html}");
    loc.unwrap()
}

/// Redeem the code of `redirect`; the ID token's claims.
async fn id_claims(s: &Server, client: &(String, String), redirect: &str, verifier: &str) -> Value {
    let code = query_param(redirect, "code").unwrap_or_else(|| panic!("code in {redirect}"));
    let (status, v) = token(
        &s.issuer("default"),
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    claims(v["id_token"].as_str().unwrap())
}

async fn audit_count(s: &Server, kind: &str) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE kind = $1")
        .bind(kind)
        .fetch_one(&s.db().await)
        .await
        .unwrap()
        .get::<i64, _>("n")
}

/// Enrol on one node, sign in on another with password + TOTP (acr mfa, amr pwd+otp); a code
/// works once; a recovery code works once and says how many are left.
async fn totp_and_recovery_codes(backend: Backend) {
    let s = Server::start(backend).await;
    let web = s.create_web_client("default", &["--scope", "openid", "--scope", "profile"]);
    let (mut app, codes) = enrolled(&s, "alice").await;
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 14 && c.matches('-').count() == 2)
    );
    assert_eq!(audit_count(&s, "second_factor_enrolled").await, 1);
    assert_eq!(audit_count(&s, "recovery_codes_generated").await, 1);
    let shown = s.cli(&["user", "methods", "alice", "--tenant", "default"], None);
    assert_eq!(shown["password"], true, "{shown}");
    assert!(shown["totp_enrolled_at"].is_i64(), "{shown}");
    assert_eq!(shown["recovery_codes_left"], 10, "{shown}");
    assert!(!shown.to_string().contains(&app.key), "never the secret");

    let node2 = s.second_node(&[]).await;
    let b = Browser::new();
    let (verifier, challenge) = pkce();
    let (status, page, _) = password_step(&node2, &b, &web.0, "alice", &challenge, &[]).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("value=\"totp\"") && page.contains("value=\"recovery_code\""),
        "{page}"
    );
    assert!(!page.contains("name=\"password\""));
    // A wrong code: the page again (401), nothing gained.
    let (status, again, _) = second_factor(&node2, &b, &page, "totp", "123456").await;
    assert_eq!(status, 401, "{again}");
    let code = app.code().await;
    let r = second_factor(&node2, &b, &again, "totp", &code).await;
    let redirect = finish(&node2, &b, r).await;
    let id = id_claims(&node2, &web, &redirect, &verifier).await;
    assert_eq!(id["acr"], MFA, "{id}");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp"]), "{id}");

    // The same code again, from another browser on the first node: refused.
    let b2 = Browser::new();
    let (_, challenge2) = pkce();
    let (_, page, _) = password_step(&s, &b2, &web.0, "alice", &challenge2, &[]).await;
    let (status, page, _) = second_factor(&s, &b2, &page, "totp", &app.last_code()).await;
    assert_eq!(status, 401, "a code is accepted once: {page}");

    // A recovery code instead (typed in capitals with spaces): accepted, 9 left, then on.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let (status, done, _) = second_factor(&s, &b2, &page, "recovery_code", &typed).await;
    assert_eq!(status, 200, "{done}");
    assert!(by_id(&done, "remaining").contains('9'), "{done}");
    assert_eq!(audit_count(&s, "recovery_code_used").await, 1);
    let redirect = finish(&s, &b2, go_on(&s, &b2, &done).await).await;
    assert!(query_param(&redirect, "code").is_some());
    // Once only.
    let b3 = Browser::new();
    let (_, challenge3) = pkce();
    let (_, page, _) = password_step(&node2, &b3, &web.0, "alice", &challenge3, &[]).await;
    let (status, _, _) = second_factor(&node2, &b3, &page, "recovery_code", &codes[0]).await;
    assert_eq!(status, 401);
    // An unknown method or a bad form changes nothing and is no 500.
    let (status, _, _) = second_factor(&node2, &b3, &page, "sms", "1").await;
    assert_eq!(status, 401);
    let (status, _, _) = b3
        .post_form(
            &format!("{}/login/second-factor", node2.issuer("default")),
            &[("code", "1")],
        )
        .await;
    assert_eq!(status, 400);

    // The account sign-in asks for the second factor too (a recovery code here), then the
    // security page: new recovery codes replace the old, and the app can be removed.
    let b4 = Browser::new();
    let (status, page, _) = account_login(&s, &b4, "alice", "/account/security").await;
    assert_eq!(status, 200, "{page}");
    let (status, done, _) = second_factor(&s, &b4, &page, "recovery_code", &codes[1]).await;
    assert_eq!(status, 200, "{done}");
    let (status, _, loc) = go_on(&s, &b4, &done).await;
    assert_eq!(
        (status, loc.unwrap().ends_with("/account/security")),
        (303, true)
    );
    let issuer = s.issuer("default");
    let (status, html, _) = b4.get(&format!("{issuer}/account/security")).await;
    assert_eq!(status, 200, "{html}");
    assert!(by_id(&html, "recovery-left").contains('8'), "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let (status, html, _) = b4
        .post_form(
            &format!("{issuer}/account/security/recovery-codes"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    let fresh = recovery_codes(&html);
    assert_eq!(fresh.len(), 10);
    assert!(!fresh.contains(&codes[2]));
    assert_eq!(audit_count(&s, "recovery_codes_generated").await, 2);
    // Without the CSRF token: refused, nothing changes.
    let before = snapshot(&s).await;
    let (status, _, _) = b4
        .post_form(&format!("{issuer}/account/security/totp/remove"), &[])
        .await;
    assert_eq!(status, 400);
    assert_eq!(snapshot(&s).await, before);
    let (status, _, _) = b4
        .post_form(
            &format!("{issuer}/account/security/totp/remove"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 303);
    let shown = s.cli(&["user", "methods", "alice", "--tenant", "default"], None);
    assert!(shown["totp_enrolled_at"].is_null(), "{shown}");
    assert_eq!(shown["recovery_codes_left"], 0, "{shown}");
    assert_eq!(audit_count(&s, "second_factor_removed").await, 1);
}

/// Wrong codes are throttled, then locked out: the right code is then refused unchecked, with
/// the same answer; the lockout is recorded.
async fn wrong_codes_lock_out(backend: Backend) {
    let s = Server::start_with(
        backend,
        &[
            ("MANDATE_LOGIN_FAILURES_BEFORE_DELAY", "2"),
            ("MANDATE_LOGIN_FAILURES_BEFORE_LOCKOUT", "3"),
        ],
    )
    .await;
    let web = s.create_web_client("default", &["--scope", "openid", "--scope", "profile"]);
    let (mut app, _) = enrolled(&s, "bob").await;
    let b = Browser::new();
    let (_, challenge) = pkce();
    let (_, mut page, _) = password_step(&s, &b, &web.0, "bob", &challenge, &[]).await;
    for _ in 0..3 {
        let (status, again, _) = second_factor(&s, &b, &page, "totp", "000000").await;
        if status == 429 {
            // The short delay after the second failure: wait it out.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            continue;
        }
        assert_eq!(status, 401, "{again}");
        page = again;
    }
    let (status, again, _) = second_factor(&s, &b, &page, "totp", "000001").await;
    if status == 401 {
        page = again;
    }
    let code = app.code().await;
    let r = b
        .http
        .post(format!("{}/login/second-factor", s.issuer("default")))
        .form(&[
            ("csrf", hidden(&page, "csrf").unwrap()),
            ("interaction", hidden(&page, "interaction").unwrap()),
            ("method", "totp".into()),
            ("code", code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 1, "locked out, not delayed: {wait}");
    assert!(audit_count(&s, "login_locked").await >= 1);
}

/// `required`: a person with no second factor sets one up while signing in (never with
/// `prompt=none`), gets recovery codes, and goes on; a session owing a factor is refused by
/// the account pages, which ask for it.
async fn required_policy_enrols_at_sign_in(backend: Backend) {
    let s = Server::start(backend).await;
    let web = s.create_web_client("default", &["--scope", "openid", "--scope", "profile"]);
    s.create_user("default", "carol");
    let shown = s.cli(
        &["tenant", "set", "default", "--second-factor", "required"],
        None,
    );
    assert_eq!(shown["settings"]["second_factor"], "required", "{shown}");
    let b = Browser::new();
    let (verifier, challenge) = pkce();
    let (status, page, _) = password_step(&s, &b, &web.0, "carol", &challenge, &[]).await;
    assert_eq!(status, 200, "{page}");
    let mut app = App::new(&by_id(&page, "totp-secret"));
    assert!(page.contains("<svg"));

    // Signed in with a password only: prompt=none shows no page.
    let (_, c2) = pkce();
    let none = auth_url(
        &s.issuer("default"),
        &web.0,
        &c2,
        "openid",
        &[("prompt", "none")],
    );
    let (status, _, loc) = b.get(&none).await;
    assert_eq!(status, 303);
    assert_eq!(
        query_param(&loc.unwrap(), "error").as_deref(),
        Some("interaction_required")
    );
    // Nor do the account pages: they ask for the missing factor.
    let (status, _, loc) = b
        .get(&format!("{}/account/consents", s.issuer("default")))
        .await;
    assert_eq!(status, 303);
    let (status, html, _) = b.get(&loc.unwrap()).await;
    assert_eq!(status, 200);
    assert!(html.contains("totp-secret"), "{html}");

    let enrol = |code: String| {
        let page = page.clone();
        let b = &b;
        let issuer = s.issuer("default");
        async move {
            b.post_form(
                &format!("{issuer}/login/second-factor/enrol"),
                &[
                    ("csrf", &hidden(&page, "csrf").unwrap()),
                    ("interaction", &hidden(&page, "interaction").unwrap()),
                    ("code", &code),
                ],
            )
            .await
        }
    };
    let (status, _, _) = enrol("999999".into()).await;
    assert_eq!(status, 401);
    let (status, html, _) = enrol(app.code().await).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(recovery_codes(&html).len(), 10);
    let redirect = finish(&s, &b, go_on(&s, &b, &html).await).await;
    let id = id_claims(&s, &web, &redirect, &verifier).await;
    assert_eq!(
        (id["acr"].as_str(), &id["amr"]),
        (Some(MFA), &serde_json::json!(["pwd", "otp"]))
    );
    // Now the account pages are open to this session.
    let (status, _, _) = b
        .get(&format!("{}/account/consents", s.issuer("default")))
        .await;
    assert_eq!(status, 200);

    // The next sign-in asks for the code, not for enrolment.
    let b2 = Browser::new();
    let (_, c3) = pkce();
    let (_, page, _) = password_step(&s, &b2, &web.0, "carol", &c3, &[]).await;
    assert!(
        page.contains("value=\"totp\"") && !page.contains("totp-secret"),
        "{page}"
    );
    // And the account sign-in asks for it too.
    let b3 = Browser::new();
    let (status, page, _) = account_login(&s, &b3, "carol", "/account/security").await;
    assert_eq!(status, 200, "{page}");
    let (status, _, loc) = second_factor(&s, &b3, &page, "totp", &app.code().await).await;
    assert_eq!(status, 303);
    assert!(loc.unwrap().ends_with("/account/security"));
}

/// Clients listed in `second_factor_clients` need a second factor even under `optional`.
async fn clients_that_need_a_second_factor(backend: Backend) {
    let s = Server::start(backend).await;
    let strict = s.create_web_client("default", &["--scope", "openid"]);
    let lax = s.create_web_client("default", &["--scope", "openid"]);
    s.create_user("default", "dave");
    s.cli(
        &[
            "tenant",
            "set",
            "default",
            "--second-factor-client",
            &strict.0,
        ],
        None,
    );
    let (ok, _, err) = s.cli_raw(
        &["tenant", "set", "default", "--second-factor-client", "nope"],
        None,
    );
    assert!(!ok && err.contains("not found"), "{err}");
    let b = Browser::new();
    let (_, c) = pkce();
    let (status, page, _) = password_step(&s, &b, &lax.0, "dave", &c, &[]).await;
    assert!(
        status == 303 || page.contains("name=\"decision\""),
        "{status} {page}"
    );
    let b = Browser::new();
    let (_, c) = pkce();
    let (status, page, _) = password_step(&s, &b, &strict.0, "dave", &c, &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("totp-secret"), "{page}");
    let shown = s.cli(
        &["tenant", "set", "default", "--no-second-factor-clients"],
        None,
    );
    assert_eq!(
        shown["settings"]["second_factor_clients"],
        serde_json::json!([])
    );
    let b = Browser::new();
    let (_, c) = pkce();
    let (status, page, _) = password_step(&s, &b, &strict.0, "dave", &c, &[]).await;
    assert!(
        status == 303 || page.contains("name=\"decision\""),
        "{status} {page}"
    );
}

/// `acr_values=urn:mandate:acr:mfa` on a password-only session: a step-up that asks only for
/// the second factor (never with `prompt=none`); the ID token has acr mfa, amr pwd+otp and a
/// new auth_time.
async fn step_up_by_acr_values(backend: Backend) {
    let s = Server::start(backend).await;
    let web = s.create_web_client("default", &["--scope", "openid", "--scope", "profile"]);
    s.create_user("default", "erin");
    // Signed in with a password while erin has no second factor.
    let b = Browser::new();
    let (verifier, challenge) = pkce();
    let r = password_step(&s, &b, &web.0, "erin", &challenge, &[]).await;
    let first = id_claims(&s, &web, &finish(&s, &b, r).await, &verifier).await;
    assert_eq!(first["amr"], serde_json::json!(["pwd"]));
    // Then she sets up an app in another browser.
    let other = Browser::new();
    let (status, _, _) = account_login(&s, &other, "erin", "/account/security").await;
    assert_eq!(status, 303);
    let (mut app, _) = enrol_on_account_page(&s, &other).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let issuer = s.issuer("default");
    let (_, c) = pkce();
    let url = auth_url(
        &issuer,
        &web.0,
        &c,
        "openid",
        &[("acr_values", MFA), ("prompt", "none")],
    );
    let (status, _, loc) = b.get(&url).await;
    assert_eq!(status, 303);
    assert_eq!(
        query_param(&loc.unwrap(), "error").as_deref(),
        Some("login_required")
    );
    let (verifier, challenge) = pkce();
    let url = auth_url(
        &issuer,
        &web.0,
        &challenge,
        "openid profile",
        &[("acr_values", MFA)],
    );
    let (status, page, _) = b.get(&url).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("value=\"totp\"") && !page.contains("name=\"password\""),
        "{page}"
    );
    let r = second_factor(&s, &b, &page, "totp", &app.code().await).await;
    let id = id_claims(&s, &web, &finish(&s, &b, r).await, &verifier).await;
    assert_eq!(id["acr"], MFA, "{id}");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp"]), "{id}");
    assert!(
        id["auth_time"].as_i64() > first["auth_time"].as_i64(),
        "{id} {first}"
    );
}

/// The admin API and the CLI: a person's methods, resetting a second factor, removing a
/// passkey; audited; refusals change nothing.
async fn administration(backend: Backend) {
    let s = Server::start(backend).await;
    let (_app, _) = enrolled(&s, "frank").await;
    let ops = s.cli(
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "Ops",
            "--grant-type",
            "client_credentials",
            "--scope",
            "mandate:admin",
        ],
        None,
    );
    let ops = (
        ops["client_id"].as_str().unwrap().to_string(),
        ops["client_secret"].as_str().unwrap().to_string(),
    );
    let (_, v) = token(
        &s.issuer("default"),
        &ops,
        &[("grant_type", "client_credentials")],
    )
    .await;
    let bearer = v["access_token"].as_str().unwrap().to_string();
    let base = format!("{}/admin/v1/tenants/default/users", s.base);
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, url: String, auth: bool| {
        let mut r = http.request(method, url);
        if auth {
            r = r.bearer_auth(&bearer);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            let text = r.text().await.unwrap();
            (
                status,
                ct,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    let (status, _, v) = call(reqwest::Method::GET, format!("{base}/frank/methods"), true).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["password"], true);
    assert_eq!(v["passkeys"], serde_json::json!([]));
    assert!(v["totp_enrolled_at"].is_i64());
    assert_eq!(v["recovery_codes_left"], 10);
    let (status, _, _) = call(reqwest::Method::GET, format!("{base}/frank/methods"), false).await;
    assert_eq!(status, 401);
    let (status, ct, v) = call(reqwest::Method::GET, format!("{base}/nobody/methods"), true).await;
    assert_eq!(status, 404, "{v}");
    // The admin API's error body (as for agents and roles).
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(v["error"], "invalid_request", "{v}");
    let before = snapshot(&s).await;
    let (status, _, _) = call(
        reqwest::Method::DELETE,
        format!("{base}/frank/passkeys/nope"),
        true,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(snapshot(&s).await, before);

    let (status, _, _) = call(
        reqwest::Method::DELETE,
        format!("{base}/frank/methods/totp"),
        true,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, _) = call(
        reqwest::Method::DELETE,
        format!("{base}/frank/methods/totp"),
        true,
    )
    .await;
    assert_eq!(status, 404);
    let shown = s.cli(&["user", "methods", "frank", "--tenant", "default"], None);
    assert_eq!(
        (
            shown["totp_enrolled_at"].is_null(),
            &shown["recovery_codes_left"]
        ),
        (true, &Value::from(0))
    );
    assert_eq!(audit_count(&s, "second_factor_removed").await, 1);

    // The CLI resets too (after the person set one up again); nothing to reset is an error.
    let b = Browser::new();
    let (status, _, _) = account_login(&s, &b, "frank", "/account/security").await;
    assert_eq!(status, 303);
    enrol_on_account_page(&s, &b).await;
    s.cli(
        &[
            "user",
            "reset-second-factor",
            "frank",
            "--tenant",
            "default",
        ],
        None,
    );
    let (ok, _, err) = s.cli_raw(
        &[
            "user",
            "reset-second-factor",
            "frank",
            "--tenant",
            "default",
        ],
        None,
    );
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, _, err) = s.cli_raw(
        &[
            "user",
            "remove-passkey",
            "frank",
            "nope",
            "--tenant",
            "default",
        ],
        None,
    );
    assert!(!ok && err.contains("not found"), "{err}");
    assert_eq!(audit_count(&s, "second_factor_removed").await, 2);
    // Signing in again needs no second factor.
    let web = s.create_web_client("default", &["--scope", "openid"]);
    let b = Browser::new();
    let (_, c) = pkce();
    let (status, page, _) = password_step(&s, &b, &web.0, "frank", &c, &[]).await;
    assert!(
        status == 303 || page.contains("name=\"decision\""),
        "{status} {page}"
    );
}

both_backends!(
    totp_and_recovery_codes,
    wrong_codes_lock_out,
    required_policy_enrols_at_sign_in,
    clients_that_need_a_second_factor,
    step_up_by_acr_values,
    administration,
);
