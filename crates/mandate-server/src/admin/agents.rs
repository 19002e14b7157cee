//! Admin API for the agent registry and mandates: `/admin/v1/tenants/{t}/agents[/{id}[/suspend|
//! /resume]]` and `/admin/v1/tenants/{t}/mandates[/{id}]` (rules in
//! `mandate_core::agents`, the same the CLI uses; every change is audited there).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mandate_core::OAuthError;
use mandate_core::agents::{self, AgentSpec, MandateSpec, MandateTerms};
use mandate_core::domain::agents::{AgentStatus, Mandate, MandateOrigin};
use mandate_core::error::{AdminError, ErrorCode};
use mandate_core::store::MandateSelector;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Admin;
use crate::error::ApiError;
use crate::state::AppState;

/// Admin errors as API errors: bad input 400, unknown 404, duplicate 409.
pub(super) fn refused(e: AdminError) -> ApiError {
    let (code, status) = match e {
        AdminError::Invalid(_) => (ErrorCode::InvalidRequest, None),
        AdminError::NotFound(_) => (ErrorCode::InvalidRequest, Some(StatusCode::NOT_FOUND)),
        AdminError::Conflict(_) => (ErrorCode::InvalidRequest, Some(StatusCode::CONFLICT)),
        AdminError::Store(s) => return ApiError::from(OAuthError::from(s)),
        AdminError::Crypto(why) => return ApiError::from(OAuthError::server_error(why)),
        AdminError::Busy(_) => (
            ErrorCode::TemporarilyUnavailable,
            Some(StatusCode::TOO_MANY_REQUESTS),
        ),
    };
    ApiError {
        error: OAuthError::new(code, e.to_string()),
        challenge: None,
        status,
    }
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::from(OAuthError::invalid_request(format!("invalid JSON: {e}"))))
}

/// Who the audit trail names for a change made through the API.
fn actor(admin: &Admin) -> String {
    admin
        .caller
        .principal
        .parts()
        .1
        .unwrap_or_default()
        .to_string()
}

/// A scope given as a space-separated string or an array of scopes.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    Text(String),
    List(Vec<String>),
}

impl Scopes {
    fn into_vec(self) -> Vec<String> {
        match self {
            Scopes::Text(s) => s.split_whitespace().map(str::to_string).collect(),
            Scopes::List(l) => l,
        }
    }
}

/// `POST …/agents` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAgent {
    name: String,
    /// The owning user's username; absent with `tenant_owned: true`.
    owner: Option<String>,
    #[serde(default)]
    tenant_owned: bool,
    provider: Option<String>,
    model: Option<String>,
    version: Option<String>,
    scope_ceiling: Scopes,
    /// A public JWK or JWK Set for private_key_jwt; absent with `generate_secret: true`.
    jwk: Option<Value>,
    #[serde(default)]
    generate_secret: bool,
    #[serde(default)]
    require_dpop: bool,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

