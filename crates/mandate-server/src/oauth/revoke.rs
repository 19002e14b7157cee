//! `POST {issuer}/revoke` (RFC 7009).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use mandate_core::{OAuthError, oauth::revoke};

use super::authenticated_form;
use crate::client_ip::Meta;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tenant::Tenant;

pub async fn revoke(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (p, caller) = authenticated_form(&s, &t, &meta, &headers, &body, "/revoke").await?;
    let token = p
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    // An unknown token_type_hint is ignored: the search covers every type (RFC 7009 §2.1).
    revoke::revoke(
        &s.provider,
        &t,
        &caller,
        token,
        p.get("token_type_hint"),
        &meta,
    )
    .await?;
    Ok(StatusCode::OK)
}
