//! Registering agents and granting or revoking mandates (CLI and admin API). Every change is
//! audited. Its storage port is [`store`].

pub mod store;

use serde_json::{Value, json};

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::random_token;
use crate::domain::agents::{Agent, AgentStatus, Mandate, MandateOrigin};
use crate::domain::model::{CIBA_GRANT, TOKEN_EXCHANGE};
use crate::domain::scope::Scope;
use crate::error::AdminError;
use crate::registry::{ClientSpec, create_client};
use crate::store::{
    AgentStore, AuditSink, CibaStore, ClientStore, MandateSelector, MandateStore, TenantStore,
    UserStore,
};
use crate::time::now;

/// Longest a mandate may run (one year).
pub const MAX_MANDATE_SECONDS: i64 = 366 * 24 * 3600;

fn event(tenant_id: &str, kind: EventKind, actor: &str, detail: Value) -> AuditEvent {
    AuditEvent::new(
        tenant_id,
        kind,
        Outcome::Success,
        admin(actor),
        &RequestMeta::default(),
    )
    .detail(detail)
}

fn admin(actor: &str) -> Principal {
    Principal::Admin {
        id: actor.to_string(),
    }
}

async fn tenant_id<S>(store: &S, name: &str) -> Result<String, AdminError>
where
    S: TenantStore + ?Sized,
{
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
    /// Redirect URIs: with any, the agent's client may also run the authorization code flow
    /// (the person then sees the consent page naming the agent, and approving records a
    /// mandate).
    pub redirect_uris: Vec<String>,
}

/// A CIBA registration for a new agent ([`create_agent_with_ciba`]).
#[derive(Debug, Clone, Default)]
pub struct CibaSpec {
    /// `backchannel_token_delivery_mode`: `poll` or `ping`.
    pub mode: String,
    /// `backchannel_client_notification_endpoint` (ping mode only).
    pub notification_endpoint: Option<String>,
}

/// Register an agent and the OAuth client it authenticates as (same id). Returns the agent and,
/// for a secret-authenticated one, the secret (shown once).
pub async fn create_agent<S>(
    store: &S,
    tenant_name: &str,
    spec: AgentSpec,
    actor: &str,
) -> Result<(Agent, Option<String>), AdminError>
where
    S: AgentStore + AuditSink + CibaStore + ClientStore + TenantStore + UserStore + ?Sized,
{
    create_agent_with_ciba(store, tenant_name, spec, None, actor).await
}

