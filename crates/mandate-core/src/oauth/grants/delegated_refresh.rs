//! Refresh tokens for delegated tokens, only under a mandate that allows them: the exchange
//! starts a grant for (agent, person) and hands out a refresh token that records the
//! delegation (act chain, mandate, audiences, authorization_details). Each refresh re-checks
//! the mandate and every agent of the chain, keeps the delegation exactly (a refresh never
//! turns a delegated token into a plain one, nor widens it), and bounds lifetimes by the
//! mandate. Rotation and replay detection are the refresh grant's own.

use mandate_token::act::Act;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::TokenRequest;
use super::delegation::{self, Asked, Bounds, Delegation, Granted, delegated_token};
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::random_token;
use crate::domain::agents::{AgentStatus, Mandate};
use crate::domain::model::{Client, Grant, RefreshToken};
use crate::domain::scope::Scope;
use crate::error::OAuthError;
use crate::oauth::tokens::{self, TokenResponse, TokenSubject};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AgentStore, AuditSink, GrantStore, MandateStore, RiskStore};

/// What a delegated refresh token carries (stored as JSON with it): the delegation each refresh
/// re-checks and re-issues.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Stored {
    pub act: Act,
    pub mandate: String,
    #[serde(default)]
    pub aud: Vec<String>,
    #[serde(default)]
    pub authorization_details: Vec<Value>,
}

/// Start a grant for the exchange's agent and person and return its first refresh token.
pub(super) async fn start<S: GrantStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    subject: &TokenSubject,
    scope: &Scope,
    mandate: &Mandate,
    delegation: Stored,
) -> Result<String, OAuthError> {
    let now = p.now();
    let grant = Grant {
        id: random_token(16),
        tenant_id: t.id().to_string(),
        client_id: client.client_id.clone(),
        user_id: subject.sub.clone(),
        sid: None,
        created_at: now,
        revoked_at: None,
    };
    p.store.create_grant(&grant).await?;
    let stored =
        serde_json::to_value(&delegation).map_err(|e| OAuthError::server_error(e.to_string()))?;
    let (value, mut rt) = successor(p, t, &grant.id, client, subject, scope, mandate, stored);
    rt.resources = delegation.aud;
    p.store.insert_refresh(&rt).await?;
    Ok(value)
}

/// A refresh token of the grant that keeps `delegation` and ends with the mandate at the latest.
#[allow(clippy::too_many_arguments)]
pub(super) fn successor<S: ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    grant_id: &str,
    client: &Client,
    subject: &TokenSubject,
    scope: &Scope,
    mandate: &Mandate,
    delegation: Value,
) -> (String, RefreshToken) {
    let (value, mut rt) = tokens::refresh_token(p, t, grant_id, client, subject, scope);
    rt.expires_at = rt.expires_at.min(mandate.expires_at);
    rt.delegation = Some(delegation);
    (value, rt)
}

/// A delegated refresh request that passed every check, ready to issue once the refresh token
/// is spent.
pub(super) struct Prepared {
    raw: Value,
    act: Act,
    mandate: Mandate,
    agent_id: String,
    chain: Vec<String>,
    granted: Granted,
}

