//! The risk engine: signals about each sign-in and each agent's token request, and the
//! tenant's policy ([`crate::domain::risk_policy`]) deciding allow, a second factor, a passkey,
//! a block (people), the person's approval or suspension (agents). [`engine`] is the pure part
//! (plain facts in, an [`Assessment`] out); this module reads what the facts need from the
//! store, records every decision with its reasons in the audit trail, counts it for the
//! metrics, and remembers what later signals need. Login (`login/`) and token exchange
//! (`oauth/grants/token_exchange/`) act on the decision.

pub mod engine;
pub mod store;

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
pub use engine::{AgentFacts, Assessment, Hit, PastRequest, PastSignIn, SignInFacts};
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
        address_failures: as_count(failures.0.failures),
        address_accounts: as_count(failures.0.accounts),
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
) -> Result<(store::AddressFailures, usize), StoreError> {
    let since = now - t.tenant.settings.risk.failure_window;
    let from = match keys.address {
        Some(a) => p.store.failures_from(t.id(), a, since).await?,
        None => store::AddressFailures::default(),
    };
    let of = p.store.failures_of(t.id(), keys.account, since).await?;
    Ok((from, usize::try_from(of).unwrap_or(0)))
}

fn as_count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
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
        Proven::Passkey { address } => (
            store::AddressFailures::default(),
            0,
            false,
            address,
            "passkey",
        ),
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
        address_failures: as_count(failures.failures),
        address_accounts: as_count(failures.accounts),
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
/// The person approved a request of the agent (CIBA): its requests so far are marked
/// approved, so that its velocity counts again from now (a burst the person approved does not
/// ask them again at once; a new one does).
pub async fn approved<S: RiskStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    agent_id: &str,
    user_id: &str,
) -> Result<(), StoreError> {
    if !t.tenant.settings.risk.enabled {
        return Ok(());
    }
    p.store
        .approve_agent_requests(t.id(), agent_id, user_id, p.now())
        .await
}

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
            approved: x.approved,
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
                approved: false,
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

/// Tables for every signal and the policy, and the operations over the in-memory store.
#[cfg(test)]
#[allow(clippy::type_complexity)] // each table's row type spells out its columns
mod tests {
    // Tables for every signal and the policy, and the engine's operations over the in-memory
    // store (blocks, approvals, suspension, what is remembered).

    use super::engine::*;
    use super::*;
    use crate::domain::risk_policy::default_threshold;
    use crate::geo::GeoPoint;

    const BERLIN: GeoPoint = GeoPoint {
        lat: 52.5,
        lon: 13.4,
    };
    const POTSDAM: GeoPoint = GeoPoint {
        lat: 52.4,
        lon: 13.1,
    };
    const SYDNEY: GeoPoint = GeoPoint {
        lat: -33.9,
        lon: 151.2,
    };
    const PARIS: GeoPoint = GeoPoint {
        lat: 48.9,
        lon: 2.4,
    };

    /// Noon UTC on some day.
    const NOON: i64 = 20_000 * 86_400 + 12 * 3600;

    fn value(signals: &[(Signal, f64)], s: Signal) -> Option<f64> {
        signals.iter().find(|(x, _)| *x == s).map(|(_, v)| *v)
    }