/// [`create_agent`], optionally registered for CIBA: its client is then allowed the CIBA grant
/// and may make backchannel authentication requests (CIBA).
pub async fn create_agent_with_ciba<S>(
    store: &S,
    tenant_name: &str,
    spec: AgentSpec,
    ciba: Option<CibaSpec>,
    actor: &str,
) -> Result<(Agent, Option<String>), AdminError>
where
    S: AgentStore + AuditSink + CibaStore + ClientStore + TenantStore + UserStore + ?Sized,
{
    let tid = tenant_id(store, tenant_name).await?;
    if spec.scope_ceiling.is_empty() {
        return Err(AdminError::Invalid(
            "an agent needs a scope ceiling (scope_ceiling)".into(),
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
    let ciba = match &ciba {
        None => None,
        Some(c) => Some(crate::ciba::model::registration_terms(
            &c.mode,
            c.notification_endpoint.as_deref(),
        )?),
    };
    // With redirect URIs the agent's client also runs the code flow; `openid` lets it learn
    // who signed in (OIDC scopes never go into a mandate).
    let (grant_types, scopes) = if spec.redirect_uris.is_empty() {
        (vec![TOKEN_EXCHANGE.into()], spec.scope_ceiling.clone())
    } else {
        let mut scopes = spec.scope_ceiling.clone();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.push("openid".into());
        }
        (
            vec!["authorization_code".into(), TOKEN_EXCHANGE.into()],
            scopes,
        )
    };
    let mut grant_types = grant_types;
    if ciba.is_some() {
        grant_types.push(CIBA_GRANT.into());
    }
    let (client, secret) = create_client(
        store,
        tenant_name,
        ClientSpec {
            name: spec.name.clone(),
            grant_types,
            scopes,
            redirect_uris: spec.redirect_uris.clone(),
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
        status_reason: None,
        created_at: ts,
        updated_at: ts,
    };
    store.create_agent(&agent).await?;
    let mut detail = agent.metadata();
    if let Some((mode, endpoint)) = ciba {
        store
            .put_ciba_registration(&crate::ciba::model::CibaRegistration {
                tenant_id: tid.clone(),
                client_id: agent.id.clone(),
                mode,
                notification_endpoint: endpoint,
            })
            .await?;
        detail["ciba_mode"] = mode.as_str().into();
    }
    let mut ev = event(&tid, EventKind::AgentCreated, actor, detail);
    ev.act_chain = vec![];
    store.record(&ev.client(agent.id.clone())).await?;
    Ok((agent, secret))
}

/// Find an agent of a tenant.
pub async fn agent<S>(store: &S, tenant_name: &str, id: &str) -> Result<Agent, AdminError>
where
    S: AgentStore + TenantStore + ?Sized,
{
    let tid = tenant_id(store, tenant_name).await?;
    store
        .agent(&tid, id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("agent {id}")))
}

/// Every agent of a tenant.
pub async fn list_agents<S>(store: &S, tenant_name: &str) -> Result<Vec<Agent>, AdminError>
where
    S: AgentStore + TenantStore + ?Sized,
{
    let tid = tenant_id(store, tenant_name).await?;
    Ok(store.list_agents(&tid).await?)
}

/// Suspend, resume or delete an agent. Suspension and deletion make every token it holds (and
/// every token delegated through it) inactive at once; deletion also revokes its mandates.
pub async fn set_agent_status<S>(
    store: &S,
    tenant_name: &str,
    id: &str,
    status: AgentStatus,
    actor: &str,
) -> Result<Agent, AdminError>
where
    S: AgentStore + AuditSink + MandateStore + TenantStore + ?Sized,
{
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

/// What a mandate grants, for a user named by username (CLI and admin API).
#[derive(Debug, Clone, Default)]
pub struct MandateSpec {
    pub username: String,
    pub terms: MandateTerms,
}

/// The terms of a mandate to an agent, whoever grants it (administrator, the person by API, or
/// the person by browser consent).
#[derive(Debug, Clone, Default)]
pub struct MandateTerms {
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
    /// Tokens under it may come with a refresh token.
    pub allow_refresh: bool,
}

/// Record a mandate from a user (by username) to an agent, as an administrator. See
/// [`grant_mandate`] for the rules.
pub async fn create_mandate<S>(
    store: &S,
    tenant_name: &str,
    spec: MandateSpec,
    origin: MandateOrigin,
    actor: &str,
) -> Result<Mandate, AdminError>
where
    S: AgentStore + AuditSink + MandateStore + TenantStore + UserStore + ?Sized,
{
    let tenant = store
        .tenant_by_name(tenant_name)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("tenant {tenant_name}")))?;
    if !tenant
        .settings
        .details_allowed(&spec.terms.authorization_details)
    {
        return Err(AdminError::Invalid(
            "an authorization_details type is not among the tenant's (mandate tenant set)".into(),
        ));
    }
    let tid = tenant.id;
    let user = store
        .user_by_username(&tid, &spec.username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("user {}", spec.username)))?;
    grant_mandate(
        store,
        &tid,
        &user.id,
        spec.terms,
        origin,
        admin(actor),
        &RequestMeta::default(),
    )
    .await
}

/// Longest list (scopes, resources, details, approval actions) one mandate may carry.
const MAX_MANDATE_ITEMS: usize = 64;

