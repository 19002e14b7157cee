//! The risk engine: signals about each sign-in and each agent's token request, and the
//! tenant's policy ([`crate::domain::risk_policy`]) deciding allow, a second factor, a passkey,
//! a block (people), the person's approval or suspension (agents). [`engine`] is the pure part
//! (plain facts in, an [`Assessment`] out); this module reads what the facts need from the
//! store, records every decision with its reasons in the audit trail, counts it for the
//! metrics, and remembers what later signals need. Login (`crate::login`) and token exchange
//! (`crate::oauth::grants::token_exchange`) act on the decision.

pub mod engine;
pub mod store;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::json;

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::keyed_digest;
use crate::domain::model::User;
pub use crate::domain::risk_policy::{Action, RiskPolicy, RiskRule, Signal};
use crate::error::{OAuthError, StoreError};
use crate::geo::GeoPoint;
use crate::provider::{Provider, TenantCtx};
pub use engine::{AgentFacts, Assessment, Hit, PastFailure, PastRequest, PastSignIn, SignInFacts};
use store::{AgentRequestRow, FailureRow, RiskStore, SignInRow};

/// How long a person's successful sign-ins are kept (new device, travel, usual hours).
pub const SIGN_IN_RETENTION: i64 = 90 * 86_400;
/// How long an agent's token requests are kept (resources used, usual hours).
pub const AGENT_RETENTION: i64 = 30 * 86_400;
/// How many of a person's latest sign-ins the signals look at.
pub const HISTORY: i64 = 50;
/// How long failed sign-ins are kept: the longest failure window a policy may set.
pub const FAILURE_RETENTION: i64 = 86_400;

/// The description prefix of the token endpoint's answer when the person must approve: the
/// agent starts a CIBA request (docs/risk.md).
pub const APPROVAL_REQUIRED: &str = "approval_required";

/// Decisions counted by (decision, signal that fired or `none`), for the metrics endpoint.
static COUNTS: Mutex<BTreeMap<(&'static str, &'static str), u64>> = Mutex::new(BTreeMap::new());

/// Every decision counted since the process started: (decision, signal, count).
pub fn counts() -> Vec<(&'static str, &'static str, u64)> {
    let c = COUNTS.lock().expect("risk counts");
    c.iter().map(|((d, s), n)| (*d, *s, *n)).collect()
}

fn count(a: &Assessment) {
    let mut c = COUNTS.lock().expect("risk counts");
    let reasons = a.reasons();
    if reasons.is_empty() {
        *c.entry((a.action.as_str(), "none")).or_default() += 1;
    }
    for r in reasons {
        *c.entry((a.action.as_str(), r)).or_default() += 1;
    }
}

/// Record a decision in the audit trail and the metrics.
async fn record<S: crate::store::AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    a: &Assessment,
    ev: AuditEvent,
    stage: &str,
) -> Result<(), StoreError> {
    count(a);
    let mut detail = a.detail();
    detail["stage"] = json!(stage);
    detail["policy"] = json!(if t.tenant.settings.risk == RiskPolicy::default() {
        "default"
    } else {
        "tenant"
    });
    let outcome = if a.action == Action::Allow {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let mut ev = ev.detail(detail);
    ev.outcome = outcome;
    let reasons = a.reasons();
    let ev = if reasons.is_empty() {
        ev.reason(a.action.as_str())
    } else {
        ev.reason(format!("{}: {}", a.action.as_str(), reasons.join(", ")))
    };
    p.store.record(&ev).await
}

/// The guessing limits' keys of an attempt (no name in clear).
#[derive(Debug, Clone, Copy)]
pub struct AttemptKeys<'a> {
    pub account: &'a str,
    pub address: Option<&'a str>,
}

fn allow() -> Assessment {
    Assessment {
        signals: vec![],
        hits: vec![],
        action: Action::Allow,
    }
}

/// Before a password is checked: is this attempt to be blocked (credential stuffing from its
/// address, or any rule the tenant set on the failure counters)? Only what does not depend
/// on whether the account exists is looked at, so a block answers the same for both. A
/// block is recorded here; the caller refuses the attempt as too many attempts.
pub async fn before_password<S: RiskStore + crate::store::AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    keys: AttemptKeys<'_>,
    meta: &RequestMeta,
) -> Result<Assessment, StoreError> {
    let policy = &t.tenant.settings.risk;
    if !policy.enabled {
        return Ok(allow());
    }
    let now = p.now();
    let failures = failures(p, t, keys, now).await?;
    let facts = SignInFacts {
        now,
        account_failures: failures.1,
        address_failures: &failures.0,
        ..Default::default()
    };
    let a = engine::decide(policy, engine::sign_in_signals(policy, &facts));
    // Only a block acts here (who is signing in is not known yet); anything else is decided
    // and recorded once, after the password.
    if a.action == Action::Block {
        let ev = AuditEvent::new(
            t.id(),
            EventKind::RiskDecision,
            Outcome::Failure,
            Principal::Anonymous,
            meta,
        );
        record(p, t, &a, ev, "attempt").await?;
        return Ok(a);
    }
    Ok(allow())
}