    fn signed_in(at: i64, place: Option<GeoPoint>, device: Option<&[u8]>) -> PastSignIn {
        PastSignIn {
            at,
            place,
            device: device.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn failure_counts_and_stuffing_in_the_window() {
        let policy = RiskPolicy::default();
        let now = NOON;
        // (failures from the address, their distinct names, account failures) → the signals
        // (the store counts them in the failure window)
        let cases: Vec<(usize, usize, usize)> =
            vec![(0, 0, 0), (2, 1, 2), (3, 3, 1), (42, 2, 0), (500, 500, 0)];
        for (i, (from, names, of)) in cases.into_iter().enumerate() {
            let f = SignInFacts {
                now,
                account_failures: of,
                address_failures: from,
                address_accounts: names,
                ..Default::default()
            };
            let s = sign_in_signals(&policy, &f);
            assert_eq!(
                value(&s, Signal::AddressFailures),
                Some(from as f64),
                "case {i}"
            );
            assert_eq!(
                value(&s, Signal::CredentialStuffing),
                Some(names as f64),
                "case {i}"
            );
            assert_eq!(
                value(&s, Signal::AccountFailures),
                Some(of as f64),
                "case {i}"
            );
            // Before the password, nothing about the person.
            assert_eq!(value(&s, Signal::NewDevice), None);
            assert_eq!(value(&s, Signal::BreachedPassword), None);
        }
    }

    #[test]
    fn new_device_only_with_a_history() {
        let policy = RiskPolicy::default();
        let known: &[u8] = b"known";
        let history = [signed_in(NOON - 100, None, Some(known))];
        // (history, this device) → new device?
        let cases: Vec<(&[PastSignIn], Option<&[u8]>, Option<f64>)> = vec![
            (&[], None, None),
            (&[], Some(b"x"), None),
            (&history, Some(known), None),
            (&history, Some(b"other"), Some(1.0)),
            (&history, None, Some(1.0)),
        ];
        for (i, (h, device, want)) in cases.into_iter().enumerate() {
            let f = SignInFacts {
                now: NOON,
                history: Some(h),
                device,
                ..Default::default()
            };
            assert_eq!(
                value(&sign_in_signals(&policy, &f), Signal::NewDevice),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn impossible_travel_is_a_speed() {
        let policy = RiskPolicy::default();
        // (last place, seconds since, here) → speed (km/h), range
        let cases: Vec<(Option<GeoPoint>, i64, Option<GeoPoint>, Option<(f64, f64)>)> = vec![
            // Berlin to Sydney in an hour: ~16,000 km/h.
            (Some(BERLIN), 3600, Some(SYDNEY), Some((15_900.0, 16_200.0))),
            // Berlin to Paris in 2 hours: ~440 km/h (a plane): under the threshold.
            (Some(BERLIN), 7200, Some(PARIS), Some((400.0, 480.0))),
            // Berlin to Sydney in 2 days: ~330 km/h.
            (Some(BERLIN), 2 * 86_400, Some(SYDNEY), Some((300.0, 360.0))),
            // Next door (GeoIP accuracy): not travel.
            (Some(BERLIN), 10, Some(POTSDAM), Some((0.0, 0.0))),
            // A second later, far away: very fast, not infinite.
            (
                Some(BERLIN),
                1,
                Some(SYDNEY),
                Some((900_000.0, 1_000_000.0)),
            ),
            // Unknown either side: no signal.
            (None, 3600, Some(SYDNEY), None),
            (Some(BERLIN), 3600, None, None),
        ];
        for (i, (there, ago, here, want)) in cases.into_iter().enumerate() {
            let history = [signed_in(NOON - ago, there, None)];
            let f = SignInFacts {
                now: NOON,
                history: Some(&history),
                place: here,
                ..Default::default()
            };
            let got = value(&sign_in_signals(&policy, &f), Signal::ImpossibleTravel);
            match (got, want) {
                (None, None) => {}
                (Some(v), Some((lo, hi))) => assert!((lo..=hi).contains(&v), "case {i}: {v}"),
                _ => panic!("case {i}: {got:?} vs {want:?}"),
            }
        }
        // The last sign-in with a place counts, not an older one.
        let history = [
            signed_in(NOON - 60, None, None),
            signed_in(NOON - 7200, Some(SYDNEY), None),
            signed_in(NOON - 9000, Some(BERLIN), None),
        ];
        let f = SignInFacts {
            now: NOON,
            history: Some(&history),
            place: Some(SYDNEY),
            ..Default::default()
        };
        assert_eq!(
            value(&sign_in_signals(&policy, &f), Signal::ImpossibleTravel),
            Some(0.0)
        );
    }

    #[test]
    fn breached_password_and_unusual_time() {
        let policy = RiskPolicy {
            min_history: 3,
            ..RiskPolicy::default()
        };
        let at = |h: i64| NOON - 12 * 3600 + h * 3600 - 86_400;
        let morning: Vec<PastSignIn> = [8, 9, 9]
            .iter()
            .map(|h| signed_in(at(*h), None, None))
            .collect();
        // (history, hour now) → hours from the usual ones
        let cases: Vec<(&[PastSignIn], i64, Option<f64>)> = vec![
            (&morning[..2], 3, None), // not enough history
            (&morning, 9, Some(0.0)),
            (&morning, 12, Some(3.0)),
            (&morning, 3, Some(5.0)),
            (&morning, 23, Some(9.0)),
            // Around midnight: 8 → 2 is 6 hours, not 18.
            (&morning, 2, Some(6.0)),
        ];
        for (i, (h, hour, want)) in cases.into_iter().enumerate() {
            let now = NOON - 12 * 3600 + hour * 3600;
            let f = SignInFacts {
                now,
                history: Some(h),
                ..Default::default()
            };
            assert_eq!(
                value(&sign_in_signals(&policy, &f), Signal::UnusualTime),
                want,
                "case {i}"
            );
        }
        let f = SignInFacts {
            now: NOON,
            history: Some(&[]),
            breached_password: true,
            ..Default::default()
        };
        assert_eq!(
            value(&sign_in_signals(&policy, &f), Signal::BreachedPassword),
            Some(1.0)
        );
    }

    fn req(ago: i64, mandate: &str, resources: &[&str], allowed: bool) -> PastRequest {
        PastRequest {
            at: NOON + 1800 - ago,
            mandate_id: mandate.into(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
            allowed,
            approved: false,
        }
    }

    /// A request the person approved since (CIBA).
    fn approved(ago: i64, mandate: &str, resources: &[&str]) -> PastRequest {
        PastRequest {
            approved: true,
            ..req(ago, mandate, resources, true)
        }
    }

    #[test]
    fn agent_signals_table() {
        let policy = RiskPolicy {
            min_history: 2,
            ..RiskPolicy::default()
        };
        let mail = vec!["https://mail".to_string()];
        let files = vec!["https://files".to_string()];
        let history = vec![
            req(10, "m1", &["https://mail"], true),
            req(20, "m1", &["https://mail"], false),
            req(30, "m2", &["https://files"], true),
            req(86_400, "m1", &["https://mail"], true),
        ];
        // The person approved a request between the requests 20 and 10 s ago.
        let since_approval = vec![
            req(10, "m1", &["https://mail"], true),
            approved(20, "m1", &["https://mail"]),
            approved(30, "m2", &["https://files"]),
            req(86_400, "m1", &["https://mail"], true),
        ];
        // (history, mandate, resources, now offset) → velocity, new resources, unusual hours
        let cases: Vec<(
            &[PastRequest],
            &str,
            &[String],
            i64,
            f64,
            Option<f64>,
            Option<f64>,
        )> = vec![
            (&[], "m1", &mail, 0, 1.0, None, None),
            (&history, "m1", &mail, 0, 4.0, Some(0.0), Some(0.0)),
            // A resource only used under another mandate is new under this one.
            (&history, "m1", &files, 0, 4.0, Some(1.0), Some(0.0)),
            // Refused requests count for velocity, not for what was used.
            (&history[1..2], "m1", &mail, 0, 2.0, None, None),
            // Six hours later: no request in the window, unusual hours.
            (&history, "m1", &mail, 6 * 3600, 1.0, Some(0.0), Some(6.0)),
            // After the person's approval only what came later counts for velocity; what was
            // approved still tells what the agent used and when.
            (&since_approval, "m1", &mail, 0, 2.0, Some(0.0), Some(0.0)),
            (&since_approval, "m2", &files, 0, 2.0, Some(0.0), None),
        ];
        for (i, (h, m, res, later, velocity, new, hours)) in cases.into_iter().enumerate() {
            let f = AgentFacts {
                // Half past noon: every request of the history was at 12 h.
                now: NOON + 1800 + later,
                mandate_id: m,
                resources: res,
                history: h,
            };
            let s = agent_signals(&policy, &f);
            assert_eq!(value(&s, Signal::AgentVelocity), Some(velocity), "case {i}");
            assert_eq!(value(&s, Signal::AgentNewResource), new, "case {i}");
            assert_eq!(value(&s, Signal::AgentUnusualTime), hours, "case {i}");
        }
    }

    #[test]
    fn the_strongest_action_wins() {
        let policy = RiskPolicy::default();
        let cases: Vec<(Vec<(Signal, f64)>, Action, Vec<&str>)> = vec![
            (vec![], Action::Allow, vec![]),
            (
                vec![(Signal::CredentialStuffing, 9.0)],
                Action::Allow,
                vec![],
            ),
            (
                vec![(Signal::CredentialStuffing, 10.0)],
                Action::Block,
                vec!["credential_stuffing"],
            ),
            (
                vec![(Signal::NewDevice, 1.0)],
                Action::Allow,
                vec!["new_device"],
            ),
            (
                vec![(Signal::NewDevice, 1.0), (Signal::ImpossibleTravel, 5000.0)],
                Action::SecondFactor,
                vec!["impossible_travel", "new_device"],
            ),
            (
                vec![
                    (Signal::ImpossibleTravel, 5000.0),
                    (Signal::CredentialStuffing, 12.0),
                ],
                Action::Block,
                vec!["credential_stuffing", "impossible_travel"],
            ),
            (
                vec![(Signal::AgentVelocity, 60.0)],
                Action::Approval,
                vec!["agent_velocity"],
            ),
            (
                vec![(Signal::AgentVelocity, 600.0)],
                Action::Suspend,
                vec!["agent_velocity"],
            ),
        ];
        for (i, (signals, action, reasons)) in cases.into_iter().enumerate() {
            let a = decide(&policy, signals);
            assert_eq!(a.action, action, "case {i}");
            assert_eq!(a.reasons(), reasons, "case {i}");
        }
        // A passkey beats a second factor; the detail names everything.
        let mut strict = RiskPolicy::default();
        strict.set_rule(RiskRule::parse("new_device=passkey").unwrap());
        let a = decide(
            &strict,
            vec![(Signal::NewDevice, 1.0), (Signal::ImpossibleTravel, 1500.0)],
        );
        assert_eq!(a.action, Action::Passkey);
        let d = a.detail();
        assert_eq!(d["decision"], "passkey");
        assert_eq!(d["signals"]["impossible_travel"], 1500.0);
        assert_eq!(d["matched"].as_array().unwrap().len(), 2);
        assert_eq!(owed_acr(Action::Passkey), Some(crate::settings::ACR_PHR));
        assert_eq!(
            owed_acr(Action::SecondFactor),
            Some(crate::settings::ACR_MFA)
        );
        assert_eq!(owed_acr(Action::Allow), None);
    }

    #[test]
    fn policy_rules_parse_and_check() {
        let r = RiskRule::parse("impossible_travel=passkey@800").unwrap();
        assert_eq!(
            (r.signal, r.at_least, r.action),
            (Signal::ImpossibleTravel, 800, Action::Passkey)
        );
        let r = RiskRule::parse("new_device=second_factor").unwrap();
        assert_eq!(r.at_least, default_threshold(Signal::NewDevice));
        for bad in [
            "nothing=allow",
            "new_device=maybe",
            "new_device",
            "new_device=allow@x",
        ] {
            assert!(RiskRule::parse(bad).is_err(), "{bad}");
        }
        assert!(RiskPolicy::default().check().is_ok());
        // Actions fit their subject.
        for (rule, ok) in [
            ("agent_velocity=block", false),
            ("agent_velocity=passkey", false),
            ("new_device=suspend", false),
            ("new_device=approval", false),
            ("agent_velocity=suspend@5", true),
            ("credential_stuffing=block@0", false),
            // A count above what one decision reads could never fire.
            ("agent_velocity=suspend@500", true),
            ("agent_velocity=suspend@501", false),
            ("address_failures=block@501", false),
            ("impossible_travel=block@5000", true),
        ] {
            let mut p = RiskPolicy::default();
            p.set_rule(RiskRule::parse(rule).unwrap());
            assert_eq!(p.check().is_ok(), ok, "{rule}");
        }
        let p = RiskPolicy {
            block_seconds: 0,
            ..RiskPolicy::default()
        };
        assert!(p.check().is_err());
        // Old settings without a policy read as the default one.
        let s: crate::domain::model::TenantSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s.risk, RiskPolicy::default());
        let back: RiskPolicy =
            serde_json::from_value(serde_json::to_value(RiskPolicy::default()).unwrap()).unwrap();
        assert_eq!(back, RiskPolicy::default());
    }

    mod operations {
        use super::*;
        use crate::audit::EventKind;
        use crate::testing::{Fake, provider};

        fn meta(ip: &str) -> RequestMeta {
            RequestMeta {
                ip: Some(ip.into()),
                ..Default::default()
            }
        }

        #[tokio::test]
        async fn stuffing_blocks_before_the_password() {
            let (p, t) = provider(Fake::default());
            let m = meta("192.0.2.1");
            for i in 0..9 {
                let account = format!("u:{i}");
                let keys = AttemptKeys {
                    account: &account,
                    address: Some("ip:192.0.2.1"),
                };
                assert_eq!(
                    before_password(&p, &t, keys, &m).await.unwrap().action,
                    Action::Allow
                );
                failed(&p, &t, keys, None).await.unwrap();
            }
            let keys = AttemptKeys {
                account: "u:9",
                address: Some("ip:192.0.2.1"),
            };
            failed(&p, &t, keys, None).await.unwrap();
            let a = before_password(&p, &t, keys, &m).await.unwrap();
            assert_eq!(a.action, Action::Block);
            // Another address is not blocked.
            let other = AttemptKeys {
                account: "u:1",
                address: Some("ip:192.0.2.2"),
            };
            assert_eq!(
                before_password(&p, &t, other, &m).await.unwrap().action,
                Action::Allow
            );
            let recs = p.store.recorded(EventKind::RiskDecision);
            assert_eq!(
                recs.len(),
                1,
                "only the block is recorded before a password"
            );
            assert_eq!(recs[0].detail["decision"], "block");
            assert_eq!(
                recs[0].detail["matched"][0]["signal"],
                "credential_stuffing"
            );
            assert_eq!(recs[0].detail["stage"], "attempt");
        }

        #[tokio::test]
        async fn sign_ins_are_remembered_and_scored() {
            let (p, t) = provider(Fake::default());
            let u = crate::testing::user("u1", "alice");
            let keys = AttemptKeys {
                account: "u:alice",
                address: Some("ip:192.0.2.1"),
            };
            let mut m = meta("192.0.2.1");
            m.device = Some("device-1".into());
            let pw = Proven::Password {
                password: "correct horse battery staple",
                keys,
            };
            let a = after_sign_in(&p, &t, &u, pw, &m).await.unwrap();
            assert_eq!(a.action, Action::Allow);
            assert_eq!(value(&a.signals, Signal::NewDevice), None, "no history yet");
            // A common password is noticed; a new device too.
            m.device = Some("device-2".into());
            let weak = Proven::Password {
                password: "Password1",
                keys,
            };
            let a = after_sign_in(&p, &t, &u, weak, &m).await.unwrap();
            assert_eq!(a.reasons(), ["breached_password", "new_device"]);
            let recs = p.store.recorded(EventKind::RiskDecision);
            assert_eq!(recs.len(), 2, "every decision after a sign-in is recorded");
            assert_eq!(
                recs[1].reason.as_deref(),
                Some("allow: breached_password, new_device")
            );
            // The device cookie is kept only as a keyed digest.
            let rows = p.store.sign_ins.lock().unwrap().clone();
            assert_eq!(rows.len(), 2);
            assert!(
                rows.iter()
                    .all(|r| r.device.as_ref().is_some_and(|d| d.len() == 32))
            );
        }

        #[tokio::test]
        async fn agents_are_asked_for_approval_then_suspended() {
            let (p, t) = provider(Fake {
                agents: vec![crate::testing::agent(
                    "a1",
                    crate::domain::agents::AgentStatus::Active,
                )],
                ..Fake::default()
            });
            let mut t = t;
            t.tenant
                .settings
                .risk
                .set_rule(RiskRule::parse("agent_velocity=approval@3").unwrap());
            t.tenant
                .settings
                .risk
                .rules
                .push(RiskRule::parse("agent_velocity=suspend@5").unwrap());
            let res = vec!["https://mail".to_string()];
            let r = AgentRequest {
                agent_id: "a1",
                user_id: "u1",
                mandate_id: "m1",
                resources: &res,
                grant: "token_exchange",
            };
            let m = RequestMeta::default();
            for _ in 0..2 {
                agent_request(&p, &t, r, &m).await.unwrap();
            }
            for _ in 0..2 {
                let e = agent_request(&p, &t, r, &m).await.unwrap_err();
                assert_eq!(e.code, crate::error::ErrorCode::InvalidRequest);
                assert!(e.description.unwrap().starts_with(APPROVAL_REQUIRED));
            }
            let e = agent_request(&p, &t, r, &m).await.unwrap_err();
            assert_eq!(e.code, crate::error::ErrorCode::InvalidClient);
            let reason = p
                .store
                .suspended
                .lock()
                .unwrap()
                .get("a1")
                .cloned()
                .unwrap();
            assert!(reason.contains("agent_velocity"), "{reason}");
            let decisions: Vec<String> = p
                .store
                .recorded(EventKind::RiskDecision)
                .iter()
                .map(|e| e.detail["decision"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                decisions,
                ["allow", "allow", "approval", "approval", "suspend"]
            );
            assert_eq!(p.store.recorded(EventKind::AgentSuspended).len(), 1);
        }

        #[tokio::test]
        async fn an_off_policy_does_nothing() {
            let (p, mut t) = provider(Fake::default());
            t.tenant.settings.risk.enabled = false;
            let u = crate::testing::user("u1", "alice");
            let proven = Proven::Passkey { address: None };
            let a = after_sign_in(&p, &t, &u, proven, &RequestMeta::default())
                .await
                .unwrap();
            assert_eq!(a.action, Action::Allow);
            assert!(p.store.recorded(EventKind::RiskDecision).is_empty());
            assert!(p.store.sign_ins.lock().unwrap().is_empty());
        }
    }
}