/// Record a mandate from the user `user_id` to an active agent, and audit `mandate_created`
/// with `actor` (the administrator, or the person themselves). The rules: a scope within the
/// agent's ceiling and/or typed authorization details; an expiry of 1 s to a year; a maximum
/// token lifetime of at least 1 s; resources that are absolute URIs without fragment (RFC 8707).
pub async fn grant_mandate<S>(
    store: &S,
    tenant_id: &str,
    user_id: &str,
    terms: MandateTerms,
    origin: MandateOrigin,
    actor: Principal,
    meta: &RequestMeta,
) -> Result<Mandate, AdminError>
where
    S: UserStore + AgentStore + MandateStore + AuditSink + ?Sized,
{
    let tid = tenant_id;
    let user = store
        .user(tid, user_id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("user {user_id}")))?;
    let agent = store
        .agent(tid, &terms.agent_id)
        .await?
        .filter(|a| a.status == AgentStatus::Active)
        .ok_or_else(|| AdminError::NotFound(format!("active agent {}", terms.agent_id)))?;
    if [
        terms.scopes.len(),
        terms.resources.len(),
        terms.authorization_details.len(),
        terms.approval_required.len(),
    ]
    .iter()
    .any(|n| *n > MAX_MANDATE_ITEMS)
    {
        return Err(AdminError::Invalid(format!(
            "a mandate carries at most {MAX_MANDATE_ITEMS} scopes, resources, details or actions"
        )));
    }
    let scope = Scope::parse(&terms.scopes.join(" "))
        .ok_or_else(|| AdminError::Invalid("invalid scope".into()))?;
    if scope.is_empty() && terms.authorization_details.is_empty() {
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
    if !(1..=MAX_MANDATE_SECONDS).contains(&terms.expires_in) {
        return Err(AdminError::Invalid(format!(
            "expiry must be 1 to {MAX_MANDATE_SECONDS} seconds from now"
        )));
    }
    if !(1..=MAX_MANDATE_SECONDS).contains(&terms.max_token_lifetime) {
        return Err(AdminError::Invalid(
            "the maximum token lifetime must be at least 1 second".into(),
        ));
    }
    for r in &terms.resources {
        if url::Url::parse(r).is_err() || r.contains('#') {
            return Err(AdminError::Invalid(format!(
                "invalid resource {r:?}: an absolute URI without fragment (RFC 8707)"
            )));
        }
    }
    if terms.authorization_details.iter().any(|d| {
        d.get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    }) {
        return Err(AdminError::Invalid(
            "every authorization detail needs a type".into(),
        ));
    }
    if terms
        .approval_required
        .iter()
        .any(|a| a.is_empty() || a.len() > 256)
    {
        return Err(AdminError::Invalid(
            "an approval-required action must be 1-256 characters".into(),
        ));
    }
    let ts = now();
    let m = Mandate {
        tenant_id: tid.to_string(),
        id: random_token(16),
        user_id: user.id.clone(),
        agent_id: agent.id.clone(),
        scope,
        authorization_details: terms.authorization_details,
        resources: terms.resources,
        expires_at: ts + terms.expires_in,
        max_token_lifetime: terms.max_token_lifetime,
        max_delegation_depth: terms.max_delegation_depth,
        approval_required: terms.approval_required,
        origin,
        created_at: ts,
        revoked_at: None,
        allow_refresh: terms.allow_refresh,
    };
    store.create_mandate(&m).await?;
    let mut ev = AuditEvent::new(
        tid,
        EventKind::MandateCreated,
        Outcome::Success,
        actor,
        meta,
    )
    .detail(json!({
        "agent_id": m.agent_id,
        "scope": m.scope.to_string(),
        "resources": m.resources,
        "authorization_details": m.authorization_details,
        "expires_at": m.expires_at,
        "max_token_lifetime": m.max_token_lifetime,
        "max_delegation_depth": m.max_delegation_depth,
        "origin": m.origin.as_str(),
    }))
    .subject(Principal::User { id: user.id })
    .client(m.agent_id.clone());
    ev.mandate_id = Some(m.id.clone());
    store.record(&ev).await?;
    Ok(m)
}
/// Which of a person's mandates to list.
#[derive(Debug, Clone, Default)]
pub struct MandateListing {
    /// Only those for this agent.
    pub agent_id: Option<String>,
    /// Revoked and expired ones too (by default only those in force).
    pub include_ended: bool,
}

