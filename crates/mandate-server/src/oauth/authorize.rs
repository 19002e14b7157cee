//! `GET|POST {issuer}/authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2.1): validate, then log in,
//! ask consent, or answer the client, as `mandate_core::oauth::authorize::next_step` decides.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use mandate_core::audit::RequestMeta;
use mandate_core::oauth::authorize::{self, AuthorizeError};
use mandate_core::{OAuthError, TenantCtx};

use crate::client_ip::Meta;
use crate::interaction::proceed;
use crate::params::{self, Params};
use crate::session::current_session;
use crate::state::AppState;
use crate::tenant::Tenant;
use crate::ui::pages;

pub async fn authorize_get(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let params = Params::parse(q.unwrap_or_default().as_bytes());
    run(&s, &t, &meta, &headers, params).await
}

pub async fn authorize_post(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !params::is_form(&headers) {
        return pages::error_page(
            &s,
            &headers,
            &OAuthError::invalid_request("Content-Type must be application/x-www-form-urlencoded"),
        );
    }
    run(&s, &t, &meta, &headers, Params::parse(&body)).await
}

async fn run(
    s: &AppState,
    t: &TenantCtx,
    meta: &RequestMeta,
    headers: &HeaderMap,
    params: Result<Params, OAuthError>,
) -> Response {
    let params = match params {
        Ok(p) => p,
        Err(e) => return pages::error_page(s, headers, &e),
    };
    match authorize::validate_request(&s.provider, t, &params.single, &params.all("resource")).await
    {
        Ok((client, req)) => {
            let session = match current_session(s, t, headers).await {
                Ok(sess) => sess,
                Err(e) => return pages::error_page(s, headers, &e),
            };
            proceed(s, t, meta, headers, &client, req, session, false).await
        }
        Err(AuthorizeError::Page(e)) => {
            if let Err(x) = refused(s, t, meta, &params, &e).await {
                return pages::error_page(s, headers, &x);
            }
            pages::error_page(s, headers, &e)
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
        }) => {
            if let Err(x) = refused(s, t, meta, &params, &error).await {
                return pages::error_page(s, headers, &x);
            }
            pages::see_other(&authorize::error_redirect(
                t,
                &redirect_uri,
                state.as_deref(),
                &error,
            ))
        }
    }
}

/// The refusal on the audit trail (`mandate_core::oauth::authorize::record_refusal`).
async fn refused(
    s: &AppState,
    t: &TenantCtx,
    meta: &RequestMeta,
    params: &Params,
    e: &OAuthError,
) -> Result<(), OAuthError> {
    authorize::record_refusal(&s.provider, t, meta, params.get("client_id"), e)
        .await
        .map_err(OAuthError::from)
}