async fn failures<S: RiskStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    keys: AttemptKeys<'_>,
    now: i64,
) -> Result<(Vec<PastFailure>, usize), StoreError> {
    let since = now - t.tenant.settings.risk.failure_window;
    let from = match keys.address {
        Some(a) => p
            .store
            .failures_from(t.id(), a, since)
            .await?
            .into_iter()
            .map(|r| PastFailure {
                at: r.at,
                account: r.account,
            })
            .collect(),
        None => vec![],
    };
    let of = p.store.failures_of(t.id(), keys.account, since).await?;
    Ok((from, usize::try_from(of).unwrap_or(0)))
}

/// Remember a failed sign-in (stuffing and the failure counts read it).
pub async fn failed<S: RiskStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    keys: AttemptKeys<'_>,
    user_id: Option<&str>,
) -> Result<(), StoreError> {
    let Some(address) = keys.address else {
        return Ok(());
    };
    if !t.tenant.settings.risk.enabled {
        return Ok(());
    }
    let now = p.now();
    p.store
        .add_failure(&FailureRow {
            tenant_id: t.id().to_string(),
            address: address.to_string(),
            account: keys.account.to_string(),
            user_id: user_id.map(str::to_string),
            at: now,
            expires_at: now + FAILURE_RETENTION,
        })
        .await
}

/// How a person proved who they are, as the signals see it.
#[derive(Debug, Clone, Copy)]
pub enum Proven<'a> {
    /// A password (the plain text, checked against the common list and then dropped), with
    /// the attempt's keys.
    Password {
        password: &'a str,
        keys: AttemptKeys<'a>,
    },
    /// A passkey: nothing was typed.
    Passkey { address: Option<&'a str> },
}

/// The keyed digest of a device cookie value.
pub fn device_digest(t: &TenantCtx, cookie: &str) -> Vec<u8> {
    keyed_digest(&t.tenant.secret_key, &format!("device:{cookie}"))
}

/// After a person proved who they are: every signal, the policy's decision, recorded with its
/// reasons; the sign-in is remembered unless it is blocked.
pub async fn after_sign_in<S: RiskStore + crate::store::AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    proven: Proven<'_>,
    meta: &RequestMeta,
) -> Result<Assessment, StoreError> {
    let policy = &t.tenant.settings.risk;
    if !policy.enabled {
        return Ok(allow());
    }
    let now = p.now();
    let (failures, account_failures, breached, address, method) = match proven {
        Proven::Password { password, keys } => {
            let (f, n) = failures(p, t, keys, now).await?;
            let breached = crate::domain::password_policy::is_common(password);
            (f, n, breached, keys.address, "pwd")
        }
        Proven::Passkey { address } => (vec![], 0, false, address, "passkey"),
    };
    let history: Vec<PastSignIn> = p
        .store
        .sign_ins(t.id(), &user.id, HISTORY)
        .await?
        .into_iter()
        .map(|r| PastSignIn {
            at: r.at,
            place: r.place.map(|(a, b)| GeoPoint::from_coarse(a, b)),
            device: r.device,
        })
        .collect();
    let place = match (&p.settings.geoip, meta.ip.as_deref()) {
        (Some(g), Some(ip)) => ip.parse().ok().and_then(|ip| g.locate(ip)),
        _ => None,
    };
    // Stored coarse, compared coarse: the same place twice reads the same.
    let place = place.map(|g| {
        let (a, b) = g.coarse();
        GeoPoint::from_coarse(a, b)
    });
    let device = meta
        .device
        .as_deref()
        .filter(|d| !d.is_empty() && d.len() <= 128)
        .map(|d| device_digest(t, d));
    let facts = SignInFacts {
        now,
        account_failures,
        address_failures: &failures,
        history: Some(&history),
        place,
        device: device.as_deref(),
        breached_password: breached,
    };
    let a = engine::decide(policy, engine::sign_in_signals(policy, &facts));
    let who = Principal::User {
        id: user.id.clone(),
    };
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::RiskDecision,
        Outcome::Success,
        who.clone(),
        meta,
    )
    .subject(who);
    ev.detail = json!({});
    record(p, t, &a, ev, method).await?;
    if a.action != Action::Block {
        p.store
            .add_sign_in(&SignInRow {
                tenant_id: t.id().to_string(),
                user_id: user.id.clone(),
                at: now,
                address: address.map(|a| a.to_string()),
                place: place.map(GeoPoint::coarse),
                device,
                expires_at: now + SIGN_IN_RETENTION,
            })
            .await?;
    }
    Ok(a)
}