/// `POST …/agents`: register an agent (201, with `client_secret` once for a secret agent).
pub async fn create_agent(
    State(s): State<AppState>,
    admin: Admin,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let req: NewAgent = body(&bytes)?;
    if req.owner.is_some() == req.tenant_owned {
        return Err(
            OAuthError::invalid_request("give exactly one of owner and tenant_owned").into(),
        );
    }
    if req.jwk.is_some() == req.generate_secret {
        return Err(
            OAuthError::invalid_request("give exactly one of jwk and generate_secret").into(),
        );
    }
    let (agent, secret) = agents::create_agent(
        s.provider.store.as_ref(),
        &admin.tenant.0.tenant.name,
        AgentSpec {
            name: req.name,
            owner_username: req.owner,
            provider: req.provider,
            model: req.model,
            version: req.version,
            scope_ceiling: req.scope_ceiling.into_vec(),
            jwk: req.jwk,
            require_dpop: req.require_dpop,
            redirect_uris: req.redirect_uris,
        },
        &actor(&admin),
    )
    .await
    .map_err(refused)?;
    let mut view = agent.admin_view();
    if let Some(secret) = secret {
        view["client_secret"] = secret.into();
    }
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET …/agents`.
pub async fn list_agents(State(s): State<AppState>, admin: Admin) -> Result<Response, ApiError> {
    let all = agents::list_agents(s.provider.store.as_ref(), &admin.tenant.0.tenant.name)
        .await
        .map_err(refused)?;
    let list: Vec<Value> = all.iter().map(|a| a.admin_view()).collect();
    Ok(Json(json!({ "agents": list })).into_response())
}

/// `GET …/agents/{id}`.
pub async fn show_agent(
    State(s): State<AppState>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let a = agents::agent(s.provider.store.as_ref(), &admin.tenant.0.tenant.name, &id)
        .await
        .map_err(refused)?;
    Ok(Json(a.admin_view()).into_response())
}

async fn set_status(
    s: &AppState,
    admin: &Admin,
    id: &str,
    status: AgentStatus,
) -> Result<Response, ApiError> {
    let a = agents::set_agent_status(
        s.provider.store.as_ref(),
        &admin.tenant.0.tenant.name,
        id,
        status,
        &actor(admin),
    )
    .await
    .map_err(refused)?;
    Ok(Json(a.admin_view()).into_response())
}

/// `POST …/agents/{id}/suspend`: every token it holds is inactive at once.
pub async fn suspend_agent(
    State(s): State<AppState>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    set_status(&s, &admin, &id, AgentStatus::Suspended).await
}

/// `POST …/agents/{id}/resume`.
pub async fn resume_agent(
    State(s): State<AppState>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    set_status(&s, &admin, &id, AgentStatus::Active).await
}

/// `DELETE …/agents/{id}`: tokens inactive, mandates revoked; the record stays for the trail.
pub async fn delete_agent(
    State(s): State<AppState>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    set_status(&s, &admin, &id, AgentStatus::Deleted).await
}

/// `POST …/mandates` body: the person by username and the terms.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMandate {
    username: String,
    agent_id: String,
    #[serde(default)]
    scope: Option<Scopes>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    authorization_details: Vec<Value>,
    expires_in: Option<i64>,
    max_token_lifetime: Option<i64>,
    #[serde(default)]
    max_delegation_depth: u32,
    #[serde(default)]
    approval_required: Vec<String>,
    #[serde(default)]
    allow_refresh: bool,
}

/// `POST …/mandates`: record a mandate from a person to an agent (201).
pub async fn create_mandate(
    State(s): State<AppState>,
    admin: Admin,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    use mandate_core::account::{DEFAULT_EXPIRES_IN, DEFAULT_MAX_TOKEN_LIFETIME};
    let req: NewMandate = body(&bytes)?;
    let m = agents::create_mandate(
        s.provider.store.as_ref(),
        &admin.tenant.0.tenant.name,
        MandateSpec {
            username: req.username,
            terms: MandateTerms {
                agent_id: req.agent_id,
                scopes: req.scope.map(Scopes::into_vec).unwrap_or_default(),
                authorization_details: req.authorization_details,
                resources: req.resources,
                expires_in: req.expires_in.unwrap_or(DEFAULT_EXPIRES_IN),
                max_token_lifetime: req.max_token_lifetime.unwrap_or(DEFAULT_MAX_TOKEN_LIFETIME),
                max_delegation_depth: req.max_delegation_depth,
                approval_required: req.approval_required,
                allow_refresh: req.allow_refresh,
            },
        },
        MandateOrigin::Api,
        &actor(&admin),
    )
    .await
    .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(m.admin_view())).into_response())
}

#[derive(Deserialize)]
pub struct MandateFilter {
    username: Option<String>,
    agent_id: Option<String>,
    /// Include revoked and expired ones.
    #[serde(default)]
    all: bool,
}

/// `GET …/mandates?username=U[&agent_id=A][&all=true]`: a person's mandates (in force unless
/// `all`), newest first.
pub async fn list_mandates(
    State(s): State<AppState>,
    admin: Admin,
    Query(f): Query<MandateFilter>,
) -> Result<Response, ApiError> {
    let store = s.provider.store.as_ref();
    let t = &admin.tenant.0;
    let username = f
        .username
        .ok_or_else(|| OAuthError::invalid_request("username is required"))?;
    let which = agents::MandateListing {
        agent_id: f.agent_id,
        include_ended: f.all,
    };
    let list: Vec<Value> =
        agents::person_mandates(store, t.id(), &username, &which, s.provider.now())
            .await
            .map_err(refused)?
            .iter()
            .map(Mandate::admin_view)
            .collect();
    Ok(Json(json!({ "mandates": list })).into_response())
}

/// `GET …/mandates/{id}`.
pub async fn show_mandate(
    State(s): State<AppState>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let m = s
        .provider
        .store
        .mandate(admin.tenant.0.id(), &id)
        .await?
        .ok_or_else(|| refused(AdminError::NotFound(format!("mandate {id}"))))?;
    Ok(Json(m.admin_view()).into_response())
}

/// `DELETE …/mandates/{id}`: revoke it; every token derived from it, down the chain, is
/// inactive at once (200 with the revoked ids; 404 if none in force has that id).
pub async fn revoke_mandate(
    State(s): State<AppState>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ids = agents::revoke_mandates_in(
        s.provider.store.as_ref(),
        &admin.tenant.0.tenant.name,
        MandateSelector::One(&id),
        &actor(&admin),
    )
    .await
    .map_err(refused)?;
    Ok(Json(json!({ "revoked": ids })).into_response())
}
