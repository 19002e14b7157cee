//! Mail that works, over HTTP with the file outbox (`common::mail`): "forgot password" and the
//! reset link (no enumeration, once only, sessions and their tokens ended, old password
//! refused), e-mail verification up to `email_verified` in UserInfo, the password change
//! on the profile page, a notice after a passkey is added, and nothing offered without mail.
//! Both databases.

use serde_json::Value;

use crate::common::mail::Outbox;
use crate::common::webauthn::UV;
use crate::common::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

fn audit(s: &Server) -> Vec<Value> {
    let (ok, out, e) = s.cli_raw(&["audit", "export", "--tenant", "default"], None);
    assert!(ok, "{e}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["event"] == kind).count()
}

/// Sign in on the account sign-in page; the status of the answer (303 when signed in).
async fn sign_in(b: &Browser, issuer: &str, username: &str, password: &str) -> u16 {
    sign_in_at(b, issuer, "", username, password).await
}

/// [`sign_in`] with more of the page's query (`again=1&`: though signed in already).
async fn sign_in_at(b: &Browser, issuer: &str, query: &str, username: &str, password: &str) -> u16 {
    let (status, page, _) = b
        .get(&format!(
            "{issuer}/account/login?{query}return_to=/account/profile"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, _, _) = b
        .post_form(
            &format!("{issuer}/account/login"),
            &[
                ("csrf", &csrf),
                ("return_to", "/account/profile"),
                ("username", username),
                ("password", password),
            ],
        )
        .await;
    status
}

/// Ask for a reset link for `name`; the page answered.
async fn forgot(b: &Browser, issuer: &str, name: &str) -> (u16, String) {
    let (status, page, _) = b.get(&format!("{issuer}/account/password/forgot")).await;
    assert_eq!(status, 200, "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, page, _) = b
        .post_form(
            &format!("{issuer}/account/password/forgot"),
            &[("csrf", &csrf), ("name", name)],
        )
        .await;
    (status, page)
}

/// Post the reset form of `link` with two passwords.
async fn reset(b: &Browser, link: &str, password: &str, again: &str) -> (u16, String) {
    let (status, page, _) = b.get(link).await;
    if status != 200 {
        return (status, page);
    }
    let csrf = hidden(&page, "csrf").unwrap();
    let token = hidden(&page, "token").unwrap();
    let action = link.split('?').next().unwrap();
    let (status, page, _) = b
        .post_form(
            action,
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("password", password),
                ("password2", again),
            ],
        )
        .await;
    (status, page)
}

async fn forgot_password_resets_once(backend: Backend) {
    let outbox = Outbox::new();
    let s = outbox.server(backend, PublicUrl::Listen).await;
    let issuer = s.issuer("default");
    let ann = s.create_user("default", "ann");
    let web = s.create_web_client("default", &[]);

    // Ann is signed in somewhere, with a refresh token.
    let b1 = Browser::new();
    let tokens = code_flow_tokens(&s, &b1, "default", &web, "ann").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, _, _) = b1.get(&format!("{issuer}/account/profile")).await;
    assert_eq!(status, 200);

    // The sign-in pages link to "forgot password".
    let b2 = Browser::new();
    let (_, page, _) = b2.get(&format!("{issuer}/account/login")).await;
    assert!(
        unescape(&page).contains(&format!("{issuer}/account/password/forgot")),
        "{page}"
    );

    // The same answer for an account and for none; mail only for the account.
    let (status, known) = forgot(&b2, &issuer, "ann").await;
    assert_eq!(status, 200, "{known}");
    assert!(known.contains("data-forgot-sent"), "{known}");
    let (status, unknown) = forgot(&b2, &issuer, "nobody").await;
    assert_eq!(status, 200);
    assert_eq!(known, unknown, "no enumeration");
    let (_, by_address) = forgot(&Browser::new(), &issuer, "nobody@example.com").await;
    assert!(by_address.contains("data-forgot-sent"));
    let mail = outbox.nth(1).await;
    outbox.stays_at(1).await;
    assert_eq!(mail.to, "ann@example.com");
    assert!(mail.subject.contains("default"), "{}", mail.subject);
    let link = mail
        .link(&format!("{issuer}/account/password/reset?token="))
        .unwrap_or_else(|| panic!("{}", mail.text));
    assert!(
        mail.html.contains(&format!("href=\"{link}\"")),
        "{}",
        mail.html
    );
    let token = query_param(&link, "token").unwrap();
    assert!(token.len() >= 22, "at least 128 bits");

    // The form keeps the token in a hidden field, on a page that sends no referrer.
    let r = reqwest::get(&link).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert_eq!(r.headers()["cache-control"], "no-store");

    // Refused passwords leave the link working.
    let b3 = Browser::new();
    let (status, page) = reset(&b3, &link, NEW_PASSWORD, "something else").await;
    assert_eq!(status, 400, "{page}");
    let (status, page) = reset(&b3, &link, "password", "password").await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("commonly used"), "{page}");
    let (status, page) = reset(&b3, &link, "ann", "ann").await;
    assert_eq!(status, 400, "{page}");
    // The right one.
    let (status, page) = reset(&b3, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-reset-done"), "{page}");
    // Once only.
    let (status, page) = reset(
        &b3,
        &link,
        "another new passphrase",
        "another new passphrase",
    )
    .await;
    assert_eq!(status, 400, "{page}");
    let csrf = hidden(
        &b3.get(&format!("{issuer}/account/password/forgot")).await.1,
        "csrf",
    )
    .unwrap();
    let (status, page, _) = b3
        .post_form(
            &format!("{issuer}/account/password/reset"),
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("password", "another new passphrase"),
                ("password2", "another new passphrase"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{page}");

    // Every session ended, and what was granted in them.
    let (status, _, loc) = b1.get(&format!("{issuer}/account/profile")).await;
    assert_eq!(status, 303);
    assert!(loc.unwrap().contains("/account/login"));
    let (status, body) = crate::common::token(
        &issuer,
        &web,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // The old password is refused, the new one accepted.
    assert_eq!(
        sign_in(&Browser::new(), &issuer, "ann", PASSWORD).await,
        401
    );
    assert_eq!(
        sign_in(&Browser::new(), &issuer, "ann", NEW_PASSWORD).await,
        303
    );

    // A notice went out, and the audit trail has it all.
    let notice = outbox.nth(2).await;
    assert!(
        notice.subject.contains("password was changed"),
        "{}",
        notice.subject
    );
    let events = audit(&s);
    assert_eq!(count(&events, "password_reset_requested"), 3);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "password_reset_requested"
                && e["outcome"] == "success"
                && e["subject"]["id"] == ann.as_str())
    );
    assert!(events.iter().any(|e| e["event"] == "password_changed"
        && e["detail"]["how"] == "reset"
        && e["subject"]["id"] == ann.as_str()));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "session_ended" && e["reason"] == "password_changed")
    );
    assert!(count(&events, "email_sent") >= 2);
    assert!(events.iter().any(|e| e["event"] == "email_sent"
        && e["detail"]["template"] == "password_reset"
        && e["outcome"] == "success"));
}

