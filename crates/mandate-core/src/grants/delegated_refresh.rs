//! Refresh tokens for delegated tokens, only under a mandate that allows them: the exchange
//! starts a grant for (agent, person) and hands out a refresh token that records the
//! delegation (act chain, mandate, audiences, authorization_details). Each refresh re-checks
//! the mandate and every agent of the chain, keeps the delegation exactly (a refresh never
//! turns a delegated token into a plain one, nor widens it), and bounds lifetimes by the
//! mandate. Rotation and replay detection are the refresh grant's own.

use serde::Deserialize;
use serde_json::{Value, json};

use super::TokenRequest;
use super::token_exchange::{Delegation, delegated_token};
use crate::agents::{AgentStatus, Mandate, act_chain};
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::error::{ErrorCode, OAuthError};
use crate::model::{Client, Grant, RefreshToken};
use crate::provider::{Provider, TenantCtx};
use crate::scope::Scope;
use crate::secret::random_token;
use crate::tokens::{self, TokenResponse, TokenSubject};

/// What a delegated refresh token carries (stored as JSON with it).
#[derive(Debug, Deserialize)]
struct Stored {
    act: Value,
    mandate: String,
    #[serde(default)]
    aud: Vec<String>,
    #[serde(default)]
    authorization_details: Vec<Value>,
}

/// Start a grant for the exchange's agent and person and return its first refresh token.
pub(super) async fn start(
    p: &Provider,
    t: &TenantCtx,
    client: &Client,
    subject: &TokenSubject,
    scope: &Scope,
    mandate: &Mandate,
    delegation: Value,
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
    let (value, rt) = successor(p, t, &grant.id, client, subject, scope, mandate, delegation);
    p.store.insert_refresh(&rt).await?;
    Ok(value)
}

/// A refresh token of the grant that keeps `delegation` and ends with the mandate at the latest.
#[allow(clippy::too_many_arguments)]
fn successor(
    p: &Provider,
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

/// Redeem a delegated refresh token (already spent by the refresh grant): a new delegated
/// access token and a successor, while the mandate and every agent of the chain are in force.
#[allow(clippy::too_many_arguments)]
pub(super) async fn refresh(
    p: &Provider,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    rec: &RefreshToken,
    raw: Value,
    scope: Scope,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
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
    let chain = act_chain(Some(&d.act));
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
    if agent.require_dpop && req.dpop_jkt.is_none() {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "this agent must present a DPoP proof (RFC 9449)",
        ));
    }
    let audience = if req.resources.is_empty() {
        d.aud.clone()
    } else {
        let asked = tokens::parse_resources(&req.resources)?;
        if let Some(bad) = asked.iter().find(|a| !d.aud.contains(a)) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("the delegation does not cover the resource {bad}"),
            ));
        }
        asked
    };
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
            scope: &scope,
            audience: &audience,
            details: &d.authorization_details,
            act: d.act.clone(),
        },
    )?;
    p.store
        .record_access_token(t.id(), &at.jti, &rec.grant_id, at.expires_at)
        .await?;
    let (value, next) = successor(
        p,
        t,
        &rec.grant_id,
        client,
        &subject,
        &rec.scope,
        &mandate,
        raw,
    );
    p.store.insert_refresh(&next).await?;
    let scope_s = scope.to_string();
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::TokenRefreshed,
        Outcome::Success,
        Principal::Agent {
            id: agent.id.clone(),
        },
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
        authorization_details: (!d.authorization_details.is_empty())
            .then_some(Value::Array(d.authorization_details)),
    })
}
