//! A one-time code by e-mail as a second factor, over real HTTP on SQLite and PostgreSQL with
//! the file outbox (`common::mail`): the tenant's `email_code` setting (off: not offered),
//! only to a person with a verified address, the address masked, the code sent on one node and
//! typed on another, single use, wrong codes throttled and locked out (audited with the
//! method); and the steps the risk policy owes (`new_device=second_factor`, `=passkey`): never
//! met by enrolling an authenticator app, met by the code to a verified address even where the
//! tenant does not offer it, refused (`unmet_authentication_requirements`, audited) otherwise.

use serde_json::Value;

use crate::common::mail::{Mail, Outbox};
use crate::common::*;

const MFA: &str = "urn:mandate:acr:mfa";

/// A person with a verified address (verification by link is tested in `recovery.rs`).
async fn verified(s: &Server, username: &str) {
    s.create_user("default", username);
    let pool = s.db().await;
    sqlx::query("UPDATE users SET email_verified = 1 WHERE username = $1")
        .bind(username)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// The subject of the sign-in code mail (security notices may come in between).
const CODE_MAIL: &str = "sign-in code";

/// The 6-digit code in a sign-in code mail.
fn code_in(m: &Mail) -> String {
    m.text
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("a code in {}", m.text))
        .to_string()
}

/// Start a sign-in at `issuer` and submit the password: the answer.
async fn password_step(
    b: &Browser,
    issuer: &str,
    client: &str,
    username: &str,
    challenge: &str,
) -> (u16, String, Option<String>) {
    let url = auth_url(issuer, client, challenge, "openid profile", &[]);
    let (status, html, _) = b.get(&url).await;
    assert_eq!(status, 200, "{html}");
    b.login(issuer, &html, username, PASSWORD).await
}

/// The hidden fields a second-factor form carries, plus `extra`.
fn form_of(html: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut form = vec![("csrf".to_string(), hidden(html, "csrf").expect("csrf"))];
    for name in ["interaction", "return_to"] {
        if let Some(v) = hidden(html, name) {
            form.push((name.to_string(), v));
        }
    }
    form.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    form
}

async fn post(b: &Browser, url: &str, form: &[(String, String)]) -> (u16, String, Option<String>) {
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post_form(url, &form).await
}

/// Press "E-mail me a code" on the page `html`, posting to `base` (an issuer).
async fn send_code(b: &Browser, base: &str, html: &str) -> (u16, String, Option<String>) {
    post(
        b,
        &format!("{base}/login/second-factor/email-code"),
        &form_of(html, &[]),
    )
    .await
}

/// Type `code` on the page `html`.
async fn type_code(
    b: &Browser,
    base: &str,
    html: &str,
    code: &str,
) -> (u16, String, Option<String>) {
    post(
        b,
        &format!("{base}/login/second-factor"),
        &form_of(html, &[("method", "email_code"), ("code", code)]),
    )
    .await
}

/// Approve consent if asked; the redirect to the client.
async fn finish(b: &Browser, issuer: &str, r: (u16, String, Option<String>)) -> String {
    let (mut status, mut html, mut loc) = r;
    if status == 200 && html.contains("name=\"decision\"") {
        (status, html, loc) = b.consent(issuer, &html, "approve").await;
    }
    assert_eq!(status, 303, "{html}");
    loc.unwrap()
}

