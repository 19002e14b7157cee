//! CIBA's stored data: a client's registration and a backchannel request with its decision.
//! Plain data below the flow (and below the storage port that keeps it).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::scope::Scope;
use crate::error::AdminError;

/// How a CIBA client learns that the person decided (CIBA §5). Push is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// The client polls the token endpoint.
    Poll,
    /// The server POSTs `{"auth_req_id"}` to the client's notification endpoint, then the
    /// client calls the token endpoint.
    Ping,
}

impl DeliveryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Ping => "ping",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "poll" => Self::Poll,
            "ping" => Self::Ping,
            _ => return None,
        })
    }
}

/// A client's CIBA registration (`backchannel_token_delivery_mode`,
/// `backchannel_client_notification_endpoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CibaRegistration {
    pub tenant_id: String,
    pub client_id: String,
    pub mode: DeliveryMode,
    /// Where pings go; set exactly in ping mode.
    pub notification_endpoint: Option<String>,
}

/// Check a registration's mode and endpoint: ping needs an endpoint that passes the outbound
/// rules ([`crate::outbound::check_url`]: `https`, plain `http` only on loopback, no internal
/// address); poll takes none.
pub fn registration_terms(
    mode: &str,
    endpoint: Option<&str>,
) -> Result<(DeliveryMode, Option<String>), AdminError> {
    let mode = DeliveryMode::parse(mode).ok_or_else(|| {
        AdminError::Invalid(format!(
            "unsupported CIBA delivery mode {mode:?} (poll or ping)"
        ))
    })?;
    match (mode, endpoint) {
        (DeliveryMode::Poll, None) => Ok((mode, None)),
        (DeliveryMode::Poll, Some(_)) => Err(AdminError::Invalid(
            "a notification endpoint is only for ping mode".into(),
        )),
        (DeliveryMode::Ping, None) => Err(AdminError::Invalid(
            "ping mode needs a notification endpoint".into(),
        )),
        (DeliveryMode::Ping, Some(e)) => {
            crate::outbound::check_url(e).map_err(|why| {
                AdminError::Invalid(format!("the notification endpoint {e:?} {why}"))
            })?;
            Ok((mode, Some(e.to_string())))
        }
    }
}

/// Where a backchannel request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CibaStatus {
    /// Waiting for the person.
    Pending,
    /// Approved; tokens not yet issued.
    Approved,
    Denied,
    /// Tokens were issued: the `auth_req_id` is spent.
    Consumed,
}

impl CibaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Consumed => "consumed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "consumed" => Self::Consumed,
            _ => return None,
        })
    }
}

/// How the person was signed in when they approved (for the tokens' `auth_time`/`acr`/`amr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CibaApproval {
    pub mandate_id: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
}

/// A backchannel authentication request, stored under the digest of its `auth_req_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct CibaRequest {
    pub tenant_id: String,
    /// Public id, used in the approval page's URL (never the `auth_req_id`).
    pub id: String,
    /// Keyed digest of the `auth_req_id`.
    pub digest: Vec<u8>,
    /// The agent (its client) that asked.
    pub client_id: String,
    /// The person asked.
    pub user_id: String,
    /// Everything asked, `openid` included.
    pub scope: Scope,
    pub authorization_details: Vec<Value>,
    pub resources: Vec<String>,
    pub binding_message: Option<String>,
    /// Ping mode: the bearer token the ping carries.
    pub notification_token: Option<String>,
    /// Ping mode only, until the ping is sent: the `auth_req_id` the ping must carry.
    pub ping_auth_req_id: Option<String>,
    pub status: CibaStatus,
    /// Current minimum polling interval (grows with each `slow_down`).
    pub interval: i64,
    pub last_polled_at: Option<i64>,
    pub expires_at: i64,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    /// Set when approved.
    pub approval: Option<CibaApproval>,
}
