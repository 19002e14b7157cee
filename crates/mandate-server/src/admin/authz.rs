//! Admin API for fine-grained authorization: `/admin/v1/tenants/{t}/authz/{models,tuples,
//! policy,check}` (rules in `mandate_authz::admin`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use mandate_authz::admin as authz_admin;
use mandate_authz::{CheckRequest, PdpError, ReadFilter, Tuple};
use mandate_core::OAuthError;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Admin;
use crate::authzen::Refusal;
use crate::error::ApiError;
use crate::state::AppState;

fn refused(e: PdpError) -> Refusal {
    match e {
        PdpError::Authz(a) => Refusal::Authz(a),
        PdpError::Store(s) => Refusal::Api(ApiError::from(OAuthError::from(s))),
        other => Refusal::Api(ApiError::from(OAuthError::invalid_request(
            other.to_string(),
        ))),
    }
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::from(OAuthError::invalid_request(format!("invalid JSON: {e}"))))
}

/// `POST …/authz/models`: the body is the OpenFGA DSL, or the model's JSON form.
pub async fn write_model(
    State(s): State<AppState>,
    admin: Admin,
    body: Bytes,
) -> Result<Response, Refusal> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::from(OAuthError::invalid_request("the model must be UTF-8")))?;
    let id = authz_admin::write_model(
        &s.pdp,
        s.provider.store.as_ref(),
        admin.tenant.0.id(),
        text,
        &admin.caller.principal,
        s.provider.now(),
    )
    .await
    .map_err(refused)?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({"authorization_model_id": id})),
    )
        .into_response())
}

/// `GET …/authz/models`: the current model.
pub async fn current_model(State(s): State<AppState>, admin: Admin) -> Result<Response, Refusal> {
    let (id, model) = s
        .pdp
        .current_model(admin.tenant.0.id())
        .await
        .map_err(refused)?;
    Ok(
        Json(json!({"id": id, "authorization_model": model.to_json(), "dsl": model.to_dsl()}))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct TupleBatch {
    #[serde(default)]
    writes: Vec<Tuple>,
    #[serde(default)]
    deletes: Vec<Tuple>,
}

/// `POST …/authz/tuples` `{"writes": [...], "deletes": [...]}` → `{"revision"}`.
pub async fn write_tuples(
    State(s): State<AppState>,
    admin: Admin,
    body: Bytes,
) -> Result<Response, Refusal> {
    let batch: TupleBatch = serde_json::from_value(json_body(&body)?)
        .map_err(|e| ApiError::from(OAuthError::invalid_request(e.to_string())))?;
    let revision = authz_admin::write_tuples(
        &s.pdp,
        s.provider.store.as_ref(),
        admin.tenant.0.id(),
        &batch.writes,
        &batch.deletes,
        &admin.caller.principal,
    )
    .await
    .map_err(refused)?;
    Ok(Json(json!({"revision": revision})).into_response())
}

#[derive(Deserialize)]
pub struct TupleQuery {
    object: Option<String>,
    relation: Option<String>,
    user: Option<String>,
}

/// `GET …/authz/tuples?object=type[:id]&relation=&user=`.
pub async fn read_tuples(
    State(s): State<AppState>,
    admin: Admin,
    Query(q): Query<TupleQuery>,
) -> Result<Response, Refusal> {
    let (object_type, object_id) = match q.object.as_deref() {
        None => (None, None),
        Some(o) => match o.split_once(':') {
            Some((t, id)) => (Some(t.to_string()), Some(id.to_string())),
            None => (Some(o.to_string()), None),
        },
    };
    let filter = ReadFilter {
        object_type,
        object_id,
        relation: q.relation,
        user: q.user,
    };
    let tuples = s
        .pdp
        .read_tuples(admin.tenant.0.id(), &filter, None)
        .await
        .map_err(refused)?;
    Ok(Json(json!({"tuples": tuples})).into_response())
}

#[derive(Deserialize)]
struct PolicyBody {
    policies: String,
    schema: Option<String>,
}

/// `PUT …/authz/policy` `{"policies": "...cedar...", "schema": "..."?}` → `{"version"}`.
pub async fn set_policy(
    State(s): State<AppState>,
    admin: Admin,
    body: Bytes,
) -> Result<Response, Refusal> {
    let p: PolicyBody = serde_json::from_value(json_body(&body)?)
        .map_err(|e| ApiError::from(OAuthError::invalid_request(e.to_string())))?;
    let version = authz_admin::set_policy(
        &s.pdp,
        s.provider.store.as_ref(),
        admin.tenant.0.id(),
        &p.policies,
        p.schema.as_deref(),
        &admin.caller.principal,
        s.provider.now(),
    )
    .await
    .map_err(refused)?;
    Ok(Json(json!({"version": version})).into_response())
}

#[derive(Deserialize)]
struct CheckBody {
    #[serde(flatten)]
    check: CheckRequest,
    revision: Option<i64>,
    authorization_model_id: Option<String>,
}

/// `POST …/authz/check` (OpenFGA-style Check with contextual tuples) → `{"allowed"}`.
pub async fn check(
    State(s): State<AppState>,
    admin: Admin,
    body: Bytes,
) -> Result<Response, Refusal> {
    let c: CheckBody = serde_json::from_value(json_body(&body)?)
        .map_err(|e| ApiError::from(OAuthError::invalid_request(e.to_string())))?;
    let allowed = s
        .pdp
        .check(
            admin.tenant.0.id(),
            &c.check,
            c.revision,
            c.authorization_model_id.as_deref(),
        )
        .await
        .map_err(refused)?;
    Ok(Json(json!({"allowed": allowed})).into_response())
}
