//! Audit events: one typed record per security-relevant action, with who performed it, on whose
//! behalf, and the full act chain, so a direct user action and an agent action for that user are
//! always distinguishable. [`chain`] links a tenant's records into a tamper-evident hash chain.

pub mod chain;
pub mod store;

use serde::{Deserialize, Serialize};

macro_rules! event_kinds {
    ($($variant:ident => $name:literal,)*) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum EventKind {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl EventKind {
            /// Every kind, for listings and validation.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            /// The stable wire name.
            pub fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $name,)* }
            }

            /// Parse a wire name.
            pub fn parse(s: &str) -> Option<EventKind> {
                match s { $($name => Some(EventKind::$variant),)* _ => None }
            }
        }
    };
}

event_kinds! {
    LoginSucceeded => "login_succeeded",
    LoginFailed => "login_failed",
    LoginLocked => "login_locked",
    SessionStarted => "session_started",
    SessionEnded => "session_ended",
    SessionFactorAdded => "session_factor_added",
    PasskeyRegistered => "passkey_registered",
    PasskeyRemoved => "passkey_removed",
    SecondFactorEnrolled => "second_factor_enrolled",
    SecondFactorRemoved => "second_factor_removed",
    RecoveryCodesGenerated => "recovery_codes_generated",
    RecoveryCodeUsed => "recovery_code_used",
    EmailSent => "email_sent",
    EmailVerified => "email_verified",
    PasswordResetRequested => "password_reset_requested",
    PasswordChanged => "password_changed",
    RiskDecision => "risk_decision",
    ConsentGiven => "consent_given",
    ConsentWithdrawn => "consent_withdrawn",
    AuthorizationFailed => "authorization_failed",
    CodeIssued => "code_issued",
    TokenIssued => "token_issued",
    TokenRefreshed => "token_refreshed",
    TokenRequestFailed => "token_request_failed",
    CodeReuseDetected => "code_reuse_detected",
    RefreshReuseDetected => "refresh_reuse_detected",
    TokenRevoked => "token_revoked",
    ClientAuthFailed => "client_auth_failed",
    TenantCreated => "tenant_created",
    ClientCreated => "client_created",
    UserCreated => "user_created",
    UserErased => "user_erased",
    RoleGranted => "role_granted",
    RoleRevoked => "role_revoked",
    AdminAccessDenied => "admin_access_denied",
    AuditQueried => "audit_queried",
    TokenExchanged => "token_exchanged",
    AuthorizationDecision => "authorization_decision",
    AuthzModelWritten => "authz_model_written",
    AuthzTuplesWritten => "authz_tuples_written",
    AuthzPolicySet => "authz_policy_set",
    AgentCreated => "agent_created",
    AgentSuspended => "agent_suspended",
    AgentResumed => "agent_resumed",
    AgentDeleted => "agent_deleted",
    MandateCreated => "mandate_created",
    MandateRevoked => "mandate_revoked",
    KeysRotated => "keys_rotated",
    TenantSettingsChanged => "tenant_settings_changed",
    TokenImpersonated => "token_impersonated",
    CibaRequested => "ciba_requested",
    CibaApproved => "ciba_approved",
    CibaDenied => "ciba_denied",
    CibaExpired => "ciba_expired",
    SsfStreamCreated => "ssf_stream_created",
    SsfStreamUpdated => "ssf_stream_updated",
    SsfStreamDeleted => "ssf_stream_deleted",
}

/// Success or failure of the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    /// The stable wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// A principal as audit sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Principal {
    User { id: String },
    Client { id: String },
    Agent { id: String },
    Admin { id: String },
    Anonymous,
}

