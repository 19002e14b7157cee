//! The one rule for every token an agent gets for a person, whichever grant produced it
//! (authorization code, refresh, token exchange, CIBA): the agent is active, the mandate is in
//! force for that person and that agent, and the token stays inside it. Scope = asked ∩ what
//! the presented artefact carries ∩ the mandate ∩ the agent's ceiling; audiences within the
//! mandate's resources (and the artefact's); authorization details within the mandate's (and
//! the artefact's); lifetime within the mandate's maximum token lifetime and its expiry. The
//! token always carries `act` and `mandate` ([`delegated_token`]).

use serde_json::Value;

use super::TokenRequest;
use mandate_token::act::Act;

use crate::domain::agents::{self, Agent, AgentStatus, Mandate};
use crate::domain::model::Client;
use crate::domain::scope::Scope;
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::tokens::{self, IssuedAccessToken, TokenSubject};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AgentStore, MandateStore};

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
pub(crate) async fn active_agent<S: AgentStore + ?Sized>(
    p: &Provider<S>,
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
pub(crate) async fn mandate_in_force<S: MandateStore + ?Sized>(
    p: &Provider<S>,
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
    pub act: Act,
}

/// Sign a delegated token: `sub` the person, `act`, `mandate`, any `authorization_details`,
/// `cnf.jkt` when DPoP-bound; it lives no longer than the access token lifetime, the mandate's
/// maximum token lifetime and the time left on the mandate. Every grant that issues tokens to
/// an agent for a person mints them here.
pub(crate) fn delegated_token<S: ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    d: &Delegation<'_>,
) -> Result<IssuedAccessToken, OAuthError> {
    let ttl = token_lifetime(p.settings.access_token_ttl, d.mandate, p.now())
        .ok_or_else(|| OAuthError::invalid_grant("the mandate has expired"))?;
    let delegated = tokens::DelegatedClaims {
        act: Some(d.act.clone()),
        mandate: Some(d.mandate.id.clone()),
        authorization_details: (!d.details.is_empty()).then(|| d.details.to_vec()),
    };
    tokens::access_token_with(p, t, client, d.subject, d.scope, d.audience, ttl, delegated)
}

/// How long a delegated token may live at `now`: the access token lifetime, the mandate's
/// maximum token lifetime and the time left on the mandate, whichever is least; `None` once
/// nothing is left.
pub(crate) fn token_lifetime(access_ttl: i64, mandate: &Mandate, now: i64) -> Option<i64> {
    let ttl = access_ttl
        .min(mandate.max_token_lifetime)
        .min(mandate.expires_at - now);
    (ttl > 0).then_some(ttl)
}

/// Lifetime left for a delegated token under `mandate` (checked before anything is spent).
pub(crate) fn mandate_ttl_left<S: ?Sized>(
    p: &Provider<S>,
    mandate: &Mandate,
) -> Result<(), OAuthError> {
    token_lifetime(p.settings.access_token_ttl, mandate, p.now())
        .map(|_| ())
        .ok_or_else(|| OAuthError::invalid_grant("the mandate has expired"))
}

#[cfg(test)]
mod tests {
    //! Property tests of the one mandate rule: whatever is asked, a token only narrows what the
    //! mandate, the agent's ceiling and the presented artefact allow, and along a chain of
    //! hops scope, audiences, details and lifetime never widen.

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::domain::agents::MandateOrigin;

    const ISSUER: &str = "https://id.example/t/acme";
    const SCOPES: [&str; 6] = ["read", "write", "pay", "mail", "cal", "admin"];
    const RESOURCES: [&str; 4] = [
        "https://bank.example",
        "https://mail.example",
        "https://cal.example",
        ISSUER,
    ];

