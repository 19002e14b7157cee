//! Token exchange (RFC 8693) for delegation: a registered agent exchanges a person's access
//! token (or a delegated token it was handed) for a token that acts for that person under a
//! mandate. `sub` stays the person, `act` names the agent (nesting earlier actors), `mandate`
//! names the delegation. Every hop only narrows: scope = requested ∩ subject token ∩ mandate ∩
//! agent ceiling; audiences within the mandate's resources (and the subject token's, for a
//! further hop); lifetime within the mandate. A delegated token can never come back out as a
//! plain user token; impersonation (no `act`) is only for non-agent clients of tenants that
//! enable it (`impersonation.rs`).

mod impersonation;
mod subject;

use std::sync::Arc;

use mandate_token::act::Act;
use mandate_token::claims::AccessTokenClaims;
pub use subject::ACCESS_TOKEN_TYPE;
use subject::{requested_type_supported, token_claims};

use serde_json::{Value, json};

use super::TokenRequest;
use super::delegated_refresh::Stored;
use super::delegation::{self, Asked, Bounds, Delegation, Granted, delegated_token};
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::domain::agents::{Agent, AgentStatus, Mandate};
use crate::domain::model::Client;
use crate::domain::scope::Scope;
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::tokens::{TokenResponse, TokenSubject};
use crate::provider::{Provider, TenantCtx};
use crate::store::{
    AgentStore, AuditSink, ClientStore, ExchangeLookup, GrantStore, MandateStore, ReplayStore,
    RiskStore, UserStore,
};

/// RFC 8693 §3 token type of a JWT: as `actor_token_type`, the agent's signed assertion.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Most agents in one chain, whatever a mandate allows.
pub const MAX_CHAIN: usize = 5;

fn dead_token(name: &str) -> OAuthError {
    OAuthError::invalid_request(format!(
        "the {name} is invalid, expired, revoked or not from this issuer"
    ))
}

/// The subject token's claims once its signature, issuer and lifetime check out (its liveness
/// is asked with the rest of the exchange's lookups).
fn subject_claims<S: ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    req: &TokenRequest,
) -> Result<Arc<AccessTokenClaims>, OAuthError> {
    let token = req
        .param("subject_token")
        .ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
    if req.param("subject_token_type") != Some(ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request(format!(
            "subject_token_type must be {ACCESS_TOKEN_TYPE}"
        )));
    }
    crate::oauth::introspect::signed_claims(p, t, token).ok_or_else(|| dead_token("subject_token"))
}

/// A refusal first: a suspended or deleted agent gets `invalid_client` whatever else is wrong
/// (its status read fresh, never from the cache).
async fn agent_refusal<S: AgentStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    agent_id: &str,
) -> Result<Option<OAuthError>, OAuthError> {
    Ok(match p.store.agent(t.id(), agent_id).await? {
        Some(a) if a.status == AgentStatus::Active => None,
        Some(a) => Some(OAuthError::invalid_client(format!(
            "the agent is {}",
            a.status.as_str()
        ))),
        None => Some(OAuthError::unauthorized_client(
            "only registered agents may exchange tokens",
        )),
    })
}

/// Pick the narrowest grant the request fits (the one mandate rule, [`delegation::fit`]):
/// within the subject token's scope, and on a further hop its audiences and details too.
fn attenuate(
    t: &TenantCtx,
    req: &TokenRequest,
    subject: &AccessTokenClaims,
    mandate: &Mandate,
    agent: &Agent,
    further_hop: bool,
) -> Result<Granted, OAuthError> {
    let subject_scope =
        Scope::parse(subject.scope.as_deref().unwrap_or_default()).unwrap_or_default();
    let subject_aud: Vec<String> = subject.aud.list().into_iter().map(str::to_string).collect();
    let subject_details: Vec<Value> = subject.authorization_details.clone().unwrap_or_default();
    let mut asked: Vec<String> = req.resources.clone();
    asked.extend(req.audiences.iter().cloned());
    delegation::fit(
        &t.issuer,
        mandate,
        agent,
        &Bounds {
            scope: &subject_scope,
            audiences: further_hop.then_some(subject_aud.as_slice()),
            details: further_hop.then_some(subject_details.as_slice()),
        },
        &Asked {
            scope: req.scope.as_deref(),
            audiences: asked,
            details: req.authorization_details.as_deref(),
        },
    )
}

