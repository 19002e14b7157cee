//! The sign-in page of an interaction: one section per login method the pipeline offers.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::TenantCtx;
use mandate_core::domain::model::Client;
use mandate_core::login::{self, method::sign_in_ids};
use mandate_core::oauth::authorize::Interaction;
use minijinja::context;

use super::pages;
use crate::state::AppState;

/// Render the sign-in page for an interaction, offering `methods` (login method ids).
pub fn render(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    client: &Client,
    i: &Interaction,
    methods: &[&str],
    error: Option<&str>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    render_with(s, t, headers, client, i, methods, error, status)
}

/// [`render`] with a given status (401 for bad credentials, 429 when throttled or busy).
#[allow(clippy::too_many_arguments)]
fn render_with(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    client: &Client,
    i: &Interaction,
    methods: &[&str],
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let lang = pages::locale(s, headers, i.req.ui_locales.as_deref());
    let (csrf, set) = pages::csrf_token(s, headers);
    let error = error.map(|k| s.templates.message(&lang, k));
    let page = pages::render(
        s,
        status,
        "login.html",
        &lang,
        context! {
            action => t.url("/login"),
            client_name => client.name,
            username => i.req.login_hint.clone().unwrap_or_default(),
            methods,
            interaction => i.seal(t),
            csrf,
            error,
            passkey_options => t.url("/login/passkey/options"),
            passkey_action => t.url("/login/passkey"),
            forgot_url => super::recovery::forgot_url(s, t),
        },
    );
    pages::with_cookies(page, set)
}

/// The form again with 429 and `Retry-After` (throttled or busy): the same answer whether or
/// not the account exists.
#[allow(clippy::too_many_arguments)]
pub(crate) fn refused(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    client: &Client,
    i: &Interaction,
    username: &str,
    message: &str,
    retry_after: i64,
) -> Response {
    let mut again = i.clone();
    again.req.login_hint = Some(username.to_string());
    let mut r = render_with(
        s,
        t,
        headers,
        client,
        &again,
        &sign_in_ids(&login::offered(t)),
        Some(message),
        StatusCode::TOO_MANY_REQUESTS,
    );
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(retry_after.max(1) as u64),
    );
    r
}
