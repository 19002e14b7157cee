//! `GET|POST {issuer}/logout` (OpenID Connect RP-Initiated Logout 1.0). With a valid
//! `id_token_hint` for the signed-in user the session ends at once; otherwise the user confirms.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::audit::RequestMeta;
use mandate_core::{OAuthError, TenantCtx, login, oidc::logout};
use minijinja::context;

use crate::client_ip::Meta;
use crate::cookies;
use crate::params::{self, Params};
use crate::session::current_session;
use crate::state::AppState;
use crate::tenant::Tenant;
use crate::ui::pages;

pub async fn logout_get(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let raw = q.unwrap_or_default();
    run(&s, &t, &meta, &headers, &raw, false).await
}

pub async fn logout_post(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !params::is_form(&headers) {
        return pages::error_page(&s, &headers, &OAuthError::invalid_request("form expected"));
    }
    let raw = String::from_utf8_lossy(&body).into_owned();
    run(&s, &t, &meta, &headers, &raw, false).await
}

/// `POST {issuer}/logout/confirm`: the user confirmed; `params` carries the original request.
pub async fn logout_confirm(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let raw = form.get("redirect").unwrap_or_default().to_string();
    run(&s, &t, &meta, &headers, &raw, true).await
}

async fn run(
    s: &AppState,
    t: &TenantCtx,
    meta: &RequestMeta,
    headers: &HeaderMap,
    raw: &str,
    confirmed: bool,
) -> Response {
    let plan = match Params::parse(raw.as_bytes()) {
        Ok(p) => logout::plan(&s.provider, t, &p.single).await,
        Err(e) => Err(e),
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return pages::error_page(s, headers, &e),
    };
    let session = current_session(s, t, headers).await.ok().flatten();
    if let Some(sess) = &session {
        let hinted = plan.hint_sub.as_deref() == Some(sess.user_id.as_str());
        if !hinted && !confirmed {
            let lang = pages::locale(s, headers, None);
            let (csrf, set) = pages::csrf_token(s, headers);
            let page = pages::render(
                s,
                StatusCode::OK,
                "logout_confirm.html",
                &lang,
                context! { action => t.url("/logout/confirm"), csrf, redirect => raw },
            );
            return pages::with_cookies(page, set);
        }
        if let Err(e) = login::end_session(&s.provider, t, sess, meta).await {
            return pages::error_page(s, headers, &e.into());
        }
    }
    let clear = cookies::clear(&s.config, &cookies::session_name(&s.config, &t.tenant.name));
    let resp = match &plan.redirect {
        Some(url) => pages::see_other(url),
        None => pages::message_page(s, headers, StatusCode::OK, "logged_out_title", "logged_out"),
    };
    pages::with_cookies(resp, [clear])
}