impl Principal {
    /// The stored form: type name and id (`None` for anonymous).
    pub fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            Principal::User { id } => ("user", Some(id)),
            Principal::Client { id } => ("client", Some(id)),
            Principal::Agent { id } => ("agent", Some(id)),
            Principal::Admin { id } => ("admin", Some(id)),
            Principal::Anonymous => ("anonymous", None),
        }
    }

    /// Cut an id a request supplied (e.g. an unknown client's Basic user name) to a bound.
    fn clip_id(&mut self) {
        match self {
            Principal::User { id }
            | Principal::Client { id }
            | Principal::Agent { id }
            | Principal::Admin { id } => {
                crate::untrusted::clip_string(id, crate::untrusted::MAX_TEXT)
            }
            Principal::Anonymous => {}
        }
    }

    /// Back from [`Principal::parts`]; `None` for an unknown type or a missing id.
    pub fn from_parts(kind: &str, id: Option<String>) -> Option<Principal> {
        Some(match (kind, id) {
            ("user", Some(id)) => Principal::User { id },
            ("client", Some(id)) => Principal::Client { id },
            ("agent", Some(id)) => Principal::Agent { id },
            ("admin", Some(id)) => Principal::Admin { id },
            ("anonymous", None) => Principal::Anonymous,
            _ => return None,
        })
    }
}

/// One audit record, before it is chained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub time: i64,
    pub tenant_id: String,
    pub kind: EventKind,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// Who performed it.
    pub actor: Principal,
    /// On whose behalf (the user for a delegated or user-driven action).
    pub subject: Option<Principal>,
    /// The act chain, outermost (most recent) actor first; empty for a direct action.
    pub act_chain: Vec<Principal>,
    pub client_id: Option<String>,
    pub mandate_id: Option<String>,
    pub request_id: Option<String>,
    /// Event-specific detail (grant type, scopes, jti, lifetime…). Never secrets, never
    /// personal data (that goes in `personal`).
    pub detail: serde_json::Value,
    /// Personal data, stored apart from the chained content so that it can be erased.
    #[serde(default, skip_serializing_if = "Personal::is_empty")]
    pub personal: Personal,
}

/// The personal data of an audit record (GDPR): stored in its own table, covered by the chain
/// only through a salted commitment (`chain::personal_commitment`), and deleted when the person
/// is erased, after which the chain still verifies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Personal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The username given (also for a failed login of an unknown user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Personal {
    /// Nothing personal recorded.
    pub fn is_empty(&self) -> bool {
        self.ip.is_none()
            && self.user_agent.is_none()
            && self.username.is_none()
            && self.email.is_none()
    }
}

/// Request context that every event of a request shares.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// The browser's device cookie (risk: a new device); never recorded as such.
    pub device: Option<String>,
}

impl AuditEvent {
    /// A new event with the request's context and empty optional fields.
    pub fn new(
        tenant_id: &str,
        kind: EventKind,
        outcome: Outcome,
        actor: Principal,
        meta: &RequestMeta,
    ) -> Self {
        Self {
            time: crate::time::now(),
            tenant_id: tenant_id.to_string(),
            kind,
            outcome,
            reason: None,
            actor,
            subject: None,
            act_chain: Vec::new(),
            client_id: None,
            mandate_id: None,
            request_id: meta.request_id.clone(),
            detail: serde_json::Value::Null,
            personal: Personal {
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                ..Personal::default()
            },
        }
    }
    pub fn reason(mut self, r: impl Into<String>) -> Self {
        self.reason = Some(r.into());
        self
    }
    pub fn subject(mut self, p: Principal) -> Self {
        self.subject = Some(p);
        self
    }
    pub fn client(mut self, c: impl Into<String>) -> Self {
        self.client_id = Some(c.into());
        self
    }
    pub fn detail(mut self, d: serde_json::Value) -> Self {
        self.detail = d;
        self
    }
    /// The username the action concerns (personal data, erasable).
    pub fn username(mut self, u: impl Into<String>) -> Self {
        self.personal.username = Some(u.into());
        self
    }
    /// The e-mail address the action concerns (personal data, erasable).
    pub fn email(mut self, e: Option<&str>) -> Self {
        self.personal.email = e.map(str::to_string);
        self
    }
    /// The event with everything a request may have supplied cut to a bound (see
    /// [`crate::untrusted`]): no request can write an audit record of more than a few KB. The
    /// store applies it to every record it writes.
    pub fn bounded(mut self) -> Self {
        use crate::untrusted::{MAX_TEXT, bound_json, clip_string};
        for s in [
            self.reason.as_mut(),
            self.client_id.as_mut(),
            self.mandate_id.as_mut(),
            self.request_id.as_mut(),
            self.personal.ip.as_mut(),
            self.personal.user_agent.as_mut(),
            self.personal.username.as_mut(),
            self.personal.email.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            clip_string(s, MAX_TEXT);
        }
        self.act_chain.truncate(8);
        for p in std::iter::once(&mut self.actor)
            .chain(self.subject.as_mut())
            .chain(self.act_chain.iter_mut())
        {
            p.clip_id();
        }
        bound_json(&mut self.detail);
        self
    }

