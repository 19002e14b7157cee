//! SSF's stored data: a receiver's stream, how its SETs are delivered, and the subjects it
//! excludes. Plain data below the flow (and below the storage port that keeps it).

use serde_json::{Value, json};

/// RFC 8935 push delivery.
pub const PUSH_METHOD: &str = "urn:ietf:rfc:8935";
/// RFC 8936 poll delivery.
pub const POLL_METHOD: &str = "urn:ietf:rfc:8936";

/// Whether a stream passes events on (SSF §8.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    /// Events are delivered.
    Enabled,
    /// Events are kept and delivered once the stream is enabled again.
    Paused,
    /// Events are neither kept nor delivered.
    Disabled,
}

impl StreamStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "enabled" => Self::Enabled,
            "paused" => Self::Paused,
            "disabled" => Self::Disabled,
            _ => return None,
        })
    }
}

/// How SETs reach the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// RFC 8935: we POST each SET to the receiver's endpoint, with its `Authorization` value.
    Push {
        endpoint_url: String,
        authorization_header: Option<String>,
    },
    /// RFC 8936: the receiver polls our endpoint for the stream.
    Poll,
}

impl Delivery {
    /// The delivery method URN.
    pub fn method(&self) -> &'static str {
        match self {
            Delivery::Push { .. } => PUSH_METHOD,
            Delivery::Poll => POLL_METHOD,
        }
    }
}

/// One event stream of a tenant, owned by the receiver client that created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub tenant_id: String,
    pub id: String,
    /// The receiver: the client whose token created it; only it can see or change it.
    pub client_id: String,
    /// The `aud` stored with the stream; SETs use [`Stream::audience`].
    pub aud: Vec<String>,
    pub events_requested: Vec<String>,
    pub delivery: Delivery,
    pub description: Option<String>,
    pub status: StreamStatus,
    pub status_reason: Option<String>,
    /// The audit sequence number when it was created: only later records become its events.
    pub start_seq: i64,
    /// Subjects the receiver removed (SSF §8.1.3.3): no SETs about them. Every other subject
    /// is in the stream (`default_subjects: "ALL"`).
    pub excluded_subjects: Vec<Subject>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Who a signal is about; also, with only some members set, a receiver's filter on subjects
/// (see [`Subject::matches`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    /// The person (`iss_sub` under the tenant's issuer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The agent or client holding the tokens (`opaque`: its client_id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// The delegation ended (`opaque`: the mandate id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

impl Subject {
    /// Whether `self`, taken as a filter, matches `other`: every member it names is equal.
    /// A filter naming nothing matches nothing.
    pub fn matches(&self, other: &Subject) -> bool {
        let member = |f: &Option<String>, o: &Option<String>| f.is_none() || f == o;
        (self.user.is_some() || self.application.is_some() || self.session.is_some())
            && member(&self.user, &other.user)
            && member(&self.application, &other.application)
            && member(&self.session, &other.session)
    }

    /// The SSF complex subject.
    pub fn sub_id(&self, issuer: &str) -> Value {
        let mut v = json!({"format": "complex"});
        if let Some(u) = &self.user {
            v["user"] = json!({"format": "iss_sub", "iss": issuer, "sub": u});
        }
        if let Some(a) = &self.application {
            v["application"] = json!({"format": "opaque", "id": a});
        }
        if let Some(s) = &self.session {
            v["session"] = json!({"format": "opaque", "id": s});
        }
        v
    }
}