/// A person's mandates, newest first, as the CLI and the admin API list them.
pub async fn person_mandates<S>(
    store: &S,
    tenant_id: &str,
    username: &str,
    which: &MandateListing,
    now: i64,
) -> Result<Vec<Mandate>, AdminError>
where
    S: UserStore + MandateStore + ?Sized,
{
    let user = store
        .user_by_username(tenant_id, username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("user {username}")))?;
    Ok(store
        .user_mandates(tenant_id, &user.id)
        .await?
        .into_iter()
        .filter(|m| which.include_ended || m.is_active(now))
        .filter(|m| which.agent_id.as_ref().is_none_or(|a| *a == m.agent_id))
        .collect())
}

/// Revoke mandates (one, an agent's, or all of a user's) as an administrator, recording each;
/// returns their ids. Every token derived from them, down the chain, is inactive at once.
pub async fn revoke_mandates<S>(
    store: &S,
    tenant_id: &str,
    which: MandateSelector<'_>,
    actor: &str,
    reason: &str,
) -> Result<Vec<String>, AdminError>
where
    S: AuditSink + MandateStore + ?Sized,
{
    revoke_mandates_by(
        store,
        tenant_id,
        which,
        admin(actor),
        &RequestMeta::default(),
        reason,
    )
    .await
}

/// [`revoke_mandates`] by any principal (the person revoking their own, for one); each
/// revocation is recorded with `actor`, the mandate's person as subject, and `reason`.
pub async fn revoke_mandates_by<S>(
    store: &S,
    tenant_id: &str,
    which: MandateSelector<'_>,
    actor: Principal,
    meta: &RequestMeta,
    reason: &str,
) -> Result<Vec<String>, AdminError>
where
    S: MandateStore + AuditSink + ?Sized,
{
    let ids = store.revoke_mandates(tenant_id, which, now()).await?;
    for id in &ids {
        let m = store.mandate(tenant_id, id).await?;
        let mut ev = AuditEvent::new(
            tenant_id,
            EventKind::MandateRevoked,
            Outcome::Success,
            actor.clone(),
            meta,
        )
        .reason(reason.to_string());
        if let Some(m) = m {
            ev = ev
                .subject(Principal::User { id: m.user_id })
                .client(m.agent_id);
        }
        ev.mandate_id = Some(id.clone());
        store.record(&ev).await?;
    }
    Ok(ids)
}

