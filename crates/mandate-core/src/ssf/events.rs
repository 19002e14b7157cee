//! Which audit records are signals for receivers, and the Security Event Tokens (RFC 8417,
//! SSF 1.0 §4) they become. Every revocation is recorded in the audit trail in the same
//! transaction as the action, so the trail is the one source of events.
//!
//! | audit record | CAEP event | `sub_id` (complex, SSF §3.2) | event members |
//! | --- | --- | --- | --- |
//! | `mandate_revoked` | session-revoked | user, application (agent), session (mandate) | `mandate_id`, `agent_id` |
//! | `token_revoked` | session-revoked | user, application (client) | `jti` or `grant_id`, `mandate_id` |
//! | `agent_suspended` / `agent_deleted` | session-revoked | application (agent), user (owner) | `agent_id`, `agent_status` |
//! | `agent_resumed` | token-claims-change | application (agent), user (owner) | `claims.agent_status` |
//! | `user_erased` | session-revoked | user | |
//! | `refresh_reuse_detected` (family revoked) | session-revoked | user, application (client) | `grant_id` |

use mandate_token::claims::Audience;
use mandate_token::set::SetClaims;
use serde_json::{Map, Value, json};

use super::{SESSION_REVOKED, TOKEN_CLAIMS_CHANGE, VERIFICATION};
use crate::audit::{EventKind, Outcome, Principal};
use crate::store::AuditRecord;

/// The audit kinds that can become events.
pub const SIGNAL_KINDS: [EventKind; 7] = [
    EventKind::MandateRevoked,
    EventKind::TokenRevoked,
    EventKind::AgentSuspended,
    EventKind::AgentDeleted,
    EventKind::AgentResumed,
    EventKind::UserErased,
    EventKind::RefreshReuseDetected,
];

/// One event, before it is addressed and signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub event_type: &'static str,
    /// The subject (`sub_id`), without the issuer filled in: see [`Signal::claims`].
    pub subject: Subject,
    /// The event's members.
    pub event: Map<String, Value>,
}

pub use super::model::Subject;

/// CAEP `initiating_entity` for who acted.
fn initiating_entity(actor: &Principal) -> &'static str {
    match actor {
        Principal::Admin { .. } => "admin",
        Principal::User { .. } => "user",
        _ => "system",
    }
}

/// The signal an audit record carries, if any. `agent_owner` is the owning user of the agent
/// an agent lifecycle record names (looked up by the caller).
pub fn signal(rec: &AuditRecord, agent_owner: Option<&str>) -> Option<Signal> {
    let e = &rec.event;
    let user_of = |p: &Option<Principal>| match p {
        Some(Principal::User { id }) => Some(id.clone()),
        _ => None,
    };
    let str_detail = |k: &str| e.detail.get(k).and_then(Value::as_str).map(str::to_string);
    let mut event = Map::new();
    event.insert("event_timestamp".into(), e.time.into());
    event.insert(
        "initiating_entity".into(),
        initiating_entity(&e.actor).into(),
    );
    if let Some(r) = &e.reason {
        event.insert("reason_admin".into(), json!({"en": r}));
    }
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            event.insert(k.into(), v.into());
        }
    };
    let (event_type, subject) = match e.kind {
        _ if e.outcome != Outcome::Success && e.kind != EventKind::RefreshReuseDetected => {
            return None;
        }
        EventKind::MandateRevoked => {
            let mandate = e.mandate_id.clone()?;
            put("mandate_id", Some(mandate.clone()));
            put("agent_id", e.client_id.clone());
            let subject = Subject {
                user: user_of(&e.subject),
                application: e.client_id.clone(),
                session: Some(mandate),
            };
            (SESSION_REVOKED, subject)
        }
        EventKind::TokenRevoked => {
            put("jti", str_detail("jti"));
            put("grant_id", str_detail("grant_id"));
            put("token_type", str_detail("token_type"));
            put("mandate_id", e.mandate_id.clone());
            let subject = Subject {
                user: user_of(&e.subject),
                application: e.client_id.clone(),
                session: e.mandate_id.clone(),
            };
            (SESSION_REVOKED, subject)
        }
        EventKind::AgentSuspended | EventKind::AgentDeleted | EventKind::AgentResumed => {
            let agent = str_detail("agent_id").or_else(|| e.client_id.clone())?;
            put("agent_id", Some(agent.clone()));
            let status = match e.kind {
                EventKind::AgentSuspended => "suspended",
                EventKind::AgentDeleted => "deleted",
                _ => "active",
            };
            let subject = Subject {
                user: agent_owner.map(str::to_string),
                application: Some(agent),
                session: None,
            };
            if e.kind == EventKind::AgentResumed {
                event.insert("claims".into(), json!({"agent_status": status}));
                (TOKEN_CLAIMS_CHANGE, subject)
            } else {
                event.insert("agent_status".into(), status.into());
                (SESSION_REVOKED, subject)
            }
        }
        EventKind::UserErased => {
            let subject = Subject {
                user: Some(user_of(&e.subject).or_else(|| str_detail("user_id"))?),
                ..Subject::default()
            };
            (SESSION_REVOKED, subject)
        }
        EventKind::RefreshReuseDetected => {
            if e.detail.get("revoked").and_then(Value::as_bool) != Some(true) {
                return None;
            }
            put("grant_id", str_detail("grant_id"));
            event.insert("initiating_entity".into(), "policy".into());
            let subject = Subject {
                user: user_of(&e.subject),
                application: e.client_id.clone(),
                session: None,
            };
            (SESSION_REVOKED, subject)
        }
        _ => return None,
    };
    Some(Signal {
        event_type,
        subject,
        event,
    })
}