/// Redeem the code of `redirect`; the ID token's claims.
async fn id_claims(
    issuer: &str,
    client: &(String, String),
    redirect: &str,
    verifier: &str,
) -> Value {
    let code = query_param(redirect, "code").unwrap_or_else(|| panic!("code in {redirect}"));
    let (status, v) = token(
        issuer,
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

/// Audit records of `kind`: (reason, detail).
async fn audit(s: &Server, kind: &str) -> Vec<(String, Value)> {
    let pool = s.db().await;
    let rows: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT reason, detail FROM audit_events WHERE kind = $1 ORDER BY seq")
            .bind(kind)
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows.into_iter()
        .map(|(r, d)| (r.unwrap_or_default(), serde_json::from_str(&d).unwrap()))
        .collect()
}

/// Under `required`: not offered while the setting is off (enrol an app instead); on, a person
/// with a verified address gets a code by e-mail (the address masked), sent on one node and
/// typed on the other, once; a person without one is not offered it.
async fn password_and_email_code(backend: Backend) {
    let outbox = Outbox::new();
    let (k, v) = outbox.env();
    let s = Server::start_with(backend, &[(k, &v)]).await;
    let issuer = s.issuer("default");
    let web = s.create_web_client("default", &["--scope", "openid", "--scope", "profile"]);
    verified(&s, "kim").await;
    s.create_user("default", "lou");
    s.cli(
        &["tenant", "set", "default", "--second-factor", "required"],
        None,
    );

    // Off (the default): a person with no app sets one up; no code by e-mail.
    let b = Browser::new();
    let (_, challenge) = pkce();
    let (status, page, _) = password_step(&b, &issuer, &web.0, "kim", &challenge).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("totp-secret"), "{page}");
    assert!(!page.contains("email_code_send"), "{page}");

    let shown = s.cli(&["tenant", "set", "default", "--email-code", "on"], None);
    assert_eq!(shown["settings"]["email_code"], true, "{shown}");

    // On: after the password, "E-mail me a code" instead of enrolment.
    let b = Browser::new();
    let (verifier, challenge) = pkce();
    let (status, page, _) = password_step(&b, &issuer, &web.0, "kim", &challenge).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"email_code_send\""), "{page}");
    assert!(!page.contains("totp-secret"), "{page}");
    let (status, sent, _) = send_code(&b, &issuer, &page).await;
    assert_eq!(status, 200, "{sent}");
    assert!(sent.contains("k•••@example.com"), "{sent}");
    assert!(!sent.contains("kim@example.com"), "never the whole address");
    assert!(
        sent.contains("for=\"email-code\""),
        "a labelled field: {sent}"
    );
    let mail = outbox.nth_of(1, CODE_MAIL).await;
    assert_eq!(mail.to, "kim@example.com");
    let first = code_in(&mail);

    // A wrong code: asked again, with the field.
    let wrong = if first == "000000" {
        "000001"
    } else {
        "000000"
    };
    let (status, again, _) = type_code(&b, &issuer, &sent, wrong).await;
    assert_eq!(status, 401, "{again}");
    assert!(again.contains("id=\"email-code\""), "{again}");

    // A new code replaces the first; typed on another node.
    let (status, resent, _) = send_code(&b, &issuer, &again).await;
    assert_eq!(status, 200, "{resent}");
    let code = code_in(&outbox.nth_of(2, CODE_MAIL).await);
    let node2 = s.second_node_same_public_url(&[(k, &v)]).await;
    let on_node2 = format!("{}/t/default", node2.base);
    if code != first {
        let (status, _, _) = type_code(&b, &on_node2, &resent, &first).await;
        assert_eq!(status, 401, "the replaced code");
    }
    let r = type_code(&b, &on_node2, &resent, &code).await;
    let redirect = finish(&b, &issuer, r).await;
    let id = id_claims(&issuer, &web, &redirect, &verifier).await;
    assert_eq!(
        (id["acr"].as_str(), &id["amr"]),
        (Some(MFA), &serde_json::json!(["pwd", "otp"]))
    );

    // Once only: another sign-in typing the used code is refused.
    let b2 = Browser::new();
    let (_, challenge) = pkce();
    let (_, page, _) = password_step(&b2, &issuer, &web.0, "kim", &challenge).await;
    let (status, _, _) = type_code(&b2, &issuer, &page, &code).await;
    assert_eq!(status, 401);

    // No verified address: not offered (an app to set up instead), and asking for a code
    // anyway sends nothing.
    let b3 = Browser::new();
    let (_, challenge) = pkce();
    let (status, page, _) = password_step(&b3, &issuer, &web.0, "lou", &challenge).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("totp-secret") && !page.contains("email_code_send"));
    let (status, _, _) = send_code(&b3, &issuer, &page).await;
    assert_eq!(status, 400);
    outbox.stays_at_of(2, CODE_MAIL).await;

    // On the trail: the factor added by e-mail code, the wrong codes with the method.
    let added = audit(&s, "session_factor_added").await;
    assert!(
        added.iter().any(|(_, d)| d["method"] == "email_code"),
        "{added:?}"
    );
    let failed = audit(&s, "login_failed").await;
    assert!(
        failed
            .iter()
            .any(|(r, d)| r == "wrong code" && d["method"] == "email_code"),
        "{failed:?}"
    );
}

/// Wrong e-mailed codes run into the same limits as authenticator codes: delayed, then locked
/// out (429 with Retry-After, even for the right code), recorded as `login_locked`.
async fn wrong_email_codes_lock_out(backend: Backend) {
    let outbox = Outbox::new();
    let (k, v) = outbox.env();
    let s = Server::start_with(
        backend,
        &[
            (k, &v),
            ("MANDATE_LOGIN_FAILURES_BEFORE_DELAY", "2"),
            ("MANDATE_LOGIN_FAILURES_BEFORE_LOCKOUT", "3"),
        ],
    )
    .await;
    let issuer = s.issuer("default");
    let web = s.create_web_client("default", &["--scope", "openid"]);
    verified(&s, "max").await;
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
    let b = Browser::new();
    let (_, challenge) = pkce();
    let (_, page, _) = password_step(&b, &issuer, &web.0, "max", &challenge).await;
    let (status, mut page, _) = send_code(&b, &issuer, &page).await;
    assert_eq!(status, 200, "{page}");
    let code = code_in(&outbox.nth_of(1, CODE_MAIL).await);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let mut throttled = None;
    for _ in 0..6 {
        let r = b
            .http
            .post(format!("{issuer}/login/second-factor"))
            .form(&form_of(
                &page,
                &[("method", "email_code"), ("code", wrong)],
            ))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status == 429 {
            throttled = r.headers().get("retry-after").cloned();
            // The short delay after the second failure: wait it out, then go on guessing.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            continue;
        }
        assert_eq!(status, 401);
        page = r.text().await.unwrap();
    }
    assert!(throttled.is_some(), "guesses are delayed");
    // Locked out: the right code is refused too.
    let r = b
        .http
        .post(format!("{issuer}/login/second-factor"))
        .form(&form_of(
            &page,
            &[("method", "email_code"), ("code", &code)],
        ))
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
    assert!(!audit(&s, "login_locked").await.is_empty());
    let failed = audit(&s, "login_failed").await;
    assert!(
        failed
            .iter()
            .any(|(r, d)| r == "throttled" && d["method"] == "email_code"),
        "{failed:?}"
    );
}