super::grant!(
    /// The token exchange grant (RFC 8693).
    TokenExchangeGrant,
    TokenExchange,
    [
            "subject_token",
            "subject_token_type",
            "actor_token",
            "actor_token_type",
            "requested_token_type",
        ]
);

/// Run the exchange for the authenticated `client`, which must be an active agent.
pub async fn exchange<
    S: AgentStore
        + AuditSink
        + ClientStore
        + GrantStore
        + MandateStore
        + ReplayStore
        + RiskStore
        + UserStore
        + ?Sized,
>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let now = p.now();
    if let Some(d) = &req.authorization_details
        && !t.tenant.settings.details_allowed(d)
    {
        return Err(crate::oauth::authorize::unsupported_details_type());
    }
    // The agent's fixed terms come from the cache; its status is asked below, in the one
    // query that also checks the subject token and finds the mandates.
    let Some(agent) = p.agent(t, &client.client_id).await? else {
        if t.tenant.settings.impersonation {
            return impersonation::exchange(p, t, client, req, meta).await;
        }
        return Err(OAuthError::unauthorized_client(
            "only registered agents may exchange tokens",
        ));
    };
    if agent.require_dpop && req.dpop_jkt.is_none() {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "this agent must present a DPoP proof (RFC 9449)",
        ));
    }
    requested_type_supported(req)?;
    let subject = match subject_claims(p, t, req) {
        Ok(c) => c,
        Err(e) => return Err(agent_refusal(p, t, &agent.id).await?.unwrap_or(e)),
    };
    if req.param("actor_token_type") == Some(JWT_TOKEN_TYPE) {
        // The agent's own signed assertion (RFC 7523 form), proving it is the actor.
        let assertion = req
            .param("actor_token")
            .ok_or_else(|| OAuthError::invalid_request("actor_token is required"))?;
        if assertion.len() > 8192 {
            return Err(OAuthError::invalid_request("actor_token too large"));
        }
        crate::oauth::client_auth::verify_assertion(
            p,
            t,
            assertion,
            Some(&agent.id),
            &t.url("/token"),
            "actor_token",
            |why| {
                OAuthError::invalid_request(
                    "the actor_token is not a valid assertion of the authenticated agent",
                )
                .with_debug(why.to_string())
            },
        )
        .await?;
    } else if req.param("actor_token").is_some() || req.param("actor_token_type").is_some() {
        let actor = token_claims(
            p,
            t,
            req.param("actor_token"),
            req.param("actor_token_type"),
            "actor_token",
        )
        .await?;
        if actor.client_id != agent.id {
            return Err(OAuthError::invalid_request(
                "the actor_token does not identify the authenticated agent",
            ));
        }
    }
    let user_id = subject.sub.clone();
    let prior_chain: Vec<String> = subject.chain().into_iter().map(str::to_string).collect();
    let further_hop = !prior_chain.is_empty();
    // One query: is the subject token (or its chain, or its mandate) dead, is this agent
    // active, and which mandates could cover the exchange.
    let mut agents_to_check = prior_chain.clone();
    if !agents_to_check.contains(&agent.id) {
        agents_to_check.push(agent.id.clone());
    }
    let (dead, mandates) = p
        .store
        .exchange_context(
            t.id(),
            ExchangeLookup {
                jti: &subject.jti,
                agents: &agents_to_check,
                subject_mandate: subject.mandate.as_deref(),
                user_id: &user_id,
                agent_id: &agent.id,
            },
            now,
        )
        .await?;
    if dead {
        return Err(agent_refusal(p, t, &agent.id)
            .await?
            .unwrap_or_else(|| dead_token("subject_token")));
    }
    let mandate = match (further_hop, subject.mandate.as_deref()) {
        (false, None) => {
            if subject.client_id == user_id {
                return Err(OAuthError::invalid_request(
                    "the subject_token does not represent a person",
                ));
            }
            // (Only a person who still exists has mandates in force.) The newest mandate
            // that covers the request.
            let mut last_err =
                OAuthError::invalid_request("no active mandate from this person to this agent");
            let mut chosen = None;
            for m in mandates {
                match attenuate(t, req, &subject, &m, &agent, false) {
                    Ok(g) => {
                        chosen = Some((m, g));
                        break;
                    }
                    Err(e) => last_err = e,
                }
            }
            chosen.ok_or(last_err)?
        }
        (true, Some(mid)) => {
            let m = mandates
                .into_iter()
                .find(|m| m.id == mid)
                .filter(|m| m.is_active(now) && m.user_id == user_id)
                .ok_or_else(|| {
                    OAuthError::invalid_request("the subject_token's mandate is not in force")
                })?;
            if prior_chain.first() != Some(&agent.id) {
                // A new hop: the mandate must allow one more agent.
                let hops = prior_chain.len(); // agents after the first
                if hops > m.max_delegation_depth as usize || hops + 1 > MAX_CHAIN {
                    return Err(OAuthError::invalid_request(
                        "the mandate does not allow delegating further",
                    ));
                }
                if prior_chain.contains(&agent.id) {
                    return Err(OAuthError::invalid_request(
                        "an agent cannot appear twice in a delegation chain",
                    ));
                }
            }
            let g = attenuate(t, req, &subject, &m, &agent, true)?;
            (m, g)
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "the subject_token carries a partial delegation",
            ));
        }
    };
    let (mandate, granted) = mandate;
    // The risk policy scores the request (velocity, a new resource, unusual hours) before a
    // token is minted: allow, ask the person's approval, or suspend the agent.
    crate::risk::agent_request(
        p,
        t,
        crate::risk::AgentRequest {
            agent_id: &agent.id,
            user_id: &user_id,
            mandate_id: &mandate.id,
            resources: &granted.audience,
            grant: "token_exchange",
        },
        meta,
    )
    .await?;
    let same_actor = prior_chain.first() == Some(&agent.id);
    // The same agent exchanging again keeps its chain; another one goes on top of it.
    let act = match subject.act.clone() {
        Some(prior) if same_actor => prior,
        Some(prior) => prior.then(agent.id.clone()),
        None => Act::new(agent.id.clone()),
    };
    let delegation = mandate.allow_refresh.then(|| Stored {
        act: act.clone(),
        mandate: mandate.id.clone(),
        aud: granted.audience.clone(),
        authorization_details: granted.details.clone(),
    });
    let subject_info = TokenSubject {
        sub: user_id.clone(),
        auth_time: subject.auth_time,
        acr: subject.acr.clone(),
        amr: subject.amr.clone(),
        sid: None,
        cnf_jkt: req.dpop_jkt.clone(),
    };
    let at = delegated_token(
        p,
        t,
        client,
        &Delegation {
            mandate: &mandate,
            subject: &subject_info,
            scope: &granted.scope,
            audience: &granted.audience,
            details: &granted.details,
            act,
        },
    )?;
    let refresh_token = match delegation {
        None => None,
        Some(d) => Some(
            super::delegated_refresh::start(
                p,
                t,
                client,
                &subject_info,
                &granted.scope,
                &mandate,
                d,
            )
            .await?,
        ),
    };
    // The audit chain mirrors `act`: the new actor first, unless it already held the token.
    let new_actor = (!same_actor).then(|| agent.id.clone());
    let chain: Vec<Principal> = new_actor
        .into_iter()
        .chain(prior_chain.iter().cloned())
        .map(|id| Principal::Agent { id })
        .collect();
    let scope_s = granted.scope.to_string();
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::TokenExchanged,
        Outcome::Success,
        Principal::Agent {
            id: agent.id.clone(),
        },
        meta,
    )
    .subject(Principal::User { id: user_id })
    .client(client.client_id.clone())
    .detail(json!({
        "grant_type": crate::domain::model::TOKEN_EXCHANGE,
        "scope": scope_s,
        "aud": at.audience,
        "jti": at.jti,
        "expires_at": at.expires_at,
        "subject_token_jti": subject.jti,
        "authorization_details": granted.details,
        "hop": chain.len(),
        "refresh_token_issued": refresh_token.is_some(),
    }));
    ev.act_chain = chain;
    ev.mandate_id = Some(mandate.id.clone());
    p.store.record(&ev).await?;
    Ok(TokenResponse {
        access_token: at.token,
        token_type: subject_info.token_type(),
        expires_in: at.expires_at - now,
        refresh_token,
        id_token: None,
        scope: scope_s,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        authorization_details: (!granted.details.is_empty())
            .then_some(Value::Array(granted.details)),
    })
}