    /// The user whose personal data this record holds: the subject if a user, else the actor.
    pub fn data_subject(&self) -> Option<&str> {
        match (&self.subject, &self.actor) {
            (Some(Principal::User { id }), _) | (_, Principal::User { id }) => Some(id),
            _ => None,
        }
    }
}

/// Largest page an audit query returns.
pub const MAX_QUERY_LIMIT: u32 = 1000;

impl store::AuditRecord {
    /// The JSON form used by `mandate audit query|export` and the admin API. `delegated` tells
    /// an action an agent (or other principal) took for someone from their own action.
    pub fn to_json(&self) -> serde_json::Value {
        let e = &self.event;
        let mut v = serde_json::json!({
            "seq": self.seq,
            "hash": chain::hex(&self.hash),
            "time": e.time,
            "tenant_id": e.tenant_id,
            "event": e.kind.as_str(),
            "outcome": e.outcome.as_str(),
            "reason": e.reason,
            "actor": e.actor,
            "subject": e.subject,
            "act_chain": e.act_chain,
            "delegated": e.subject.as_ref().is_some_and(|s| s != &e.actor),
            "client_id": e.client_id,
            "mandate_id": e.mandate_id,
            "request_id": e.request_id,
            "detail": e.detail,
        });
        if let (Some(obj), serde_json::Value::Object(p)) = (
            v.as_object_mut(),
            serde_json::to_value(&e.personal).unwrap_or_default(),
        ) {
            obj.extend(p);
        }
        v
    }
}

/// Why an audit query's parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// Build a query from request parameters (`actor`, `subject`, `agent`, `mandate`, `event`
/// (repeatable or comma-separated), `since`, `until` (Unix seconds or RFC 3339), `limit`
/// (1–1000, default 100), `cursor`). Unknown or repeated single-valued parameters are refused.
pub fn query_from_params<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<store::AuditQuery, QueryError> {
    let mut q = store::AuditQuery {
        limit: 100,
        ..Default::default()
    };
    let mut seen = std::collections::HashSet::new();
    let bad = |m: String| Err(QueryError(m));
    for (k, v) in params {
        if k != "event" && !seen.insert(k) {
            return bad(format!("parameter {k} given twice"));
        }
        let text = || Some(v.to_string());
        let instant = || {
            crate::time::parse_instant(v)
                .ok_or_else(|| QueryError(format!("{k}: expected Unix seconds or RFC 3339")))
        };
        match k {
            "actor" => q.actor = text(),
            "subject" => q.subject = text(),
            "agent" => q.agent = text(),
            "mandate" => q.mandate = text(),
            "event" => {
                for name in v.split(',').filter(|s| !s.is_empty()) {
                    let kind = EventKind::parse(name)
                        .ok_or_else(|| QueryError(format!("unknown event kind {name:?}")))?;
                    q.kinds.push(kind);
                }
            }
            "since" => q.since = Some(instant()?),
            "until" => q.until = Some(instant()?),
            "limit" => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_QUERY_LIMIT).contains(&n) => q.limit = n,
                _ => return bad(format!("limit must be 1-{MAX_QUERY_LIMIT}")),
            },
            "cursor" => match v.parse::<i64>() {
                Ok(n) if n >= 0 => q.cursor = Some(n),
                _ => return bad("invalid cursor".into()),
            },
            other => return bad(format!("unknown parameter {other}")),
        }
    }
    Ok(q)
}
