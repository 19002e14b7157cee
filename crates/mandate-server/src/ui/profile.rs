//! The person's profile: `GET {issuer}/account/profile` shows their username, name and
//! address (verified or not), offers to verify the address (`POST …/account/email/verify/send`
//! mails a link) and to change the password (`POST {issuer}/account/password`: the current
//! one and a new one; the other sessions end). The mailed link opens
//! `GET {issuer}/account/email/verify?token=…`, a page whose button confirms (a GET changes
//! nothing, so mail scanners that open links do not use it up).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::domain::model::{Session, User};
use mandate_core::login::recovery::{self, RecoveryError};
use mandate_core::{OAuthError, TenantCtx};
use minijinja::context;

use super::pages;
use super::pages::too_many;
use super::recovery::rejected_text;
use super::signin::sign_in_first;
use crate::client_ip::Meta;
use crate::session::current_session;
use crate::state::AppState;
use crate::tenant::Tenant;

const PAGE: &str = "/account/profile";

/// The signed-in person and their session, or `None`.
async fn person(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
) -> Result<Option<(Session, User)>, OAuthError> {
    let Some(session) = current_session(s, t, headers).await? else {
        return Ok(None);
    };
    Ok(s.provider
        .store
        .user(t.id(), &session.user_id)
        .await?
        .map(|u| (session, u)))
}

fn render(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    user: &User,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let lang = pages::locale(s, headers, None);
    let (csrf, set) = pages::csrf_token(s, headers);
    let page = pages::render(
        s,
        status,
        "profile.html",
        &lang,
        context! {
            username => user.username,
            name => user.name,
            email => user.email,
            verified => user.email_verified,
            can_verify => s.provider.mailer().is_some(),
            has_password => user.password_hash.is_some(),
            min_length => t.tenant.settings.min_password_length.max(mandate_core::settings::MIN_PASSWORD_LENGTH),
            verify_action => t.url("/account/email/verify/send"),
            password_action => t.url("/account/password"),
            csrf,
            notice,
            error,
        },
    );
    pages::with_cookies(page, set)
}

/// `GET {issuer}/account/profile`.
pub async fn page(State(s): State<AppState>, Tenant(t): Tenant, headers: HeaderMap) -> Response {
    match person(&s, &t, &headers).await {
        Ok(Some((_, u))) => render(&s, &t, &headers, &u, StatusCode::OK, None, None),
        Ok(None) => sign_in_first(&t, PAGE),
        Err(e) => pages::error_page(&s, &headers, &e),
    }
}

/// `POST {issuer}/account/email/verify/send`: mail the person a verification link.
pub async fn send_verification(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if pages::checked_form(&s, &headers, &body).is_none() {
        return pages::form_expired(&s, &headers);
    }
    let user = match person(&s, &t, &headers).await {
        Ok(Some((_, u))) => u,
        Ok(None) => return sign_in_first(&t, PAGE),
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let lang = pages::locale(&s, &headers, None);
    let msg = |k: &str| s.templates.message(&lang, k);
    match recovery::request_email_verification(&s.provider, &t, &user, Some(&lang)).await {
        Ok(()) => {
            let text = msg("verify_sent").replace("{email}", user.email.as_deref().unwrap_or(""));
            render(&s, &t, &headers, &user, StatusCode::OK, Some(text), None)
        }
        Err(RecoveryError::Throttled { retry_after }) => too_many(
            render(
                &s,
                &t,
                &headers,
                &user,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                Some(msg("too_many_requests")),
            ),
            retry_after,
        ),
        Err(RecoveryError::Store(e)) => pages::error_page(&s, &headers, &e.into()),
        Err(_) => render(
            &s,
            &t,
            &headers,
            &user,
            StatusCode::BAD_REQUEST,
            None,
            Some(msg("link_invalid")),
        ),
    }
}

fn render_verify(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    status: StatusCode,
    token: Option<&str>,
    done: bool,
) -> Response {
    let lang = pages::locale(s, headers, None);
    let (csrf, set) = pages::csrf_token(s, headers);
    let error = (!done && token.is_none()).then(|| s.templates.message(&lang, "link_invalid"));
    let page = pages::render(
        s,
        status,
        "email_verify.html",
        &lang,
        context! {
            action => t.url(recovery::VERIFY_PATH),
            profile_url => t.url(PAGE),
            csrf,
            token,
            done,
            error,
        },
    );
    pages::with_cookies(page, set)
}

/// `GET {issuer}/account/email/verify?token=…`: the confirmation button.
pub async fn verify_page(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    match q
        .get("token")
        .filter(|k| !k.is_empty() && k.len() <= recovery::MAX_TOKEN)
    {
        Some(token) => render_verify(&s, &t, &headers, StatusCode::OK, Some(token), false),
        None => render_verify(&s, &t, &headers, StatusCode::BAD_REQUEST, None, false),
    }
}

/// `POST {issuer}/account/email/verify`: confirm the address.
pub async fn verify(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let token = form.get("token").unwrap_or_default();
    match recovery::verify_email(&s.provider, &t, token, &meta).await {
        Ok(_) => render_verify(&s, &t, &headers, StatusCode::OK, None, true),
        Err(RecoveryError::Store(e)) => pages::error_page(&s, &headers, &e.into()),
        Err(_) => render_verify(&s, &t, &headers, StatusCode::BAD_REQUEST, None, false),
    }
}

/// `POST {issuer}/account/password`: change the password.
pub async fn change_password(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let (session, user) = match person(&s, &t, &headers).await {
        Ok(Some(p)) => p,
        Ok(None) => return sign_in_first(&t, PAGE),
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let lang = pages::locale(&s, &headers, None);
    let msg = |k: &str| s.templates.message(&lang, k);
    let password = form.get("password").unwrap_or_default();
    let refuse = |status: StatusCode, text: String| {
        render(&s, &t, &headers, &user, status, None, Some(text))
    };
    if form.get("password2").unwrap_or_default() != password {
        return refuse(StatusCode::BAD_REQUEST, msg("passwords_differ"));
    }
    let current = form.get("current").unwrap_or_default();
    match recovery::change_password(&s.provider, &t, &user, &session, current, password, &meta)
        .await
    {
        Ok(()) => {
            let user = s
                .provider
                .store
                .user(t.id(), &user.id)
                .await
                .ok()
                .flatten()
                .unwrap_or(user);
            render(
                &s,
                &t,
                &headers,
                &user,
                StatusCode::OK,
                Some(msg("password_changed")),
                None,
            )
        }
        Err(RecoveryError::WrongPassword) => {
            refuse(StatusCode::BAD_REQUEST, msg("wrong_current_password"))
        }
        Err(RecoveryError::StaleSession) => refuse(StatusCode::BAD_REQUEST, msg("sign_in_again")),
        Err(RecoveryError::Rejected(r)) => {
            refuse(StatusCode::BAD_REQUEST, rejected_text(&s, &lang, &r))
        }
        Err(RecoveryError::Throttled { retry_after }) => too_many(
            refuse(StatusCode::TOO_MANY_REQUESTS, msg("too_many_attempts")),
            retry_after,
        ),
        Err(RecoveryError::Busy { retry_after }) => too_many(
            refuse(StatusCode::TOO_MANY_REQUESTS, msg("try_again_shortly")),
            retry_after,
        ),
        Err(RecoveryError::Store(e)) => pages::error_page(&s, &headers, &e.into()),
        Err(e) => pages::error_page(&s, &headers, &OAuthError::server_error(e.to_string())),
    }
}
