//! The passkey login method: `POST {issuer}/login/passkey/options` starts a usernameless
//! WebAuthn ceremony (kept in the store: any node may finish it), `POST {issuer}/login/passkey`
//! finishes it and signs the person in, then hands the request back to the pipeline (or, from
//! the account sign-in page, goes back to `return_to`). The rules are in
//! `mandate_core::login::webauthn`; `assets/webauthn.js` drives the browser.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::account::{ACCOUNT_HOME, safe_return_to};
use mandate_core::login::method::sign_in_ids;
use mandate_core::login::webauthn::{self, PasskeyError};
use mandate_core::login::{self};
use mandate_core::oauth::authorize::Interaction;
use serde_json::json;

use super::proceed;
use crate::client_ip::Meta;
use crate::session::{begin, current_session, mint_device};
use crate::state::AppState;
use crate::tenant::Tenant;
use crate::ui::passkeys::{ceremony_json, json_error, json_no_store};
use crate::ui::{login as login_page, pages, signin};

/// `POST {issuer}/login/passkey/options`: a new usernameless sign-in ceremony. Needs the
/// page's CSRF token and either a live interaction or a `return_to` (the account sign-in).
pub async fn options(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return json_no_store(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "the form has expired"}),
        );
    };
    let from_page = form
        .get("interaction")
        .and_then(|v| Interaction::open(&s.provider, &t, v))
        .is_some()
        || form.get("return_to").and_then(safe_return_to).is_some();
    if !from_page {
        return json_no_store(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "the form has expired"}),
        );
    }
    match webauthn::start_sign_in(&s.provider, &t, &meta).await {
        Ok((ceremony, options)) => match serde_json::to_value(&options) {
            Ok(v) => ceremony_json(ceremony, v),
            Err(e) => json_error(&PasskeyError::Rejected(e.to_string())),
        },
        Err(e) => json_error(&e),
    }
}

/// The message key a page shows for a failed passkey sign-in.
fn message_key(e: &PasskeyError) -> &'static str {
    match e {
        PasskeyError::Expired => "passkey_expired",
        PasskeyError::UnknownCredential => "passkey_unknown",
        PasskeyError::Blocked { .. } => "too_many_attempts",
        _ => "passkey_failed",
    }
}

/// `POST {issuer}/login/passkey`: verify the browser's answer, sign the person in (adding
/// the passkey to the session when the same person is signed in already: a step-up), and go
/// on.
pub async fn sign_in(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(mut meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let device = mint_device(&s, &mut meta);
    let interaction = match form.get("interaction") {
        Some(v) => match Interaction::open(&s.provider, &t, v) {
            Some(i) => Some(i),
            None => return pages::form_expired(&s, &headers),
        },
        None => None,
    };
    let back = form
        .get("return_to")
        .and_then(safe_return_to)
        .unwrap_or(ACCOUNT_HOME)
        .to_string();
    let client = match &interaction {
        Some(i) => match super::client_of(&s, &t, &headers, i).await {
            Ok(c) => Some(c),
            Err(page) => return page,
        },
        None => None,
    };
    let result = webauthn::finish_sign_in(
        &s.provider,
        &t,
        form.get("ceremony").unwrap_or_default(),
        form.get("credential").unwrap_or_default(),
        &meta,
    )
    .await;
    let (user, proof) = match result {
        Ok(v) => v,
        Err(PasskeyError::Store(e)) => return pages::error_page(&s, &headers, &e.into()),
        Err(e) => {
            let key = message_key(&e);
            return match (&interaction, &client) {
                (Some(i), Some(c)) => login_page::render(
                    &s,
                    &t,
                    &headers,
                    c,
                    i,
                    &sign_in_ids(&login::offered(&s.provider, &t)),
                    Some(key),
                ),
                _ => signin::render(&s, &t, &headers, &back, "", Some(key)),
            };
        }
    };
    // The same person signed in already: the passkey joins their session (step-up).
    let current = current_session(&s, &t, &headers).await.ok().flatten();
    let (session, set) = match current {
        Some(sess) if sess.user_id == user.id => {
            match login::add_factor(&s.provider, &t, &sess, &proof, &meta).await {
                Ok(sess) => (sess, None),
                Err(e) => return pages::error_page(&s, &headers, &e.into()),
            }
        }
        _ => match begin(&s, &t, &headers, &user, &proof, &meta).await {
            Ok((sess, set)) => (sess, Some(set)),
            Err(e) => return pages::error_page(&s, &headers, &e),
        },
    };
    let resp = match (interaction, client) {
        (Some(i), Some(c)) => {
            proceed(&s, &t, &meta, &headers, &c, i.req, Some(session), true).await
        }
        _ => pages::see_other(&t.url(&back)),
    };
    pages::with_cookies(resp, set.into_iter().chain(device))
}

/// `POST {issuer}/login/passkey/register`: add a passkey from the offer after a password
/// sign-in, then go on with the request whatever happened (the person can add one later on
/// the account page). Only the session that signed in within this interaction may.
pub async fn register(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let (i, session, client) = match super::resumed(&s, &t, &headers, &form).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let user = match s.provider.store.user(t.id(), &session.user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return pages::form_expired(&s, &headers),
        Err(e) => return pages::error_page(&s, &headers, &e.into()),
    };
    // A session that still owes a required second factor adds no passkey (that would bypass
    // it): the request goes on, and the pipeline asks for the factor.
    match mandate_core::login::second_factor::outstanding(
        &s.provider,
        &t,
        &session,
        Some(&client.client_id),
    )
    .await
    {
        Ok(None) => {}
        Ok(Some(_)) => {
            return proceed(&s, &t, &meta, &headers, &client, i.req, Some(session), true).await;
        }
        Err(e) => return pages::error_page(&s, &headers, &e.into()),
    }
    match webauthn::finish_registration(
        &s.provider,
        &t,
        &user,
        form.get("ceremony").unwrap_or_default(),
        form.get("credential").unwrap_or_default(),
        form.get("name").unwrap_or_default(),
        &meta,
    )
    .await
    {
        Err(PasskeyError::Store(e)) => pages::error_page(&s, &headers, &e.into()),
        _ => proceed(&s, &t, &meta, &headers, &client, i.req, Some(session), true).await,
    }
}
