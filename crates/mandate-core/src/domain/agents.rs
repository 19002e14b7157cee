//! Agents and mandates: an agent is a principal of its own (backed by an OAuth client with the
//! same id, so it authenticates like one), and acts for a person only under a mandate, a
//! recorded, scoped, time-boxed and revocable delegation. The rules of what a mandate covers
//! live here, pure; the registry operations are in the admin module.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::scope::Scope;

/// Whether an agent may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    /// Temporarily stopped: every token it holds is inactive until resumed.
    Suspended,
    /// Gone for good (the record stays for the audit trail).
    Deleted,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }
}

/// A registered agent. Its `id` is also the client_id it authenticates with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    /// The owning user; `None` when the tenant owns it.
    pub owner_user_id: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub version: Option<String>,
    /// The most it may ever be granted, whatever a mandate says.
    pub scope_ceiling: Scope,
    /// Tokens only with a DPoP proof (RFC 9449).
    pub require_dpop: bool,
    pub status: AgentStatus,
    /// Why it is suspended, when the risk policy suspended it (shown to people); `None`
    /// otherwise.
    pub status_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Agent {
    /// Metadata shown to people and resource servers (consent, introspection).
    pub fn metadata(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "provider": self.provider,
            "model": self.model,
            "version": self.version,
            "owner": self.owner_user_id,
        })
    }

    /// The administrator's view (CLI `--json` and the admin API).
    pub fn admin_view(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "owner": self.owner_user_id,
            "provider": self.provider,
            "model": self.model,
            "version": self.version,
            "scope_ceiling": self.scope_ceiling.to_string(),
            "require_dpop": self.require_dpop,
            "status": self.status.as_str(),
            "status_reason": self.status_reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// How a mandate came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MandateOrigin {
    Api,
    Consent,
    Ciba,
}

impl MandateOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Consent => "consent",
            Self::Ciba => "ciba",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "api" => Self::Api,
            "consent" => Self::Consent,
            "ciba" => Self::Ciba,
            _ => return None,
        })
    }
}

/// A user → agent delegation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mandate {
    pub tenant_id: String,
    pub id: String,
    pub user_id: String,
    pub agent_id: String,
    pub scope: Scope,
    /// RFC 9396 `authorization_details` the agent may ask for (an array; empty: none).
    pub authorization_details: Vec<Value>,
    /// RFC 8707 resources (audiences) tokens may be issued for; empty: only the issuer.
    pub resources: Vec<String>,
    pub expires_at: i64,
    /// Longest lifetime of one token issued under it, in seconds.
    pub max_token_lifetime: i64,
    /// How many further agents the agent may hand it on to (0: no sub-delegation).
    pub max_delegation_depth: u32,
    /// Actions that need fresh human approval (reported by authorization decisions).
    pub approval_required: Vec<String>,
    pub origin: MandateOrigin,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// Tokens issued under it may come with a refresh token (the agent keeps acting while the
    /// mandate is in force, without the person's token).
    pub allow_refresh: bool,
}

impl Mandate {
    /// In force at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }

    /// The administrator's view (CLI `--json` and the admin API).
    pub fn admin_view(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "user_id": self.user_id,
            "agent_id": self.agent_id,
            "scope": self.scope.to_string(),
            "resources": self.resources,
            "authorization_details": self.authorization_details,
            "expires_at": self.expires_at,
            "max_token_lifetime": self.max_token_lifetime,
            "max_delegation_depth": self.max_delegation_depth,
            "approval_required": self.approval_required,
            "origin": self.origin.as_str(),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "allow_refresh": self.allow_refresh,
        })
    }
}

/// Does `granted` (one RFC 9396 detail object) allow everything `asked` asks? Same `type`, and
/// every constraint of `granted` is respected: for each of its members (but `type`), `asked`
/// has the member and its value is equal, or (arrays) a subset. Members `granted` does not
/// constrain may appear in `asked`.
pub fn detail_covers(granted: &Value, asked: &Value) -> bool {
    let (Some(g), Some(a)) = (granted.as_object(), asked.as_object()) else {
        return false;
    };
    if g.get("type").is_none() || g.get("type") != a.get("type") {
        return false;
    }
    g.iter()
        .filter(|(k, _)| *k != "type")
        .all(|(k, gv)| match (gv, a.get(k)) {
            (_, None) => false,
            (Value::Array(gs), Some(Value::Array(asks))) => asks.iter().all(|x| gs.contains(x)),
            (Value::Array(gs), Some(x)) => gs.contains(x),
            (gv, Some(av)) => gv == av,
        })
}

/// Every detail asked for is covered by one granted.
pub fn details_covered(granted: &[Value], asked: &[Value]) -> bool {
    asked
        .iter()
        .all(|a| granted.iter().any(|g| detail_covers(g, a)))
}

/// Parse an `authorization_details` parameter: a JSON array of objects with a string `type`.
pub fn parse_details(s: &str) -> Option<Vec<Value>> {
    let v: Value = serde_json::from_str(s).ok()?;
    let items = v.as_array()?.clone();
    items
        .iter()
        .all(|d| {
            d.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty())
        })
        .then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn details_cover_only_within_constraints() {
        let g = json!({"type": "calendar", "actions": ["read", "list"], "locations": ["https://cal.example"]});
        assert!(detail_covers(
            &g,
            &json!({"type": "calendar", "actions": ["read"], "locations": ["https://cal.example"]})
        ));
        // Extra members the grant does not constrain are fine.
        assert!(detail_covers(
            &g,
            &json!({"type": "calendar", "actions": ["read"], "locations": ["https://cal.example"], "note": 1})
        ));
        // Wider action, other location, missing constraint, other type.
        assert!(!detail_covers(
            &g,
            &json!({"type": "calendar", "actions": ["write"], "locations": ["https://cal.example"]})
        ));
        assert!(!detail_covers(
            &g,
            &json!({"type": "calendar", "actions": ["read"], "locations": ["https://evil.example"]})
        ));
        assert!(!detail_covers(
            &g,
            &json!({"type": "calendar", "actions": ["read"]})
        ));
        assert!(!detail_covers(
            &g,
            &json!({"type": "payment", "actions": ["read"], "locations": ["https://cal.example"]})
        ));
        assert!(details_covered(std::slice::from_ref(&g), &[]));
        assert!(!details_covered(&[], &[g]));
    }

    #[test]
    fn details_parse() {
        assert!(parse_details(r#"[{"type":"a"}]"#).is_some());
        assert!(parse_details(r#"{"type":"a"}"#).is_none());
        assert!(parse_details(r#"[{"kind":"a"}]"#).is_none());
        assert!(parse_details("not json").is_none());
    }
}
