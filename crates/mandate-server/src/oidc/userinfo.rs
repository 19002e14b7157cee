//! `GET|POST {issuer}/userinfo` (OIDC Core §5.3) with RFC 6750 bearer tokens: the header, or
//! `access_token` in a form body; never in the query.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use mandate_core::{OAuthError, userinfo};

use crate::error::{ApiError, bearer_error};
use crate::params::{self, Params};
use crate::state::AppState;
use crate::tenant::Tenant;

pub(crate) fn header_token(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        None => Ok(None),
        Some(v) if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") => {
            Ok(Some(v[7..].trim().to_string()))
        }
        Some(_) => Err(bearer_error(OAuthError::invalid_request(
            "unsupported authorization scheme",
        ))),
    }
}

async fn answer(
    s: &AppState,
    t: &mandate_core::TenantCtx,
    token: Option<String>,
) -> Result<Response, ApiError> {
    let Some(token) = token else {
        return Err(ApiError {
            error: OAuthError::invalid_token("access token required"),
            challenge: Some("Bearer".into()),
            status: None,
        });
    };
    let claims = userinfo::userinfo(&s.provider, t, &token)
        .await
        .map_err(bearer_error)?;
    Ok(Json(claims).into_response())
}

pub async fn userinfo_get(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(&s, &t, header_token(&headers)?).await
}

pub async fn userinfo_post(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let from_header = header_token(&headers)?;
    let from_body = if params::is_form(&headers) {
        Params::parse(&body)?.opt("access_token")
    } else {
        None
    };
    if from_header.is_some() && from_body.is_some() {
        return Err(bearer_error(OAuthError::invalid_request(
            "access token sent twice",
        )));
    }
    answer(&s, &t, from_header.or(from_body)).await
}
