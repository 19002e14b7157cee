//! The one rule for every token an agent gets for a person, whichever grant produced it
//! (authorization code, refresh, token exchange, CIBA): the agent is active, the mandate is in
//! force for that person and that agent, and the token stays inside it. Scope = asked ∩ what
//! the presented artefact carries ∩ the mandate ∩ the agent's ceiling; audiences within the
//! mandate's resources (and the artefact's); authorization details within the mandate's (and
//! the artefact's); lifetime within the mandate's maximum token lifetime and its expiry. The
//! token always carries `act` and `mandate` ([`delegated_token`]).

use serde_json::{Map, Value};

use super::TokenRequest;
use crate::domain::agents::{self, Agent, AgentStatus, Mandate};
use crate::domain::model::Client;
use crate::domain::scope::Scope;
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::tokens::{self, IssuedAccessToken, TokenSubject};
use crate::provider::{Provider, TenantCtx};

/// What the presented artefact (code, subject token, refresh token, CIBA request) carries: a
/// token issued from it never exceeds it.
pub(crate) struct Bounds<'a> {
    pub scope: &'a Scope,
    /// Audiences it is limited to; `None`: only the mandate's resources bound them.
    pub audiences: Option<&'a [String]>,
    /// Authorization details it is limited to; `None`: only the mandate's bound them (and are
    /// the default).
    pub details: Option<&'a [Value]>,
}

/// What the request asks for; absent parts take everything allowed.
#[derive(Default)]
pub(crate) struct Asked<'a> {
    /// The `scope` parameter, unparsed.
    pub scope: Option<&'a str>,
    /// RFC 8707 `resource` and RFC 8693 `audience` values together.
    pub audiences: Vec<String>,
    pub details: Option<&'a [Value]>,
}

/// What a delegated token may carry.
#[derive(Debug)]
pub(crate) struct Granted {
    pub scope: Scope,
    pub audience: Vec<String>,
    pub details: Vec<Value>,
}

fn invalid_target(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, why)
}

/// Fit a request inside `mandate`, `agent`'s ceiling and `bounds`, or say why not: a scope
/// beyond them is `invalid_scope`, an audience beyond them `invalid_target`, details beyond them
/// `invalid_authorization_details` (RFC 6749 §5.2, RFC 8707 §2, RFC 9396 §7).
pub(crate) fn fit(
    issuer: &str,
    mandate: &Mandate,
    agent: &Agent,
    bounds: &Bounds<'_>,
    asked: &Asked<'_>,
) -> Result<Granted, OAuthError> {
    let ceiling = bounds
        .scope
        .intersect(&mandate.scope)
        .intersect(&agent.scope_ceiling);
    let scope = match asked.scope {
        Some(s) => {
            let asked =
                Scope::parse(s).ok_or_else(|| OAuthError::invalid_scope("malformed scope"))?;
            if !asked.is_subset(&ceiling) {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds what the mandate, the presented grant and the \
                     agent allow",
                ));
            }
            asked
        }
        None => ceiling,
    };
    let in_bounds = |a: &String| bounds.audiences.is_none_or(|b| b.contains(a));
    let in_mandate = |a: &String| {
        if mandate.resources.is_empty() {
            a == issuer
        } else {
            mandate.resources.contains(a)
        }
    };
    let audience = if asked.audiences.is_empty() {
        let base = if mandate.resources.is_empty() {
            vec![issuer.to_string()]
        } else {
            mandate.resources.clone()
        };
        let aud: Vec<String> = base.into_iter().filter(in_bounds).collect();
        if aud.is_empty() {
            return Err(invalid_target(
                "no resource is left that the mandate allows",
            ));
        }
        aud
    } else {
        if let Some(bad) = asked
            .audiences
            .iter()
            .find(|a| !(in_mandate(a) && in_bounds(a)))
        {
            return Err(invalid_target(format!(
                "the mandate does not cover the resource {bad}"
            )));
        }
        let mut aud = asked.audiences.clone();
        aud.sort();
        aud.dedup();
        aud
    };
    let details = match asked.details {
        Some(asked) => {
            let within_mandate = agents::details_covered(&mandate.authorization_details, asked);
            let within_bounds = bounds
                .details
                .is_none_or(|b| agents::details_covered(b, asked));
            if !(within_mandate && within_bounds) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidAuthorizationDetails,
                    "the requested authorization_details exceed the mandate",
                ));
            }
            asked.to_vec()
        }
        None => match bounds.details {
            Some(b) => b.to_vec(),
            None => mandate.authorization_details.clone(),
        },
    };
    if scope.is_empty() && details.is_empty() {
        return Err(OAuthError::invalid_scope(
            "nothing is left to delegate: no scope or authorization detail the mandate, the \
             presented grant and the agent all allow",
        ));
    }
    Ok(Granted {
        scope,
        audience,
        details,
    })
}

