//! The CIBA grant (`urn:openid:params:grant-type:ciba`, CIBA Core §10.1–11): the agent that
//! made a backchannel request redeems its `auth_req_id`. Until the person decides it gets
//! `authorization_pending` (`slow_down`, and a longer interval, when it polls too fast); then
//! `access_denied`, `expired_token`, or once, a delegated token under the mandate the approval
//! recorded: `sub` the person, `act` the agent, `mandate` its id, minted like token exchange's.

use mandate_token::act::Act;
use serde_json::{Value, json};

use super::{CibaStatus, SLOW_DOWN_STEP, event};
use crate::audit::{EventKind, Principal, RequestMeta};
use crate::crypto::secret::keyed_digest;
use crate::domain::agents::AgentStatus;
use crate::domain::model::{CIBA_GRANT, Client};
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::grants::TokenRequest;
use crate::oauth::grants::delegation::{self, Asked, Bounds, Delegation, delegated_token};
use crate::oauth::tokens::{self, IdTokenExtras, TokenResponse, TokenSubject};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AgentStore, AuditSink, CibaStore, MandateStore};

crate::oauth::grants::grant!(
    /// The CIBA grant (CIBA Core §10.1), registered by the server next to OAuth's own.
    CibaGrant,
    Ciba,
    ["auth_req_id"]
);

/// Redeem an `auth_req_id` for the authenticated `client`.
pub async fn exchange<S: AgentStore + AuditSink + CibaStore + MandateStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let id = req
        .param("auth_req_id")
        .ok_or_else(|| OAuthError::invalid_request("auth_req_id is required"))?;
    let unknown = || OAuthError::invalid_grant("unknown auth_req_id");
    if id.len() > 256 {
        return Err(unknown());
    }
    let r = p
        .store
        .ciba_request_by_digest(t.id(), &keyed_digest(&t.tenant.secret_key, id))
        .await?
        // Another client's auth_req_id is as unknown as a made-up one.
        .filter(|r| r.client_id == client.client_id)
        .ok_or_else(unknown)?;
    let agent = p
        .store
        .agent(t.id(), &client.client_id)
        .await?
        .filter(|a| a.status == AgentStatus::Active)
        .ok_or_else(|| OAuthError::invalid_client("the agent is not active"))?;
    if agent.require_dpop && req.dpop_jkt.is_none() {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "this agent must present a DPoP proof (RFC 9449)",
        ));
    }
    let now = p.now();
    if r.status == CibaStatus::Consumed {
        return Err(OAuthError::invalid_grant(
            "the auth_req_id was already used",
        ));
    }
    if r.expires_at <= now {
        let ev = event(
            t,
            EventKind::CibaExpired,
            &r,
            Principal::Agent {
                id: agent.id.clone(),
            },
            meta,
        )
        .reason("expired_token")
        .detail(json!({"request_id": r.id, "status": r.status.as_str()}));
        p.store.record(&ev).await?;
        return Err(OAuthError::new(
            ErrorCode::ExpiredToken,
            "the auth_req_id has expired",
        ));
    }
    match r.status {
        CibaStatus::Denied => {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the person denied the request",
            ));
        }
        CibaStatus::Pending => {
            return Err(
                if p.store
                    .poll_ciba_request(t.id(), &r.id, now, SLOW_DOWN_STEP)
                    .await?
                {
                    OAuthError::new(
                        ErrorCode::AuthorizationPending,
                        "the person has not decided yet",
                    )
                } else {
                    OAuthError::new(
                        ErrorCode::SlowDown,
                        format!(
                            "polling too fast: wait at least {} seconds between requests",
                            r.interval + SLOW_DOWN_STEP
                        ),
                    )
                },
            );
        }
        CibaStatus::Approved | CibaStatus::Consumed => {}
    }
    let approval = r
        .approval
        .as_ref()
        .ok_or_else(|| OAuthError::server_error("approved CIBA request without approval"))?;
    let mandate = p
        .store
        .mandate(t.id(), &approval.mandate_id)
        .await?
        .filter(|m| m.is_active(now) && m.user_id == r.user_id && m.agent_id == agent.id)
        .ok_or_else(|| OAuthError::invalid_grant("the approved mandate is no longer in force"))?;
    // The token stays inside the mandate and the request (the one rule every agent's token for
    // a person follows); a `resource` may narrow it. Checked before the request is spent.
    delegation::mandate_ttl_left(p, &mandate)?;
    let granted = delegation::fit(
        &t.issuer,
        &mandate,
        &agent,
        &Bounds {
            scope: &r.scope,
            audiences: (!r.resources.is_empty()).then_some(r.resources.as_slice()),
            details: None,
        },
        &Asked {
            scope: None,
            audiences: tokens::parse_resources(&req.resources)?,
            details: None,
        },
    )?;
    if !p.store.consume_ciba_request(t.id(), &r.id, now).await? {
        return Err(OAuthError::invalid_grant(
            "the auth_req_id was already used",
        ));
    }
    let subject = TokenSubject {
        sub: r.user_id.clone(),
        auth_time: Some(approval.auth_time),
        acr: Some(approval.acr.clone()).filter(|a| !a.is_empty()),
        amr: approval.amr.clone(),
        sid: None,
        cnf_jkt: req.dpop_jkt.clone(),
    };
    let scope = granted.scope;
    let at = delegated_token(
        p,
        t,
        client,
        &Delegation {
            mandate: &mandate,
            subject: &subject,
            scope: &scope,
            audience: &granted.audience,
            details: &granted.details,
            act: Act::new(agent.id.clone()),
        },
    )?;
    let id_token = if r.scope.contains("openid") {
        Some(tokens::id_token(
            p,
            t,
            client,
            &subject,
            IdTokenExtras {
                nonce: None,
                access_token: Some(&at.token),
            },
        )?)
    } else {
        None
    };
    let scope_s = scope.to_string();
    let agent_p = Principal::Agent {
        id: agent.id.clone(),
    };
    let mut ev = event(t, EventKind::TokenIssued, &r, agent_p, meta).detail(json!({
        "grant_type": CIBA_GRANT,
        "request_id": r.id,
        "scope": scope_s,
        "aud": at.audience,
        "jti": at.jti,
        "expires_at": at.expires_at,
        "authorization_details": granted.details,
        "id_token_issued": id_token.is_some(),
        "refresh_token_issued": false,
    }));
    ev.mandate_id = Some(mandate.id.clone());
    p.store.record(&ev).await?;
    Ok(TokenResponse {
        access_token: at.token,
        token_type: subject.token_type(),
        expires_in: at.expires_at - now,
        refresh_token: None,
        id_token,
        scope: scope_s,
        issued_token_type: None,
        authorization_details: (!granted.details.is_empty())
            .then_some(Value::Array(granted.details)),
    })
}
