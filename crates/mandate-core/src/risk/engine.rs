//! The pure part of the risk engine: signals from plain facts about one attempt, and the
//! tenant policy's decision over them. No I/O, no clock: everything comes in as arguments, so
//! the tables in `tests.rs` pin every signal and rule.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::domain::risk_policy::{Action, RiskPolicy, Signal};
use crate::geo::{GeoPoint, distance_km};

/// Closer than this (km), two places are the same place: GeoIP is rarely more precise.
pub const SAME_PLACE_KM: f64 = 100.0;

/// Shortest time (seconds) a journey is taken to need, so two sign-ins a second apart from
/// two far places read as a very high speed, not an infinite one.
const MIN_JOURNEY_SECONDS: f64 = 60.0;

/// A failed sign-in from an address (the guessing limits' keys: no name in clear).
/// A person's earlier successful sign-in.
#[derive(Debug, Clone, PartialEq)]
pub struct PastSignIn {
    pub at: i64,
    pub place: Option<GeoPoint>,
    /// The keyed digest of the device cookie it came with.
    pub device: Option<Vec<u8>>,
}

/// What is known of one sign-in attempt. Before the password is checked only the counters
/// (`account_failures`, `address_failures`) are filled; after it, the rest.
#[derive(Debug, Clone, Default)]
pub struct SignInFacts<'a> {
    pub now: i64,
    /// Failed attempts of this account name in the failure window.
    pub account_failures: usize,
    /// Failed attempts from this address in the failure window (counted over the latest
    /// few hundred: bounded).
    pub address_failures: usize,
    /// The distinct account names among them.
    pub address_accounts: usize,
    /// After the password: the person's earlier sign-ins, newest first.
    pub history: Option<&'a [PastSignIn]>,
    /// Where this attempt comes from.
    pub place: Option<GeoPoint>,
    /// The keyed digest of this browser's device cookie.
    pub device: Option<&'a [u8]>,
    /// The password is a common (breached) one.
    pub breached_password: bool,
}

/// An agent's earlier token request for the same person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastRequest {
    pub at: i64,
    pub mandate_id: String,
    pub resources: Vec<String>,
    /// Issued (a refused request counts for velocity only).
    pub allowed: bool,
    /// The person approved the burst it was part of (CIBA): not counted for velocity.
    pub approved: bool,
}

/// What is known of one token request by an agent for a person under a mandate.
#[derive(Debug, Clone)]
pub struct AgentFacts<'a> {
    pub now: i64,
    pub mandate_id: &'a str,
    /// The audiences the token would carry.
    pub resources: &'a [String],
    /// This agent's earlier requests for this person, newest first (bounded).
    pub history: &'a [PastRequest],
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub signal: Signal,
    pub value: f64,
    pub at_least: u32,
    pub action: Action,
}

/// The engine's answer: every signal observed with its value, the rules that fired, and the
/// strongest of their actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub signals: Vec<(Signal, f64)>,
    pub hits: Vec<Hit>,
    pub action: Action,
}

impl Assessment {
    /// Whether `signal` was seen (whatever the policy decided of it).
    pub fn has(&self, signal: Signal) -> bool {
        self.signals.iter().any(|(s, _)| *s == signal)
    }

    /// The audit record's detail: signals with values, rules that matched, decision.
    pub fn detail(&self) -> Value {
        let signals: serde_json::Map<String, Value> = self
            .signals
            .iter()
            .map(|(s, v)| (s.as_str().to_string(), json!(round(*v))))
            .collect();
        let matched: Vec<Value> = self
            .hits
            .iter()
            .map(|h| {
                json!({
                    "signal": h.signal.as_str(),
                    "value": round(h.value),
                    "at_least": h.at_least,
                    "action": h.action.as_str(),
                })
            })
            .collect();
        json!({"decision": self.action.as_str(), "signals": signals, "matched": matched})
    }