/// The agent behind `client`, read fresh (never from the cache): `None` for a client that is
/// not an agent; a suspended or deleted agent is refused with `error`.
pub(crate) async fn active_agent(
    p: &Provider,
    t: &TenantCtx,
    client: &Client,
    error: impl Fn(&str) -> OAuthError,
) -> Result<Option<Agent>, OAuthError> {
    match p.store.agent(t.id(), &client.client_id).await? {
        Some(a) if a.status == AgentStatus::Active => Ok(Some(a)),
        Some(a) => Err(error(&format!("the agent is {}", a.status.as_str()))),
        None => Ok(None),
    }
}

/// RFC 9449: an agent registered with `--require-dpop` gets tokens only with a proof.
pub(crate) fn dpop_required(agent: &Agent, req: &TokenRequest) -> Result<(), OAuthError> {
    if agent.require_dpop && req.dpop_jkt.is_none() {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "this agent must present a DPoP proof (RFC 9449)",
        ));
    }
    Ok(())
}

/// The mandate `id`, read fresh, if it is in force and from `user_id` to `agent_id`.
pub(crate) async fn mandate_in_force(
    p: &Provider,
    t: &TenantCtx,
    id: &str,
    user_id: &str,
    agent_id: &str,
) -> Result<Option<Mandate>, OAuthError> {
    let now = p.now();
    Ok(p.store
        .mandate(t.id(), id)
        .await?
        .filter(|m| m.is_active(now) && m.user_id == user_id && m.agent_id == agent_id))
}

/// A delegated access token to sign: for the person under `mandate`, acting through `act`.
pub(crate) struct Delegation<'a> {
    pub mandate: &'a Mandate,
    pub subject: &'a TokenSubject,
    pub scope: &'a Scope,
    pub audience: &'a [String],
    pub details: &'a [Value],
    /// The `act` claim (RFC 8693 §4.1), newest actor outermost.
    pub act: Value,
}

/// Sign a delegated token: `sub` the person, `act`, `mandate`, any `authorization_details`,
/// `cnf.jkt` when DPoP-bound; it lives no longer than the access token lifetime, the mandate's
/// maximum token lifetime and the time left on the mandate. Every grant that issues tokens to
/// an agent for a person mints them here.
pub(crate) fn delegated_token(
    p: &Provider,
    t: &TenantCtx,
    client: &Client,
    d: &Delegation<'_>,
) -> Result<IssuedAccessToken, OAuthError> {
    let now = p.now();
    let ttl = p
        .settings
        .access_token_ttl
        .min(d.mandate.max_token_lifetime)
        .min(d.mandate.expires_at - now);
    if ttl <= 0 {
        return Err(OAuthError::invalid_grant("the mandate has expired"));
    }
    let mut extra = Map::new();
    extra.insert("act".into(), d.act.clone());
    extra.insert("mandate".into(), d.mandate.id.clone().into());
    if !d.details.is_empty() {
        extra.insert(
            "authorization_details".into(),
            Value::Array(d.details.to_vec()),
        );
    }
    tokens::access_token_with(p, t, client, d.subject, d.scope, d.audience, ttl, extra)
}

/// Lifetime left for a delegated token under `mandate` (checked before anything is spent).
pub(crate) fn mandate_ttl_left(p: &Provider, mandate: &Mandate) -> Result<(), OAuthError> {
    if p.settings
        .access_token_ttl
        .min(mandate.max_token_lifetime)
        .min(mandate.expires_at - p.now())
        <= 0
    {
        return Err(OAuthError::invalid_grant("the mandate has expired"));
    }
    Ok(())
}
