//! `GET|POST {issuer}/userinfo` (OIDC Core §5.3) with RFC 6750 bearer tokens (the header, or
//! `access_token` in a form body; never in the query) or RFC 9449 DPoP-bound tokens.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use mandate_core::oauth::dpop::proof::Scheme;
use mandate_core::{OAuthError, oidc::userinfo};

use crate::bearer::PresentedToken;
use crate::error::{ApiError, bearer_error, resource_error};
use crate::params::{self, Params};
use crate::state::AppState;
use crate::tenant::Tenant;

async fn answer(
    s: &AppState,
    t: &mandate_core::TenantCtx,
    token: Option<PresentedToken>,
    method: &str,
) -> Result<Response, ApiError> {
    let Some(token) = token else {
        return Err(ApiError {
            error: OAuthError::invalid_token("access token required"),
            challenge: Some("Bearer".into()),
            status: None,
        });
    };
    let uri = t.url("/userinfo");
    let claims = userinfo::userinfo(&s.provider, t, &token.presented(method, &uri))
        .await
        .map_err(|e| resource_error(e, Some(token.scheme)))?;
    Ok(Json(claims).into_response())
}

pub async fn userinfo_get(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(&s, &t, PresentedToken::from_headers(&headers)?, "GET").await
}

pub async fn userinfo_post(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let from_header = PresentedToken::from_headers(&headers)?;
    let from_body = if params::is_form(&headers) {
        Params::parse(&body)?
            .opt("access_token")
            .map(|token| PresentedToken {
                scheme: Scheme::Bearer,
                token,
                proof: None,
            })
    } else {
        None
    };
    if from_header.is_some() && from_body.is_some() {
        return Err(bearer_error(OAuthError::invalid_request(
            "access token sent twice",
        )));
    }
    answer(&s, &t, from_header.or(from_body), "POST").await
}
