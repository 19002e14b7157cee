//! Admin API for a person's sign-in methods: `GET …/users/{username}/methods`, `DELETE
//! …/users/{username}/methods/totp` (reset a lost authenticator app and its recovery codes) and
//! `DELETE …/users/{username}/passkeys/{id}`. Rules and audit records in
//! `mandate_core::login::second_factor`, shared with the CLI.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mandate_core::login::second_factor;

use super::Admin;
use super::agents::refused;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET …/users/{username}/methods`: password yes/no, passkeys, authenticator app, recovery
/// codes left (never a secret).
pub async fn methods(
    State(s): State<AppState>,
    admin: Admin,
    Path((_, username)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let view = second_factor::methods_of(&s.provider, &admin.tenant.0, &username)
        .await
        .map_err(refused)?;
    Ok(Json(view).into_response())
}

/// `DELETE …/users/{username}/methods/totp`: 204; 404 when the person has none.
pub async fn reset_second_factor(
    State(s): State<AppState>,
    admin: Admin,
    Path((_, username)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    second_factor::reset(
        &s.provider,
        &admin.tenant.0,
        &username,
        admin.caller.principal.clone(),
        &admin.meta.0,
    )
    .await
    .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE …/users/{username}/passkeys/{id}`: 204; 404 when the person has no such passkey,
/// 400 when it is their only way to sign in.
pub async fn remove_passkey(
    State(s): State<AppState>,
    admin: Admin,
    Path((_, username, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    second_factor::remove_passkey(
        &s.provider,
        &admin.tenant.0,
        &username,
        &id,
        admin.caller.principal.clone(),
        &admin.meta.0,
    )
    .await
    .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