/// [`revoke_mandates`] by tenant name.
pub async fn revoke_mandates_in<S>(
    store: &S,
    tenant_name: &str,
    which: MandateSelector<'_>,
    actor: &str,
) -> Result<Vec<String>, AdminError>
where
    S: AuditSink + MandateStore + TenantStore + ?Sized,
{
    let tid = tenant_id(store, tenant_name).await?;
    let ids = revoke_mandates(store, &tid, which, actor, "revoked by an administrator").await?;
    if ids.is_empty() && matches!(which, MandateSelector::One(_)) {
        return Err(AdminError::NotFound("mandate in force".into()));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    //! The mandate operations against the small in-memory store of [`crate::testing`]: each
    //! names only the ports it uses, so nothing else needs to exist there.

    use super::*;
    use crate::testing::{Fake, agent, user};

    fn fake() -> Fake {
        Fake {
            users: vec![user("u1", "alice")],
            agents: vec![
                agent("a1", AgentStatus::Active),
                agent("a2", AgentStatus::Suspended),
            ],
            ..Fake::default()
        }
    }

    fn terms(agent: &str, scopes: &[&str], expires_in: i64) -> MandateTerms {
        MandateTerms {
            agent_id: agent.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            authorization_details: Vec::new(),
            resources: vec!["https://api.example".into()],
            expires_in,
            max_token_lifetime: 300,
            max_delegation_depth: 1,
            approval_required: Vec::new(),
            allow_refresh: false,
        }
    }

    async fn grant(s: &Fake, t: MandateTerms) -> Result<Mandate, AdminError> {
        let actor = Principal::User { id: "u1".into() };
        grant_mandate(
            s,
            "t",
            "u1",
            t,
            MandateOrigin::Api,
            actor,
            &RequestMeta::default(),
        )
        .await
    }

    #[tokio::test]
    async fn a_mandate_is_recorded_within_the_agents_ceiling_and_audited() {
        let s = fake();
        let m = grant(&s, terms("a1", &["read"], 3_600)).await.unwrap();
        assert_eq!(m.scope.to_string(), "read");
        assert_eq!(s.mandates.lock().unwrap().len(), 1);
        let audit = s.audit.lock().unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].kind, EventKind::MandateCreated);
        assert_eq!(audit[0].mandate_id.as_deref(), Some(m.id.as_str()));
        assert_eq!(audit[0].subject, Some(Principal::User { id: "u1".into() }));
    }

    #[tokio::test]
    async fn refused_terms_record_nothing() {
        let s = fake();
        for (t, why) in [
            (terms("a1", &["admin"], 3_600), "beyond the ceiling"),
            (terms("a1", &[], 3_600), "neither scope nor details"),
            (terms("a1", &["read"], 0), "no time"),
            (terms("a1", &["read"], MAX_MANDATE_SECONDS + 1), "too long"),
            (terms("a2", &["read"], 3_600), "a suspended agent"),
            (terms("nobody", &["read"], 3_600), "an unknown agent"),
        ] {
            assert!(grant(&s, t).await.is_err(), "{why}");
        }
        assert!(s.mandates.lock().unwrap().is_empty());
        assert!(s.audit.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn revoking_ends_only_mandates_in_force_and_records_each() {
        let s = fake();
        let m1 = grant(&s, terms("a1", &["read"], 3_600)).await.unwrap();
        let m2 = grant(&s, terms("a1", &["write"], 3_600)).await.unwrap();
        let actor = Principal::User { id: "u1".into() };
        let meta = RequestMeta::default();
        let ids = revoke_mandates_by(
            &s,
            "t",
            MandateSelector::One(&m1.id),
            actor.clone(),
            &meta,
            "done",
        )
        .await
        .unwrap();
        assert_eq!(ids, vec![m1.id.clone()]);
        // Again, and then all of the person's: only what is still in force.
        let all = revoke_mandates_by(&s, "t", MandateSelector::User("u1"), actor, &meta, "all")
            .await
            .unwrap();
        assert_eq!(all, vec![m2.id.clone()]);
        let revoked: Vec<AuditEvent> = s
            .audit
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventKind::MandateRevoked)
            .cloned()
            .collect();
        assert_eq!(revoked.len(), 2);
        assert!(revoked.iter().all(|e| e.client_id.as_deref() == Some("a1")));
        let listing = MandateListing::default();
        let active = person_mandates(&s, "t", "alice", &listing, now())
            .await
            .unwrap();
        assert!(active.is_empty());
        let ended = MandateListing {
            include_ended: true,
            ..Default::default()
        };
        assert_eq!(
            person_mandates(&s, "t", "alice", &ended, now())
                .await
                .unwrap()
                .len(),
            2
        );
        assert!(
            person_mandates(&s, "t", "bob", &ended, now())
                .await
                .is_err()
        );
    }
}
