//! Audit events: one typed record per security-relevant action, with who performed it, on whose
//! behalf, and the full act chain, so a direct user action and an agent action for that user are
//! always distinguishable. The hash-chained trail consumes these records.

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
    SessionStarted => "session_started",
    SessionEnded => "session_ended",
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
    KeysRotated => "keys_rotated",
}

/// Success or failure of the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
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
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Event-specific detail (grant type, scopes, jti, lifetime…). Never secrets.
    pub detail: serde_json::Value,
}

/// Request context that every event of a request shares.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
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
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            request_id: meta.request_id.clone(),
            detail: serde_json::Value::Null,
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
}
