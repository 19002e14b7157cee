//! "Forgot password": `GET|POST {issuer}/account/password/forgot` asks for a username or an
//! address and answers the same whether or not an account matches
//! (`mandate_core::login::recovery::request_password_reset`); the mailed link opens
//! `GET {issuer}/account/password/reset?token=…`, whose form (the token in a hidden field;
//! pages send `Referrer-Policy: no-referrer`) posts the new password. Offered only when mail
//! is configured: otherwise these pages are 404 and the sign-in pages show no link.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::TenantCtx;
use mandate_core::domain::password_policy::PasswordRejected;
use mandate_core::login::recovery::{self, RecoveryError};
use minijinja::context;

use super::pages::{self, too_many};
use crate::client_ip::Meta;
use crate::state::AppState;
use crate::tenant::Tenant;

const FORGOT: &str = "/account/password/forgot";

/// The "forgot password" link of the sign-in pages, when mail is configured.
pub(crate) fn forgot_url(s: &AppState, t: &TenantCtx) -> Option<String> {
    s.provider.mailer().map(|_| t.url(FORGOT))
}

/// The message key and its filled-in text for a refused password.
pub(crate) fn rejected_text(s: &AppState, lang: &str, r: &PasswordRejected) -> String {
    match r {
        PasswordRejected::TooShort(n) => s
            .templates
            .message(lang, "password_too_short")
            .replace("{n}", &n.to_string()),
        PasswordRejected::TooLong => s.templates.message(lang, "password_too_long"),
        PasswordRejected::ContainsIdentity => {
            s.templates.message(lang, "password_contains_identity")
        }
        PasswordRejected::Common => s.templates.message(lang, "password_common"),
    }
}

fn not_offered(s: &AppState, headers: &HeaderMap) -> Response {
    pages::message_page(
        s,
        headers,
        StatusCode::NOT_FOUND,
        "error_title",
        "link_invalid",
    )
}

fn render_forgot(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    status: StatusCode,
    name: &str,
    sent: bool,
    error: Option<&str>,
) -> Response {
    let lang = pages::locale(s, headers, None);
    let (csrf, set) = pages::csrf_token(s, headers);
    let page = pages::render(
        s,
        status,
        "password_forgot.html",
        &lang,
        context! {
            action => t.url(FORGOT),
            sign_in_url => t.url("/account/login"),
            csrf,
            name,
            sent,
            error => error.map(|k| s.templates.message(&lang, k)),
        },
    );
    pages::with_cookies(page, set)
}

/// `GET {issuer}/account/password/forgot`.
pub async fn forgot_page(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
) -> Response {
    if s.provider.mailer().is_none() {
        return not_offered(&s, &headers);
    }
    render_forgot(&s, &t, &headers, StatusCode::OK, "", false, None)
}

/// `POST {issuer}/account/password/forgot`: the same page whether or not an account matches.
pub async fn forgot(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let name = form.get("name").unwrap_or_default();
    let lang = pages::locale(&s, &headers, None);
    match recovery::request_password_reset(&s.provider, &t, name, Some(&lang), &meta).await {
        Ok(()) => render_forgot(&s, &t, &headers, StatusCode::OK, "", true, None),
        Err(RecoveryError::Throttled { retry_after }) => {
            let shown: String = name.chars().take(256).collect();
            too_many(
                render_forgot(
                    &s,
                    &t,
                    &headers,
                    StatusCode::TOO_MANY_REQUESTS,
                    &shown,
                    false,
                    Some("too_many_requests"),
                ),
                retry_after,
            )
        }
        Err(RecoveryError::Unavailable) => not_offered(&s, &headers),
        Err(RecoveryError::Store(e)) => pages::error_page(&s, &headers, &e.into()),
        Err(e) => pages::error_page(
            &s,
            &headers,
            &mandate_core::OAuthError::server_error(e.to_string()),
        ),
    }
}

/// What the reset page shows.
enum ResetView<'a> {
    /// The form for the account `username`.
    Form {
        token: &'a str,
        username: &'a str,
    },
    /// The link does not work (any more).
    Invalid,
    Done,
}

fn render_reset(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    status: StatusCode,
    view: ResetView<'_>,
    error: Option<String>,
) -> Response {
    let lang = pages::locale(s, headers, None);
    let (csrf, set) = pages::csrf_token(s, headers);
    let (token, username, done, error) = match view {
        ResetView::Form { token, username } => (Some(token), username, false, error),
        ResetView::Invalid => (
            None,
            "",
            false,
            Some(s.templates.message(&lang, "link_invalid")),
        ),
        ResetView::Done => (None, "", true, None),
    };
    let page = pages::render(
        s,
        status,
        "password_reset.html",
        &lang,
        context! {
            action => t.url(recovery::RESET_PATH),
            forgot_url => t.url(FORGOT),
            sign_in_url => t.url("/account/login"),
            min_length => t.tenant.settings.min_password_length.max(mandate_core::settings::MIN_PASSWORD_LENGTH),
            csrf,
            token,
            username,
            done,
            error,
        },
    );
    pages::with_cookies(page, set)
}

/// `GET {issuer}/account/password/reset?token=…`: the form, while the link works.
pub async fn reset_page(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let token = q.get("token").map(String::as_str).unwrap_or_default();
    match recovery::reset_account(&s.provider, &t, token).await {
        Ok(user) => render_reset(
            &s,
            &t,
            &headers,
            StatusCode::OK,
            ResetView::Form {
                token,
                username: &user.username,
            },
            None,
        ),
        Err(RecoveryError::Store(e)) => pages::error_page(&s, &headers, &e.into()),
        Err(_) => render_reset(
            &s,
            &t,
            &headers,
            StatusCode::BAD_REQUEST,
            ResetView::Invalid,
            None,
        ),
    }
}

/// `POST {issuer}/account/password/reset`: set the new password; every session ends.
pub async fn reset(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let lang = pages::locale(&s, &headers, None);
    let token = form.get("token").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    let again = |status: StatusCode, username: &str, error: String| {
        render_reset(
            &s,
            &t,
            &headers,
            status,
            ResetView::Form { token, username },
            Some(error),
        )
    };
    let user = match recovery::reset_account(&s.provider, &t, token).await {
        Ok(u) => u,
        Err(RecoveryError::Store(e)) => return pages::error_page(&s, &headers, &e.into()),
        Err(_) => {
            return render_reset(
                &s,
                &t,
                &headers,
                StatusCode::BAD_REQUEST,
                ResetView::Invalid,
                None,
            );
        }
    };
    if form.get("password2").unwrap_or_default() != password {
        return again(
            StatusCode::BAD_REQUEST,
            &user.username,
            s.templates.message(&lang, "passwords_differ"),
        );
    }
    match recovery::reset_password(&s.provider, &t, token, password, &meta).await {
        Ok(_) => render_reset(&s, &t, &headers, StatusCode::OK, ResetView::Done, None),
        Err(RecoveryError::Rejected(r)) => again(
            StatusCode::BAD_REQUEST,
            &user.username,
            rejected_text(&s, &lang, &r),
        ),
        Err(RecoveryError::Busy { retry_after }) => too_many(
            again(
                StatusCode::TOO_MANY_REQUESTS,
                &user.username,
                s.templates.message(&lang, "try_again_shortly"),
            ),
            retry_after,
        ),
        Err(RecoveryError::Store(e)) => pages::error_page(&s, &headers, &e.into()),
        Err(_) => render_reset(
            &s,
            &t,
            &headers,
            StatusCode::BAD_REQUEST,
            ResetView::Invalid,
            None,
        ),
    }
}
