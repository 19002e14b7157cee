//! `POST {issuer}/introspect` (RFC 7662). Callers authenticate as clients of the tenant.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mandate_core::{OAuthError, oauth::introspect};

use super::authenticated_form;
use crate::client_ip::Meta;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tenant::Tenant;

pub async fn introspect(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (p, caller) = authenticated_form(&s, &t, &meta, &headers, &body, "/introspect").await?;
    let token = p
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let out =
        introspect::introspect(&s.provider, &t, &caller, token, p.get("token_type_hint")).await?;
    let mut r = Json(out).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