impl Signal {
    /// The SET claims (SSF §4): `iss`, `jti`, `iat`, `aud`, `txn` (the audit record's sequence
    /// number, the same for every stream the record goes to), `sub_id`, `events`.
    pub fn claims(&self, issuer: &str, aud: &[String], jti: &str, iat: i64, txn: i64) -> SetClaims {
        let mut events = Map::new();
        events.insert(self.event_type.into(), Value::Object(self.event.clone()));
        SetClaims {
            iss: issuer.to_string(),
            jti: jti.to_string(),
            iat,
            aud: Audience::of(aud),
            txn: Some(txn.to_string()),
            sub_id: self.subject.sub_id(issuer),
            events,
        }
    }
}

/// The claims of a verification SET (SSF §8.1.4.1): the stream is the subject.
pub fn verification_claims(
    issuer: &str,
    aud: &[String],
    jti: &str,
    iat: i64,
    stream_id: &str,
    state: Option<&str>,
) -> SetClaims {
    let mut event = Map::new();
    if let Some(s) = state {
        event.insert("state".into(), s.into());
    }
    let mut events = Map::new();
    events.insert(VERIFICATION.into(), Value::Object(event));
    SetClaims {
        iss: issuer.to_string(),
        jti: jti.to_string(),
        iat,
        aud: Audience::of(aud),
        txn: None,
        sub_id: json!({"format": "opaque", "id": stream_id}),
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, RequestMeta};

    fn record(e: AuditEvent) -> AuditRecord {
        AuditRecord {
            seq: 7,
            hash: vec![],
            event: e,
        }
    }

    #[test]
    fn mandate_revocation_names_person_agent_and_mandate() {
        let mut e = AuditEvent::new(
            "t",
            EventKind::MandateRevoked,
            Outcome::Success,
            Principal::User { id: "u1".into() },
            &RequestMeta::default(),
        )
        .subject(Principal::User { id: "u1".into() })
        .client("agent1")
        .reason("revoked by the person");
        e.mandate_id = Some("m1".into());
        let s = signal(&record(e), None).unwrap();
        assert_eq!(s.event_type, SESSION_REVOKED);
        let c = s.claims("https://iss", &["rs".into()], "j", 1, 7);
        assert_eq!(c.aud, Audience::One("rs".into()));
        assert_eq!(c.txn.as_deref(), Some("7"));
        assert_eq!(c.sub_id["user"]["sub"], "u1");
        assert_eq!(c.sub_id["user"]["iss"], "https://iss");
        assert_eq!(c.sub_id["application"]["id"], "agent1");
        assert_eq!(c.sub_id["session"]["id"], "m1");
        assert_eq!(c.event_type(), Some(SESSION_REVOKED));
        let ev = &c.events[SESSION_REVOKED];
        assert_eq!(ev["mandate_id"], "m1");
        assert_eq!(ev["agent_id"], "agent1");
        assert_eq!(ev["initiating_entity"], "user");
        assert_eq!(ev["reason_admin"]["en"], "revoked by the person");
    }

    #[test]
    fn failures_and_other_kinds_are_not_signals() {
        let e = AuditEvent::new(
            "t",
            EventKind::LoginSucceeded,
            Outcome::Success,
            Principal::Anonymous,
            &RequestMeta::default(),
        );
        assert!(signal(&record(e), None).is_none());
        let e = AuditEvent::new(
            "t",
            EventKind::AgentSuspended,
            Outcome::Failure,
            Principal::Admin { id: "a".into() },
            &RequestMeta::default(),
        )
        .detail(json!({"agent_id": "x"}));
        assert!(signal(&record(e), None).is_none());
    }

    #[test]
    fn agent_resume_is_a_claims_change() {
        let e = AuditEvent::new(
            "t",
            EventKind::AgentResumed,
            Outcome::Success,
            Principal::Admin { id: "a".into() },
            &RequestMeta::default(),
        )
        .detail(json!({"agent_id": "ag"}));
        let s = signal(&record(e), Some("owner")).unwrap();
        assert_eq!(s.event_type, TOKEN_CLAIMS_CHANGE);
        assert_eq!(s.event["claims"]["agent_status"], "active");
        assert_eq!(s.subject.user.as_deref(), Some("owner"));
    }
}
