//! The person's passkeys: `GET {issuer}/account/passkeys` lists them (name, when added and
//! last used, whether synced) with removal; `POST …/options` starts adding one (JSON for
//! `assets/webauthn.js`), `POST {issuer}/account/passkeys` finishes it, `POST …/remove`
//! removes one. The offer right after a password sign-in ([`offer`]) uses the same options;
//! its answer goes to `interaction::passkey::register`, which goes on with the request.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_core::audit::Principal;
use mandate_core::domain::model::{Session, User};
use mandate_core::login;
use mandate_core::login::webauthn::{self, PasskeyError};
use mandate_core::oauth::authorize::Interaction;
use mandate_core::{OAuthError, TenantCtx};
use minijinja::context;
use serde_json::json;

use super::pages;
use super::signin::sign_in_first;
use super::words::when;
use crate::client_ip::Meta;
use crate::session::account_session;
use crate::state::AppState;
use crate::tenant::Tenant;

const PAGE: &str = "/account/passkeys";

/// Where a person confirms who they are before changing their sign-in methods.
fn confirm_first(t: &TenantCtx) -> Response {
    pages::see_other(&t.url("/account/login?return_to=/account/passkeys&again=1"))
}

/// A JSON answer that no cache keeps.
pub(crate) fn json_no_store(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The JSON error of the passkey endpoints the script calls.
pub(crate) fn json_error(e: &PasskeyError) -> Response {
    let (status, code) = match e {
        PasskeyError::Unavailable(_) => (StatusCode::NOT_FOUND, "passkeys_unavailable"),
        PasskeyError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        PasskeyError::Busy => (StatusCode::TOO_MANY_REQUESTS, "slow_down"),
        PasskeyError::Refused(_) | PasskeyError::LastMethod => {
            (StatusCode::CONFLICT, "passkey_refused")
        }
        _ => (StatusCode::BAD_REQUEST, "invalid_request"),
    };
    if matches!(e, PasskeyError::Store(_)) {
        tracing::error!(error = %e, "passkey ceremony failed");
    }
    json_no_store(
        status,
        json!({"error": code, "error_description": e.to_string()}),
    )
}

/// The options of a ceremony, as the script expects them: the ceremony id beside
/// `publicKey`.
pub(crate) fn ceremony_json(ceremony: String, options: serde_json::Value) -> Response {
    let mut body = options;
    if let Some(o) = body.as_object_mut() {
        o.insert("ceremony".into(), ceremony.into());
    }
    json_no_store(StatusCode::OK, body)
}

/// The signed-in person and their session, or `None` (also when the session still owes a
/// second factor: adding a passkey then would bypass it).
async fn person(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
) -> Result<Option<(Session, User)>, OAuthError> {
    let Some(session) = account_session(s, t, headers).await? else {
        return Ok(None);
    };
    Ok(s.provider
        .store
        .user(t.id(), &session.user_id)
        .await?
        .map(|u| (session, u)))
}

/// A posted form that changes how the person signs in: its fields, their session and account;
/// else the page to answer with (the form expired, they are signed out, or their sign-in is
/// not recent enough: then they confirm who they are first).
async fn change_form(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(crate::params::Params, Session, User), Response> {
    let form =
        pages::checked_form(s, headers, body).ok_or_else(|| pages::form_expired(s, headers))?;
    let (session, user) = match person(s, t, headers).await {
        Ok(Some(v)) => v,
        Ok(None) => return Err(sign_in_first(t, PAGE)),
        Err(e) => return Err(pages::error_page(s, headers, &e)),
    };
    if !login::signed_in_recently(&s.provider, &session) {
        return Err(confirm_first(t));
    }
    Ok((form, session, user))
}

/// Render the list, with a notice or error message key.
async fn render(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    session: &Session,
    user: &User,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let keys = match s.provider.store.passkeys(t.id(), &user.id).await {
        Ok(k) => k,
        Err(e) => return pages::error_page(s, headers, &e.into()),
    };
    let lang = pages::locale(s, headers, None);
    let (csrf, set) = pages::csrf_token(s, headers);
    let rows: Vec<_> = keys
        .iter()
        .map(|k| {
            context! {
                id => k.id,
                name => k.name,
                created => when(k.created_at),
                last_used => k.last_used_at.map(when),
                synced => k.backup_eligible,
            }
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let page = pages::render(
        s,
        status,
        "passkeys.html",
        &lang,
        context! {
            passkeys => rows,
            csrf,
            available => webauthn::available(t),
            remove_action => t.url("/account/passkeys/remove"),
            has_password => user.password_hash.is_some(),
            recent => login::signed_in_recently(&s.provider, session),
            confirm_url => t.url("/account/login?return_to=/account/passkeys&again=1"),
            account_url => t.url("/account"),
            remove_password_action => t.url("/account/password/remove"),
            register_options => t.url("/account/passkeys/options"),
            register_action => t.url(PAGE),
            notice => notice.map(|k| s.templates.message(&lang, k)),
            error => error.map(|k| s.templates.message(&lang, k)),
        },
    );
    pages::with_cookies(page, set)
}

/// `GET {issuer}/account/passkeys`.
pub async fn page(State(s): State<AppState>, Tenant(t): Tenant, headers: HeaderMap) -> Response {
    match person(&s, &t, &headers).await {
        Ok(Some((session, user))) => render(&s, &t, &headers, &session, &user, None, None).await,
        Ok(None) => sign_in_first(&t, PAGE),
        Err(e) => pages::error_page(&s, &headers, &e),
    }
}

/// The offer to add a passkey, shown right after a password sign-in within an interaction
/// (`i.sid` names the session it started).
pub fn offer(s: &AppState, t: &TenantCtx, headers: &HeaderMap, i: &Interaction) -> Response {
    let lang = pages::locale(s, headers, i.req.ui_locales.as_deref());
    let (csrf, set) = pages::csrf_token(s, headers);
    let page = pages::render(
        s,
        StatusCode::OK,
        "passkey_offer.html",
        &lang,
        context! {
            csrf,
            interaction => i.seal(t),
            register_options => t.url("/account/passkeys/options"),
            register_action => t.url("/login/passkey/register"),
            continue_action => t.url("/login/continue"),
        },
    );
    pages::with_cookies(page, set)
}

/// `POST {issuer}/account/passkeys/options`: start adding a passkey for the signed-in person.
pub async fn options(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if pages::checked_form(&s, &headers, &body).is_none() {
        return json_no_store(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "the form has expired"}),
        );
    }
    let user = match person(&s, &t, &headers).await {
        Ok(Some((session, u))) if login::signed_in_recently(&s.provider, &session) => u,
        Ok(_) => {
            return json_no_store(
                StatusCode::UNAUTHORIZED,
                json!({"error": "login_required", "error_description": "sign in again first"}),
            );
        }
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    match webauthn::start_registration(&s.provider, &t, &user, &meta).await {
        Ok((ceremony, options)) => ceremony_json(ceremony, options),
        Err(e) => json_error(&e),
    }
}

/// `POST {issuer}/account/passkeys`: finish adding a passkey; back to the list.
pub async fn add(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session, user) = match change_form(&s, &t, &headers, &body).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let result = webauthn::finish_registration(
        &s.provider,
        &t,
        &user,
        form.get("ceremony").unwrap_or_default(),
        form.get("credential").unwrap_or_default(),
        form.get("name").unwrap_or_default(),
        &meta,
    )
    .await;
    let failed = match result {
        Ok(_) => None,
        Err(PasskeyError::Store(e)) => return pages::error_page(&s, &headers, &e.into()),
        Err(PasskeyError::Expired) => Some("passkey_expired"),
        Err(_) => Some("passkey_failed"),
    };
    match failed {
        None => {
            render(
                &s,
                &t,
                &headers,
                &session,
                &user,
                Some("passkey_added"),
                None,
            )
            .await
        }
        Some(key) => render(&s, &t, &headers, &session, &user, None, Some(key)).await,
    }
}

/// `POST {issuer}/account/passkeys/remove`.
pub async fn remove(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session, user) = match change_form(&s, &t, &headers, &body).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let actor = Principal::User {
        id: user.id.clone(),
    };
    let id = form.get("id").unwrap_or_default();
    match webauthn::remove(&s.provider, &t, &user, id, actor, &meta).await {
        Ok(_) => pages::see_other(&t.url(PAGE)),
        Err(PasskeyError::LastMethod) => {
            render(
                &s,
                &t,
                &headers,
                &session,
                &user,
                None,
                Some("passkey_last_method"),
            )
            .await
        }
        Err(e) => pages::error_page(&s, &headers, &OAuthError::server_error(e.to_string())),
    }
}

/// `POST {issuer}/account/password/remove`: make the account passkey-only.
pub async fn remove_password(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, session, user) = match change_form(&s, &t, &headers, &body).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    match webauthn::remove_password(&s.provider, &t, &user, &meta).await {
        Ok(()) => pages::see_other(&t.url(PAGE)),
        Err(PasskeyError::LastMethod) => {
            render(
                &s,
                &t,
                &headers,
                &session,
                &user,
                None,
                Some("password_needs_passkey"),
            )
            .await
        }
        Err(e) => pages::error_page(&s, &headers, &OAuthError::server_error(e.to_string())),
    }
}
