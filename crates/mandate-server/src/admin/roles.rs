//! Admin API for people's roles: `GET …/roles`, `PUT|DELETE …/roles/{role}/users/{username}`
//! (rules in `mandate_core::access::roles`; every change is audited there). Only a caller allowed to
//! manage (a client's own `mandate:admin` token, or a person holding `admin`) may call them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mandate_core::access::roles::{self, RoleActor};
use serde_json::json;

use super::Admin;
use super::agents::refused;
use crate::error::ApiError;
use crate::state::AppState;

fn actor(admin: &Admin) -> RoleActor<'_> {
    RoleActor {
        principal: admin.caller.principal.clone(),
        client_id: Some(&admin.caller.client_id),
        meta: &admin.meta.0,
    }
}

/// `GET …/roles`: every role held in the tenant.
pub async fn list(State(s): State<AppState>, admin: Admin) -> Result<Response, ApiError> {
    let all = roles::list(s.provider.store.as_ref(), admin.tenant.0.id())
        .await
        .map_err(refused)?;
    Ok(Json(json!({ "roles": all })).into_response())
}

/// `PUT …/roles/{role}/users/{username}`: 201 when granted now, 200 when already held.
pub async fn grant(
    State(s): State<AppState>,
    admin: Admin,
    Path((_, role, username)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let role = roles::parse_role(&role).map_err(refused)?;
    let new = roles::grant(
        s.provider.store.as_ref(),
        admin.tenant.0.id(),
        &username,
        role,
        &actor(&admin),
    )
    .await
    .map_err(refused)?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({"username": username, "role": role.as_str(), "granted": new});
    Ok((status, Json(body)).into_response())
}

/// `DELETE …/roles/{role}/users/{username}`: 204; 404 when the person did not hold it.
pub async fn revoke(
    State(s): State<AppState>,
    admin: Admin,
    Path((_, role, username)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let role = roles::parse_role(&role).map_err(refused)?;
    roles::revoke(
        s.provider.store.as_ref(),
        admin.tenant.0.id(),
        &username,
        role,
        &actor(&admin),
    )
    .await
    .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