/// A first sign-in from browser `b` (no history yet: nothing owed); then the person is known.
async fn first_sign_in(s: &Server, web: &str, username: &str) {
    let b = Browser::new();
    let (_, challenge) = pkce();
    let (status, page, loc) =
        password_step(&b, &s.issuer("default"), web, username, &challenge).await;
    assert!(
        status == 200 || (status == 303 && loc.as_deref().is_some_and(|l| l.contains("code="))),
        "{status} {page}"
    );
}

/// A step the risk policy owes (`new_device=second_factor`, then `=passkey`), for people with
/// no second factor of their own and a tenant that does not offer codes by e-mail: never met
/// by enrolling an authenticator app; met by the code to a verified address; refused with
/// `unmet_authentication_requirements` otherwise; each recorded.
async fn risk_owed_factor_is_never_enrolled(backend: Backend) {
    let outbox = Outbox::new();
    let (k, v) = outbox.env();
    let s = Server::start_with(backend, &[(k, &v)]).await;
    let issuer = s.issuer("default");
    let web = s.create_web_client("default", &["--scope", "openid", "--scope", "profile"]);
    verified(&s, "kim").await;
    s.create_user("default", "lou");
    first_sign_in(&s, &web.0, "kim").await;
    first_sign_in(&s, &web.0, "lou").await;
    let mut mails = 0;
    for (rule, because) in [
        ("new_device=second_factor", "no_second_factor"),
        ("new_device=passkey", "no_passkey"),
    ] {
        s.cli(&["tenant", "risk", "default", "--rule", rule], None);
        // kim, on a new device: the code to her verified address, not an app to set up.
        let b = Browser::new();
        let (verifier, challenge) = pkce();
        let (status, page, _) = password_step(&b, &issuer, &web.0, "kim", &challenge).await;
        assert_eq!(status, 200, "{rule}: {page}");
        assert!(page.contains("id=\"email_code_send\""), "{rule}: {page}");
        assert!(!page.contains("totp-secret"), "{rule}: {page}");
        // Posting an enrolment anyway enrols nothing (it would meet the step with the
        // attacker's app): the step owed is asked for again.
        let (status, again, _) = post(
            &b,
            &format!("{issuer}/login/second-factor/enrol"),
            &form_of(&page, &[("code", "123456")]),
        )
        .await;
        assert_eq!(status, 200, "{rule}: {again}");
        assert!(
            again.contains("id=\"email_code_send\"") && !again.contains("totp-secret"),
            "{rule}: {again}"
        );
        // The session serves nothing else meanwhile.
        let (status, _, _) = b.get(&format!("{issuer}/account/security")).await;
        assert_eq!(status, 303, "{rule}: the account pages ask to sign in");
        let (status, sent, _) = send_code(&b, &issuer, &page).await;
        assert_eq!(status, 200, "{rule}: {sent}");
        mails += 1;
        let code = code_in(&outbox.nth_of(mails, CODE_MAIL).await);
        let r = type_code(&b, &issuer, &sent, &code).await;
        let redirect = finish(&b, &issuer, r).await;
        let id = id_claims(&issuer, &web, &redirect, &verifier).await;
        assert_eq!(id["acr"].as_str(), Some(MFA), "{rule}");

        // lou has no verified address: refused, and told so.
        let b = Browser::new();
        let (_, challenge) = pkce();
        let (status, page, loc) = password_step(&b, &issuer, &web.0, "lou", &challenge).await;
        assert_eq!(status, 303, "{rule}: {page}");
        assert_eq!(
            query_param(&loc.unwrap(), "error").as_deref(),
            Some("unmet_authentication_requirements"),
            "{rule}"
        );
        let steps: Vec<(String, Value)> = audit(&s, "risk_decision")
            .await
            .into_iter()
            .filter(|(_, d)| d["stage"] == "step")
            .collect();
        assert!(
            steps
                .iter()
                .any(|(r, d)| *r == format!("refused: {because}") && d["decision"] == "refused"),
            "{rule}: {steps:?}"
        );
        if because == "no_passkey" {
            assert!(
                steps
                    .iter()
                    .any(|(r, d)| r == "second_factor: no_passkey" && d["owed"] == "phr"),
                "{steps:?}"
            );
        }
    }
    assert!(
        audit(&s, "second_factor_enrolled").await.is_empty(),
        "nothing enrolled"
    );
}

both_backends!(
    password_and_email_code,
    wrong_email_codes_lock_out,
    risk_owed_factor_is_never_enrolled,
);
