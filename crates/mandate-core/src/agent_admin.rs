//! Registering agents and granting or revoking mandates (CLI and admin API). Every change is
//! audited.

use serde_json::{Value, json};

use crate::admin::{ClientSpec, create_client};
use crate::agents::{Agent, AgentStatus, Mandate, MandateOrigin};
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::error::AdminError;
use crate::model::TOKEN_EXCHANGE;
use crate::scope::Scope;
use crate::secret::random_token;
use crate::store::{MandateSelector, Store};
use crate::time::now;

/// Longest a mandate may run (one year).
pub const MAX_MANDATE_SECONDS: i64 = 366 * 24 * 3600;

fn event(tenant_id: &str, kind: EventKind, actor: &str, detail: Value) -> AuditEvent {
    AuditEvent::new(
        tenant_id,
        kind,
        Outcome::Success,
        Principal::Admin {
            id: actor.to_string(),
        },
        &RequestMeta::default(),
    )
    .detail(detail)
}

async fn tenant_id(store: &dyn Store, name: &str) -> Result<String, AdminError> {
    Ok(store
        .tenant_by_name(name)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("tenant {name}")))?
        .id)
}

/// What to register for a new agent.
#[derive(Debug, Clone, Default)]
pub struct AgentSpec {
    pub name: String,
    /// The owning user's username; `None` for a tenant-owned agent.
    pub owner_username: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub version: Option<String>,
    pub scope_ceiling: Vec<String>,
    /// A public JWK (or JWK Set) for private_key_jwt; `None`: a generated secret.
    pub jwk: Option<Value>,
    pub require_dpop: bool,
}

/// Register an agent and the OAuth client it authenticates as (same id). Returns the agent and,
/// for a secret-authenticated one, the secret (shown once).
pub async fn create_agent(
    store: &dyn Store,
    tenant_name: &str,
    spec: AgentSpec,
    actor: &str,
) -> Result<(Agent, Option<String>), AdminError> {
    let tid = tenant_id(store, tenant_name).await?;
    if spec.scope_ceiling.is_empty() {
        return Err(AdminError::Invalid(
            "an agent needs a scope ceiling (--scope-ceiling)".into(),
        ));
    }
    let owner = match &spec.owner_username {
        None => None,
        Some(u) => Some(
            store
                .user_by_username(&tid, u)
                .await?
                .ok_or_else(|| AdminError::NotFound(format!("user {u}")))?
                .id,
        ),
    };
    let jwks = match spec.jwk {
        None => None,
        Some(j) => {
            let keys = match j.get("keys") {
                Some(Value::Array(k)) => k.clone(),
                Some(_) => return Err(AdminError::Invalid("invalid JWK Set".into())),
                None => vec![j],
            };
            let private = ["d", "p", "q", "dp", "dq", "qi", "k"];
            for k in &keys {
                if k.get("kty").and_then(Value::as_str).is_none() {
                    return Err(AdminError::Invalid("a JWK needs kty".into()));
                }
                if private.iter().any(|m| k.get(m).is_some()) {
                    return Err(AdminError::Invalid(
                        "the JWK holds private key material: register the public key only".into(),
                    ));
                }
            }
            Some(json!({"keys": keys}))
        }
    };
    let ceiling = Scope::parse(&spec.scope_ceiling.join(" "))
        .ok_or_else(|| AdminError::Invalid("invalid scope".into()))?;
    let (client, secret) = create_client(
        store,
        tenant_name,
        ClientSpec {
            name: spec.name.clone(),
            grant_types: vec![TOKEN_EXCHANGE.into()],
            scopes: spec.scope_ceiling.clone(),
            jwks,
            ..ClientSpec::default()
        },
        actor,
    )
    .await?;
    let ts = now();
    let agent = Agent {
        tenant_id: tid.clone(),
        id: client.client_id.clone(),
        name: spec.name,
        owner_user_id: owner,
        provider: spec.provider,
        model: spec.model,
        version: spec.version,
        scope_ceiling: ceiling,
        require_dpop: spec.require_dpop,
        status: AgentStatus::Active,
        created_at: ts,
        updated_at: ts,
    };
    store.create_agent(&agent).await?;
    let mut ev = event(&tid, EventKind::AgentCreated, actor, agent.metadata());
    ev.act_chain = vec![];
    store.record(&ev.client(agent.id.clone())).await?;
    Ok((agent, secret))
}

/// Find an agent of a tenant.
pub async fn agent(store: &dyn Store, tenant_name: &str, id: &str) -> Result<Agent, AdminError> {
    let tid = tenant_id(store, tenant_name).await?;
    store
        .agent(&tid, id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("agent {id}")))
}

/// Every agent of a tenant.
pub async fn list_agents(store: &dyn Store, tenant_name: &str) -> Result<Vec<Agent>, AdminError> {
    let tid = tenant_id(store, tenant_name).await?;
    Ok(store.list_agents(&tid).await?)
}

/// Suspend, resume or delete an agent. Suspension and deletion make every token it holds (and
/// every token delegated through it) inactive at once; deletion also revokes its mandates.
pub async fn set_agent_status(
    store: &dyn Store,
    tenant_name: &str,
    id: &str,
    status: AgentStatus,
    actor: &str,
) -> Result<Agent, AdminError> {
    let tid = tenant_id(store, tenant_name).await?;
    let ts = now();
    if !store.set_agent_status(&tid, id, status, ts).await? {
        return Err(AdminError::NotFound(format!("agent {id}")));
    }
    let kind = match status {
        AgentStatus::Active => EventKind::AgentResumed,
        AgentStatus::Suspended => EventKind::AgentSuspended,
        AgentStatus::Deleted => EventKind::AgentDeleted,
    };
    store
        .record(&event(&tid, kind, actor, json!({"agent_id": id})).client(id.to_string()))
        .await?;
    if status == AgentStatus::Deleted {
        revoke_mandates(
            store,
            &tid,
            MandateSelector::Agent(id),
            actor,
            "agent deleted",
        )
        .await?;
    }
    agent(store, tenant_name, id).await
}