    fn pick<'a>(all: &'a [&'a str], mask: u8) -> Vec<String> {
        all.iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, s)| s.to_string())
            .collect()
    }

    fn scope(mask: u8) -> Scope {
        pick(&SCOPES, mask).into_iter().collect()
    }

    /// A payment detail: an amount cap out of a few, and accounts out of a few.
    fn detail(kind: u8, accounts: u8) -> Value {
        let accts = pick(&["a1", "a2", "a3"], accounts);
        match kind % 3 {
            0 => json!({"type": "payment", "accounts": accts}),
            1 => json!({"type": "payment", "currency": "EUR", "accounts": accts}),
            _ => json!({"type": "mail", "folders": accts}),
        }
    }

    fn details(v: &[(u8, u8)]) -> Vec<Value> {
        v.iter().map(|(k, a)| detail(*k, *a)).collect()
    }

    fn mandate(
        scope_mask: u8,
        resources: u8,
        d: &[(u8, u8)],
        expires_in: i64,
        max_ttl: i64,
    ) -> Mandate {
        Mandate {
            tenant_id: "t".into(),
            id: "m".into(),
            user_id: "u".into(),
            agent_id: "a".into(),
            scope: scope(scope_mask),
            authorization_details: details(d),
            resources: pick(&RESOURCES[..3], resources),
            expires_at: 1_000 + expires_in,
            max_token_lifetime: max_ttl,
            max_delegation_depth: 3,
            approval_required: Vec::new(),
            origin: MandateOrigin::Api,
            created_at: 0,
            revoked_at: None,
            allow_refresh: false,
        }
    }

    fn agent(ceiling: u8) -> Agent {
        Agent {
            tenant_id: "t".into(),
            id: "a".into(),
            name: "a".into(),
            owner_user_id: None,
            provider: None,
            model: None,
            version: None,
            scope_ceiling: scope(ceiling),
            require_dpop: false,
            status: AgentStatus::Active,
            status_reason: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// A request: maybe a scope, some audiences, maybe details.
    #[derive(Debug, Clone)]
    struct Ask {
        scope: Option<u8>,
        audiences: u8,
        details: Option<Vec<(u8, u8)>>,
    }

    fn ask() -> impl Strategy<Value = Ask> {
        (
            proptest::option::of(0u8..64),
            0u8..16,
            proptest::option::of(proptest::collection::vec((0u8..3, 0u8..8), 0..3)),
        )
            .prop_map(|(scope, audiences, details)| Ask {
                scope,
                audiences,
                details,
            })
    }

    fn run(m: &Mandate, a: &Agent, b: &Bounds<'_>, ask: &Ask) -> Result<Granted, OAuthError> {
        let scope_text = ask.scope.map(|s| scope(s).to_string());
        let details = ask.details.as_ref().map(|d| details(d));
        fit(
            ISSUER,
            m,
            a,
            b,
            &Asked {
                scope: scope_text.as_deref(),
                audiences: pick(&RESOURCES, ask.audiences),
                details: details.as_deref(),
            },
        )
    }

    /// What a grant may carry never exceeds the bounds it was fitted in.
    fn assert_within(g: &Granted, m: &Mandate, a: &Agent, b: &Bounds<'_>) {
        assert!(g.scope.is_subset(&m.scope), "{g:?} beyond the mandate");
        assert!(
            g.scope.is_subset(&a.scope_ceiling),
            "{g:?} beyond the agent"
        );
        assert!(g.scope.is_subset(b.scope), "{g:?} beyond the artefact");
        assert!(!g.audience.is_empty());
        for aud in &g.audience {
            if m.resources.is_empty() {
                assert_eq!(aud, ISSUER);
            } else {
                assert!(m.resources.contains(aud), "{aud} beyond the mandate");
            }
            if let Some(ba) = b.audiences {
                assert!(ba.contains(aud), "{aud} beyond the artefact");
            }
        }
        assert!(
            agents::details_covered(&m.authorization_details, &g.details),
            "{g:?} details beyond the mandate"
        );
        if let Some(bd) = b.details {
            assert!(
                agents::details_covered(bd, &g.details),
                "{g:?} details beyond the artefact"
            );
        }
        assert!(!(g.scope.is_empty() && g.details.is_empty()));
    }

    proptest! {
        #[test]
        fn a_chain_of_hops_only_narrows(
            m_scope in 0u8..64, ceiling in 0u8..64, resources in 0u8..8,
            m_details in proptest::collection::vec((0u8..3, 0u8..8), 0..3),
            first in ask(), second in ask(), third in ask(),
        ) {
            let m = mandate(m_scope, resources, &m_details, 3_600, 600);
            let a = agent(ceiling);
            // The first hop is bounded by the person's token: every scope, no audience limit.
            let all = scope(63);
            let open = Bounds { scope: &all, audiences: None, details: None };
            let Ok(g1) = run(&m, &a, &open, &first) else { return Ok(()); };
            assert_within(&g1, &m, &a, &open);
            // Each further hop is bounded by the token before it.
            let b2 = Bounds { scope: &g1.scope, audiences: Some(&g1.audience), details: Some(&g1.details) };
            let Ok(g2) = run(&m, &a, &b2, &second) else { return Ok(()); };
            assert_within(&g2, &m, &a, &b2);
            let b3 = Bounds { scope: &g2.scope, audiences: Some(&g2.audience), details: Some(&g2.details) };
            let Ok(g3) = run(&m, &a, &b3, &third) else { return Ok(()); };
            assert_within(&g3, &m, &a, &b3);
            assert!(g3.scope.is_subset(&g1.scope));
            assert!(g3.audience.iter().all(|x| g1.audience.contains(x)));
            assert!(agents::details_covered(&g1.details, &g3.details));
        }

        #[test]
        fn asking_nothing_gets_the_most_allowed_and_asking_more_is_refused(
            m_scope in 0u8..64, ceiling in 0u8..64, resources in 0u8..8, extra in 0u8..64,
        ) {
            let m = mandate(m_scope, resources, &[], 3_600, 600);
            let a = agent(ceiling);
            let all = scope(63);
            let open = Bounds { scope: &all, audiences: None, details: None };
            let most = m.scope.intersect(&a.scope_ceiling);
            match run(&m, &a, &open, &Ask { scope: None, audiences: 0, details: None }) {
                Ok(g) => prop_assert_eq!(&g.scope, &most),
                Err(e) => prop_assert!(most.is_empty(), "{e:?}"),
            }
            let wider = scope(extra);
            if !wider.is_subset(&most) {
                let r = run(&m, &a, &open, &Ask { scope: Some(extra), audiences: 0, details: None });
                prop_assert_eq!(r.unwrap_err().code, ErrorCode::InvalidScope);
            }
        }

        #[test]
        fn a_token_never_outlives_its_mandate(
            access_ttl in -10i64..7_200, max_ttl in -10i64..7_200,
            expires_in in -100i64..7_200, later in 0i64..8_000,
        ) {
            let m = mandate(1, 0, &[], expires_in, max_ttl);
            for now in [1_000, 1_000 + later] {
                match token_lifetime(access_ttl, &m, now) {
                    Some(ttl) => {
                        prop_assert!(ttl > 0);
                        prop_assert!(ttl <= access_ttl && ttl <= max_ttl);
                        prop_assert!(now + ttl <= m.expires_at);
                    }
                    None => prop_assert!(
                        access_ttl <= 0 || max_ttl <= 0 || m.expires_at <= now
                    ),
                }
            }
        }
    }
}