/// The UserInfo answer for a token response's access token.
async fn userinfo(issuer: &str, tokens: &Value) -> Value {
    reqwest::Client::new()
        .get(format!("{issuer}/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn email_verification_reaches_userinfo(backend: Backend) {
    let outbox = Outbox::new();
    let s = outbox.server(backend, PublicUrl::Listen).await;
    let issuer = s.issuer("default");
    let bo = s.create_user("default", "bo");
    let web = s.create_web_client("default", &[]);
    let b = Browser::new();
    let before = code_flow_tokens(&s, &b, "default", &web, "bo").await;
    let info = userinfo(&issuer, &before).await;
    assert_eq!(info["email"], "bo@example.com", "{info}");
    assert_eq!(info["email_verified"], false, "{info}");

    let (status, page, _) = b.get(&format!("{issuer}/account/profile")).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("bo@example.com") && page.contains("data-unverified"),
        "{page}"
    );
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, page, _) = b
        .post_form(
            &format!("{issuer}/account/email/verify/send"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mail = outbox.nth(1).await;
    assert_eq!(mail.to, "bo@example.com");
    let link = mail
        .link(&format!("{issuer}/account/email/verify?token="))
        .unwrap_or_else(|| panic!("{}", mail.text));

    // Opening the link changes nothing (mail scanners open links); the button confirms.
    let other = Browser::new();
    let (status, page, _) = other.get(&link).await;
    assert_eq!(status, 200, "{page}");
    let (_, page, _) = other.get(&link).await;
    let csrf = hidden(&page, "csrf").unwrap();
    let token = hidden(&page, "token").unwrap();
    let confirm = |b: &Browser| {
        let (csrf, token, url) = (
            csrf.clone(),
            token.clone(),
            format!("{issuer}/account/email/verify"),
        );
        let b = b.http.clone();
        async move {
            let r = b
                .post(url)
                .form(&[("csrf", csrf.as_str()), ("token", token.as_str())])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, page) = confirm(&other).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-verify-done"), "{page}");
    let (status, _) = confirm(&other).await;
    assert_eq!(status, 400, "once only");

    let (_, page, _) = b.get(&format!("{issuer}/account/profile")).await;
    assert!(page.contains("data-verified"), "{page}");
    let after = code_flow_tokens(&s, &b, "default", &web, "bo").await;
    let info = userinfo(&issuer, &after).await;
    assert_eq!(info["email_verified"], true, "{info}");
    assert_eq!(info["sub"], bo.as_str());
    let events = audit(&s);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "email_verified" && e["subject"]["id"] == bo.as_str())
    );
}

async fn password_change_ends_other_sessions(backend: Backend) {
    let outbox = Outbox::new();
    let s = outbox.server(backend, PublicUrl::Listen).await;
    let issuer = s.issuer("default");
    s.create_user("default", "cy");
    let (here, elsewhere) = (Browser::new(), Browser::new());
    assert_eq!(sign_in(&here, &issuer, "cy", PASSWORD).await, 303);
    assert_eq!(sign_in(&elsewhere, &issuer, "cy", PASSWORD).await, 303);
    let change = |current: &'static str, new: &'static str, again: &'static str| {
        let b = here.http.clone();
        let issuer = issuer.clone();
        async move {
            let page = b
                .get(format!("{issuer}/account/profile"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let csrf = hidden(&page, "csrf").unwrap();
            let r = b
                .post(format!("{issuer}/account/password"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("current", current),
                    ("password", new),
                    ("password2", again),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, page) = change("wrong password", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("current password is wrong"), "{page}");
    let (status, _) = change(PASSWORD, NEW_PASSWORD, "different").await;
    assert_eq!(status, 400);
    let (status, page) = change(PASSWORD, "12345678", "12345678").await;
    assert_eq!(status, 400, "{page}");
    let (status, page) = change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 200, "{page}");
    // This session stays; the other ended.
    assert_eq!(here.get(&format!("{issuer}/account/profile")).await.0, 200);
    assert_eq!(
        elsewhere.get(&format!("{issuer}/account/profile")).await.0,
        303
    );
    assert_eq!(sign_in(&Browser::new(), &issuer, "cy", PASSWORD).await, 401);
    assert_eq!(
        sign_in(&Browser::new(), &issuer, "cy", NEW_PASSWORD).await,
        303
    );
    // Mail 1 and 3: the new browsers' sign-ins.
    let notice = outbox.nth(2).await;
    assert_eq!(notice.to, "cy@example.com");
    assert!(
        notice.subject.contains("password was changed"),
        "{}",
        notice.subject
    );
    // The form without a session goes to the sign-in page and changes nothing.
    let (status, _, loc) = Browser::new()
        .post_form(&format!("{issuer}/account/password"), &[("csrf", "x")])
        .await;
    assert!(status == 400 || (status == 303 && loc.is_some()));
}

async fn a_passkey_added_sends_a_notice(backend: Backend) {
    let outbox = Outbox::new();
    let s = outbox.server(backend, PublicUrl::Localhost).await;
    let issuer = s.issuer("default");
    s.create_user("default", "dee");
    let b = Browser::new();
    super::passkeys::account_sign_in(&b, &issuer, "dee").await;
    let (_key, status, page) =
        super::passkeys::add_passkey(&b, &issuer, &s.public_base(), "Work laptop", UV).await;
    assert_eq!(status, 200, "{page}");
    let mail = outbox.nth(1).await;
    assert_eq!(mail.to, "dee@example.com");
    assert!(
        mail.subject.contains("passkey was added"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains("Work laptop"), "{}", mail.text);
    assert!(mail.html.contains("Work laptop"));
}

/// Security notices follow what happened: a sign-in from a browser the account never used
/// (not the same browser again: its device cookie, minted before its first sign-in, is
/// known), an authenticator app added (one notice, not one more for its first recovery
/// codes), new recovery codes.
async fn notices_for_a_new_browser_and_second_factors(backend: Backend) {
    let outbox = Outbox::new();
    let s = outbox.server(backend, PublicUrl::Localhost).await;
    let issuer = s.issuer("default");
    s.create_user("default", "eve");
    let first = Browser::new();
    assert_eq!(sign_in(&first, &issuer, "eve", PASSWORD).await, 303);
    assert_eq!(
        sign_in_at(&first, &issuer, "again=1&", "eve", PASSWORD).await,
        303
    );
    let other = Browser::new();
    assert_eq!(sign_in(&other, &issuer, "eve", PASSWORD).await, 303);
    let mail = outbox.nth(1).await;
    assert_eq!(mail.to, "eve@example.com");
    assert!(mail.subject.starts_with("New sign-in"), "{}", mail.subject);
    assert!(mail.text.contains("127.0.0.1"), "{}", mail.text);

    let (_app, _codes) = super::second_factor::enrol_on_account_page(&s, &other).await;
    let mail = outbox.nth(2).await;
    assert!(
        mail.subject.contains("second factor was added"),
        "{}",
        mail.subject
    );
    let (status, html, _) = other.get(&format!("{issuer}/account/security")).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let (status, html, _) = other
        .post_form(
            &format!("{issuer}/account/security/recovery-codes"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    let mail = outbox.nth(3).await;
    assert!(mail.subject.contains("recovery codes"), "{}", mail.subject);
    assert_eq!(outbox.mails().len(), 3, "no other notice");
}

both_backends!(
    forgot_password_resets_once,
    email_verification_reaches_userinfo,
    password_change_ends_other_sessions,
    a_passkey_added_sends_a_notice,
    notices_for_a_new_browser_and_second_factors,
);

#[tokio::test]
async fn without_mail_nothing_is_offered() {
    let s = Server::start(Backend::Sqlite).await;
    let issuer = s.issuer("default");
    s.create_user("default", "eli");
    let b = Browser::new();
    let (_, page, _) = b.get(&format!("{issuer}/account/login")).await;
    assert!(
        !unescape(&page).contains("/account/password/forgot"),
        "{page}"
    );
    let (status, _, _) = b.get(&format!("{issuer}/account/password/forgot")).await;
    assert_eq!(status, 404);
    assert_eq!(sign_in(&b, &issuer, "eli", PASSWORD).await, 303);
    let (status, page, _) = b.get(&format!("{issuer}/account/profile")).await;
    assert_eq!(status, 200);
    assert!(
        !unescape(&page).contains("/account/email/verify/send"),
        "{page}"
    );
    // A made-up link is refused, never a 500.
    let (status, _, _) = b
        .get(&format!("{issuer}/account/password/reset?token=made-up"))
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = b
        .get(&format!(
            "{issuer}/account/password/reset?token={}",
            "x".repeat(5000)
        ))
        .await;
    assert_eq!(status, 400);
}