/// Check a delegated refresh request without spending anything: the mandate and every agent of
/// the chain are in force, the agent's DPoP rule, and the request fits the delegation and the
/// mandate ([`delegation::fit`]: scope, resources only narrow).
pub(super) async fn prepare<S: AgentStore + AuditSink + MandateStore + RiskStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    rec: &RefreshToken,
    raw: Value,
    meta: &RequestMeta,
) -> Result<Prepared, OAuthError> {
    let now = p.now();
    let ended = |why: &str| {
        OAuthError::invalid_grant("refresh token is invalid, expired or revoked")
            .with_debug(why.to_string())
    };
    let d: Stored = serde_json::from_value(raw.clone()).map_err(|_| ended("delegation"))?;
    let mandate = p
        .store
        .mandate(t.id(), &d.mandate)
        .await?
        .filter(|m| m.is_active(now) && m.allow_refresh && m.user_id == rec.user_id)
        .ok_or_else(|| ended("mandate not in force"))?;
    let chain: Vec<String> = d.act.chain().into_iter().map(str::to_string).collect();
    if p.store
        .delegation_inactive(t.id(), &chain, Some(&mandate.id), now)
        .await?
    {
        return Err(ended("an agent of the chain is not active"));
    }
    let agent = p
        .store
        .agent(t.id(), &client.client_id)
        .await?
        .filter(|a| a.status == AgentStatus::Active)
        .ok_or_else(|| ended("the agent is not active"))?;
    delegation::dpop_required(&agent, req)?;
    delegation::mandate_ttl_left(p, &mandate)?;
    let granted = delegation::fit(
        &t.issuer,
        &mandate,
        &agent,
        &Bounds {
            scope: &rec.scope,
            audiences: Some(&d.aud),
            details: Some(&d.authorization_details),
        },
        &Asked {
            scope: req.scope.as_deref(),
            audiences: tokens::parse_resources(&req.resources)?,
            details: None,
        },
    )?;
    // The risk policy scores the refresh like an exchange, before anything is spent.
    crate::risk::agent_request(
        p,
        t,
        crate::risk::AgentRequest {
            agent_id: &agent.id,
            user_id: &rec.user_id,
            mandate_id: &mandate.id,
            resources: &granted.audience,
            grant: "refresh_token",
        },
        meta,
    )
    .await?;
    Ok(Prepared {
        raw,
        act: d.act,
        mandate,
        agent_id: agent.id,
        chain,
        granted,
    })
}

/// Redeem a delegated refresh token (spent by the refresh grant after [`prepare`]): a new
/// delegated access token and a successor.
pub(super) async fn issue<S: AuditSink + GrantStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    rec: &RefreshToken,
    prepared: Prepared,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let now = p.now();
    let Prepared {
        raw,
        act,
        mandate,
        agent_id,
        chain,
        granted,
    } = prepared;
    let subject = TokenSubject {
        sub: rec.user_id.clone(),
        auth_time: Some(rec.auth_time),
        acr: Some(rec.acr.clone()).filter(|a| !a.is_empty()),
        amr: rec.amr.clone(),
        sid: None,
        cnf_jkt: req.dpop_jkt.clone(),
    };
    let at = delegated_token(
        p,
        t,
        client,
        &Delegation {
            mandate: &mandate,
            subject: &subject,
            scope: &granted.scope,
            audience: &granted.audience,
            details: &granted.details,
            act,
        },
    )?;
    p.store
        .record_access_token(t.id(), &at.jti, &rec.grant_id, at.expires_at)
        .await?;
    let (value, mut next) = successor(
        p,
        t,
        &rec.grant_id,
        client,
        &subject,
        &rec.scope,
        &mandate,
        raw,
    );
    next.resources = rec.resources.clone();
    p.store.insert_refresh(&next).await?;
    let scope_s = granted.scope.to_string();
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::TokenRefreshed,
        Outcome::Success,
        Principal::Agent { id: agent_id },
        meta,
    )
    .subject(Principal::User {
        id: rec.user_id.clone(),
    })
    .client(client.client_id.clone())
    .detail(json!({
        "grant_type": "refresh_token",
        "scope": scope_s,
        "aud": at.audience,
        "jti": at.jti,
        "expires_at": at.expires_at,
        "refresh_token_issued": true,
        "delegated": true,
    }));
    ev.act_chain = chain
        .into_iter()
        .map(|id| Principal::Agent { id })
        .collect();
    ev.mandate_id = Some(mandate.id.clone());
    p.store.record(&ev).await?;
    Ok(TokenResponse {
        expires_in: at.expires_at - now,
        access_token: at.token,
        token_type: subject.token_type(),
        refresh_token: Some(value),
        id_token: None,
        scope: scope_s,
        issued_token_type: None,
        authorization_details: (!granted.details.is_empty())
            .then_some(Value::Array(granted.details)),
    })
}
