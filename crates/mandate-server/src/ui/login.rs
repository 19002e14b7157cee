//! The login page and its form post.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::domain::model::Client;
use mandate_core::login::{self, LoginError};
use mandate_core::oauth::authorize::Interaction;
use mandate_core::{OAuthError, TenantCtx};
use minijinja::context;

use super::pages;
use crate::client_ip::Meta;
use crate::cookies;
use crate::oauth::authorize::{current_session, proceed};
use crate::state::AppState;
use crate::tenant::Tenant;

/// Render the login form for an interaction.
pub fn render(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    client: &Client,
    i: &Interaction,
    error: Option<&str>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    render_with(s, t, headers, client, i, error, status)
}

/// [`render`] with a given status (401 for bad credentials, 429 when throttled or busy).
fn render_with(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    client: &Client,
    i: &Interaction,
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
            interaction => i.seal(t),
            csrf,
            error,
        },
    );
    pages::with_cookies(page, set)
}

/// The form again with 429 and `Retry-After` (throttled or busy): the same answer whether or
/// not the account exists.
#[allow(clippy::too_many_arguments)]
fn refused(
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
        Some(message),
        StatusCode::TOO_MANY_REQUESTS,
    );
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(retry_after.max(1) as u64),
    );
    r
}

/// `POST {issuer}/login`.
pub async fn login(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let Some(i) = form
        .get("interaction")
        .and_then(|v| Interaction::open(&s.provider, &t, v))
    else {
        return pages::form_expired(&s, &headers);
    };
    let client = match s.provider.client(&t, &i.req.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return pages::error_page(&s, &headers, &OAuthError::invalid_request("unknown client"));
        }
        Err(e) => return pages::error_page(&s, &headers, &e.into()),
    };
    let username = form.get("username").unwrap_or_default();
    let user = match login::password_login(
        &s.provider,
        &t,
        username,
        form.get("password").unwrap_or_default(),
        &meta,
    )
    .await
    {
        Ok(u) => u,
        Err(LoginError::InvalidCredentials) => {
            let mut again = i.clone();
            again.req.login_hint = Some(username.to_string());
            return render(
                &s,
                &t,
                &headers,
                &client,
                &again,
                Some("invalid_credentials"),
            );
        }
        Err(LoginError::Throttled { retry_after }) => {
            return refused(
                &s,
                &t,
                &headers,
                &client,
                &i,
                username,
                "too_many_attempts",
                retry_after,
            );
        }
        Err(LoginError::Busy { retry_after }) => {
            return refused(
                &s,
                &t,
                &headers,
                &client,
                &i,
                username,
                "try_again_shortly",
                retry_after,
            );
        }
        Err(LoginError::Store(e)) => return pages::error_page(&s, &headers, &e.into()),
    };
    // A new session id at every login (no session fixation); the old session ends.
    if let Ok(Some(old)) = current_session(&s, &t, &headers).await {
        let _ = s.provider.store.delete_session(t.id(), &old.digest).await;
    }
    let (cookie, session) =
        match login::start_session(&s.provider, &t, &user, &["pwd"], &meta).await {
            Ok(v) => v,
            Err(e) => return pages::error_page(&s, &headers, &e.into()),
        };
    let set = cookies::set(
        &s.config,
        &cookies::session_name(&s.config, &t.tenant.name),
        &cookie,
        Some(s.provider.settings.session_ttl),
    );
    let resp = proceed(&s, &t, &meta, &headers, &client, i.req, Some(session), true).await;
    pages::with_cookies(resp, [set])
}