/// What a mandate grants.
#[derive(Debug, Clone, Default)]
pub struct MandateSpec {
    pub username: String,
    pub agent_id: String,
    pub scopes: Vec<String>,
    pub authorization_details: Vec<Value>,
    pub resources: Vec<String>,
    /// Seconds from now until it expires.
    pub expires_in: i64,
    /// Longest lifetime of one token issued under it (seconds).
    pub max_token_lifetime: i64,
    pub max_delegation_depth: u32,
    pub approval_required: Vec<String>,
}

/// Record a mandate from a user to an agent. The scope must stay within the agent's ceiling.
pub async fn create_mandate(
    store: &dyn Store,
    tenant_name: &str,
    spec: MandateSpec,
    origin: MandateOrigin,
    actor: &str,
) -> Result<Mandate, AdminError> {
    let tid = tenant_id(store, tenant_name).await?;
    let user = store
        .user_by_username(&tid, &spec.username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("user {}", spec.username)))?;
    let agent = store
        .agent(&tid, &spec.agent_id)
        .await?
        .filter(|a| a.status == AgentStatus::Active)
        .ok_or_else(|| AdminError::NotFound(format!("active agent {}", spec.agent_id)))?;
    let scope = Scope::parse(&spec.scopes.join(" "))
        .ok_or_else(|| AdminError::Invalid("invalid scope".into()))?;
    if scope.is_empty() && spec.authorization_details.is_empty() {
        return Err(AdminError::Invalid(
            "a mandate needs a scope or authorization details".into(),
        ));
    }
    if !scope.is_subset(&agent.scope_ceiling) {
        return Err(AdminError::Invalid(format!(
            "the scope exceeds the agent's ceiling ({})",
            agent.scope_ceiling
        )));
    }
    if !(1..=MAX_MANDATE_SECONDS).contains(&spec.expires_in) {
        return Err(AdminError::Invalid(format!(
            "expiry must be 1 to {MAX_MANDATE_SECONDS} seconds from now"
        )));
    }
    if spec.max_token_lifetime < 1 {
        return Err(AdminError::Invalid(
            "the maximum token lifetime must be at least 1 second".into(),
        ));
    }
    for r in &spec.resources {
        if url::Url::parse(r).is_err() || r.contains('#') {
            return Err(AdminError::Invalid(format!(
                "invalid resource {r:?}: an absolute URI without fragment (RFC 8707)"
            )));
        }
    }
    if spec
        .authorization_details
        .iter()
        .any(|d| d.get("type").and_then(Value::as_str).is_none())
    {
        return Err(AdminError::Invalid(
            "every authorization detail needs a type".into(),
        ));
    }
    let ts = now();
    let m = Mandate {
        tenant_id: tid.clone(),
        id: random_token(16),
        user_id: user.id.clone(),
        agent_id: agent.id.clone(),
        scope,
        authorization_details: spec.authorization_details,
        resources: spec.resources,
        expires_at: ts + spec.expires_in,
        max_token_lifetime: spec.max_token_lifetime,
        max_delegation_depth: spec.max_delegation_depth,
        approval_required: spec.approval_required,
        origin,
        created_at: ts,
        revoked_at: None,
    };
    store.create_mandate(&m).await?;
    let mut ev = event(
        &tid,
        EventKind::MandateCreated,
        actor,
        json!({
            "agent_id": m.agent_id,
            "scope": m.scope.to_string(),
            "resources": m.resources,
            "authorization_details": m.authorization_details,
            "expires_at": m.expires_at,
            "max_token_lifetime": m.max_token_lifetime,
            "max_delegation_depth": m.max_delegation_depth,
            "origin": m.origin.as_str(),
        }),
    )
    .subject(Principal::User { id: user.id });
    ev.mandate_id = Some(m.id.clone());
    store.record(&ev).await?;
    Ok(m)
}

/// Revoke mandates (one, an agent's, or all of a user's), recording each; returns their ids.
/// Every token derived from them, down the chain, is inactive at once.
pub async fn revoke_mandates(
    store: &dyn Store,
    tenant_id: &str,
    which: MandateSelector<'_>,
    actor: &str,
    reason: &str,
) -> Result<Vec<String>, AdminError> {
    let ids = store.revoke_mandates(tenant_id, which, now()).await?;
    for id in &ids {
        let mut ev = event(tenant_id, EventKind::MandateRevoked, actor, json!({}))
            .reason(reason.to_string());
        ev.mandate_id = Some(id.clone());
        store.record(&ev).await?;
    }
    Ok(ids)
}

/// [`revoke_mandates`] by tenant name.
pub async fn revoke_mandates_in(
    store: &dyn Store,
    tenant_name: &str,
    which: MandateSelector<'_>,
    actor: &str,
) -> Result<Vec<String>, AdminError> {
    let tid = tenant_id(store, tenant_name).await?;
    let ids = revoke_mandates(store, &tid, which, actor, "revoked by an administrator").await?;
    if ids.is_empty() && matches!(which, MandateSelector::One(_)) {
        return Err(AdminError::NotFound("mandate in force".into()));
    }
    Ok(ids)
}