/// The `acr` a sign-in's decision asks of its session before it may be used: a second
/// factor (`mfa`) or a passkey (`phr`); `None` for allow (and block, which has no session).
pub fn owed_acr(action: Action) -> Option<&'static str> {
    match action {
        Action::SecondFactor => Some(crate::settings::ACR_MFA),
        Action::Passkey => Some(crate::settings::ACR_PHR),
        _ => None,
    }
}

/// One token request by an agent for a person under a mandate.
#[derive(Debug, Clone, Copy)]
pub struct AgentRequest<'a> {
    pub agent_id: &'a str,
    pub user_id: &'a str,
    pub mandate_id: &'a str,
    /// The audiences the token would carry.
    pub resources: &'a [String],
    /// `token_exchange` or `refresh_token`.
    pub grant: &'a str,
}

/// Score an agent's token request before it is issued: allow (remembered), ask for the
/// person's approval (`invalid_request` with [`APPROVAL_REQUIRED`]: the agent starts CIBA), or
/// suspend the agent (recorded with the reason the person sees; `invalid_client`). Every
/// decision is in the audit trail with its reasons.
pub async fn agent_request<S: RiskStore + crate::store::AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    r: AgentRequest<'_>,
    meta: &RequestMeta,
) -> Result<(), OAuthError> {
    let policy = &t.tenant.settings.risk;
    if !policy.enabled {
        return Ok(());
    }
    let now = p.now();
    let history: Vec<PastRequest> = p
        .store
        .agent_requests(t.id(), r.agent_id, r.user_id)
        .await?
        .into_iter()
        .map(|x| PastRequest {
            at: x.at,
            mandate_id: x.mandate_id,
            resources: x.resources,
            allowed: x.allowed,
        })
        .collect();
    let facts = AgentFacts {
        now,
        mandate_id: r.mandate_id,
        resources: r.resources,
        history: &history,
    };
    let a = engine::decide(policy, engine::agent_signals(policy, &facts));
    let agent = Principal::Agent {
        id: r.agent_id.to_string(),
    };
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::RiskDecision,
        Outcome::Success,
        agent,
        meta,
    )
    .subject(Principal::User {
        id: r.user_id.to_string(),
    })
    .client(r.agent_id.to_string());
    ev.mandate_id = Some(r.mandate_id.to_string());
    ev.detail = json!({});
    record(p, t, &a, ev, r.grant).await?;
    let reasons = a.reasons().join(", ");
    if a.action != Action::Suspend {
        p.store
            .add_agent_request(&AgentRequestRow {
                tenant_id: t.id().to_string(),
                agent_id: r.agent_id.to_string(),
                user_id: r.user_id.to_string(),
                mandate_id: r.mandate_id.to_string(),
                resources: r.resources.to_vec(),
                allowed: a.action == Action::Allow,
                at: now,
                expires_at: now + AGENT_RETENTION,
            })
            .await?;
    }
    match a.action {
        Action::Suspend => {
            let why = format!("suspended by the risk policy ({reasons})");
            if p.store
                .suspend_agent_with_reason(t.id(), r.agent_id, &why, now)
                .await?
            {
                let ev = AuditEvent::new(
                    t.id(),
                    EventKind::AgentSuspended,
                    Outcome::Success,
                    Principal::Anonymous,
                    meta,
                )
                .reason("risk")
                .client(r.agent_id.to_string())
                .detail(json!({"agent_id": r.agent_id, "status_reason": why}));
                p.store.record(&ev).await?;
            }
            Err(OAuthError::invalid_client("the agent is suspended"))
        }
        Action::Approval => Err(OAuthError::invalid_request(format!(
            "{APPROVAL_REQUIRED}: the person must approve this request ({reasons}); \
             ask them with a CIBA backchannel authentication request"
        ))),
        _ => Ok(()),
    }
}