    /// The signals that fired a rule, each once, for the record's reason and the metrics.
    pub fn reasons(&self) -> Vec<&'static str> {
        let set: BTreeSet<&'static str> = self.hits.iter().map(|h| h.signal.as_str()).collect();
        set.into_iter().collect()
    }
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The hour of day (UTC) of a Unix time.
fn hour(t: i64) -> i64 {
    t.rem_euclid(86_400) / 3600
}

/// Hours around the clock from `now`'s hour to the nearest of `hours`.
fn hours_from(now: i64, hours: impl Iterator<Item = i64>) -> Option<f64> {
    let h = hour(now);
    hours
        .map(|x| {
            let d = (x - h).rem_euclid(24);
            d.min(24 - d)
        })
        .min()
        .map(|d| d as f64)
}

/// The signals of a sign-in attempt.
pub fn sign_in_signals(policy: &RiskPolicy, f: &SignInFacts<'_>) -> Vec<(Signal, f64)> {
    let mut out = vec![
        (Signal::AccountFailures, f.account_failures as f64),
        (Signal::AddressFailures, f.address_failures as f64),
        (Signal::CredentialStuffing, f.address_accounts as f64),
    ];
    let Some(history) = f.history else {
        return out;
    };
    if f.breached_password {
        out.push((Signal::BreachedPassword, 1.0));
    }
    if !history.is_empty() {
        let known = f
            .device
            .is_some_and(|d| history.iter().any(|h| h.device.as_deref() == Some(d)));
        if !known {
            out.push((Signal::NewDevice, 1.0));
        }
    }
    // Travel: from the place of the last sign-in that has one.
    if let (Some(here), Some((at, there))) = (
        f.place,
        history.iter().find_map(|h| h.place.map(|p| (h.at, p))),
    ) {
        let km = distance_km(here, there);
        let speed = if km < SAME_PLACE_KM {
            0.0
        } else {
            km / ((f.now - at) as f64).max(MIN_JOURNEY_SECONDS) * 3600.0
        };
        out.push((Signal::ImpossibleTravel, speed));
    }
    if history.len() >= policy.min_history.max(1)
        && let Some(d) = hours_from(f.now, history.iter().map(|h| hour(h.at)))
    {
        out.push((Signal::UnusualTime, d));
    }
    out
}

/// The signals of an agent's token request.
pub fn agent_signals(policy: &RiskPolicy, f: &AgentFacts<'_>) -> Vec<(Signal, f64)> {
    // What the person approved (CIBA) is not unusual any more: the count starts again.
    let since = f.now - policy.agent_window;
    let velocity = 1 + f
        .history
        .iter()
        .filter(|r| !r.approved && r.at > since)
        .count();
    let mut out = vec![(Signal::AgentVelocity, velocity as f64)];
    let under: Vec<&PastRequest> = f
        .history
        .iter()
        .filter(|r| r.allowed && r.mandate_id == f.mandate_id)
        .collect();
    if !under.is_empty() {
        let used: BTreeSet<&str> = under
            .iter()
            .flat_map(|r| r.resources.iter().map(String::as_str))
            .collect();
        let new = f
            .resources
            .iter()
            .filter(|r| !used.contains(r.as_str()))
            .count();
        out.push((Signal::AgentNewResource, new as f64));
    }
    if under.len() >= policy.min_history.max(1)
        && let Some(d) = hours_from(f.now, under.iter().map(|r| hour(r.at)))
    {
        out.push((Signal::AgentUnusualTime, d));
    }
    out
}

/// The policy's decision over observed signals: every rule whose signal reached its
/// threshold fires, the strongest action wins (allow when none).
pub fn decide(policy: &RiskPolicy, signals: Vec<(Signal, f64)>) -> Assessment {
    let hits: Vec<Hit> = policy
        .rules
        .iter()
        .filter_map(|r| {
            let (_, v) = signals.iter().find(|(s, _)| *s == r.signal)?;
            (*v >= f64::from(r.at_least)).then_some(Hit {
                signal: r.signal,
                value: *v,
                at_least: r.at_least,
                action: r.action,
            })
        })
        .collect();
    let action = hits.iter().map(|h| h.action).max().unwrap_or(Action::Allow);
    Assessment {
        signals,
        hits,
        action,
    }
}
