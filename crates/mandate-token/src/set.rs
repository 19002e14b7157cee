//! A Security Event Token's claims (RFC 8417 §2.2, as the Shared Signals Framework 1.0 §4 uses
//! them) as a type, in the order they are issued. `sub_id` (SSF §3, a subject identifier of any
//! format) and each event's members stay JSON: their shapes are per event type.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::claims::Audience;

/// The claims of a SET Mandate transmits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetClaims {
    /// The tenant's issuer.
    pub iss: String,
    /// Its id (receivers acknowledge by it).
    pub jti: String,
    /// Issued at.
    pub iat: i64,
    /// The receivers it is meant for (the stream's audience, set by the transmitter).
    pub aud: Audience,
    /// The transaction it belongs to: the audit record's sequence number, the same in every
    /// stream the record goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
    /// Whom the event is about.
    pub sub_id: Value,
    /// The event type URI and its members (exactly one event).
    pub events: Map<String, Value>,
}

impl SetClaims {
    /// The one event's type URI.
    pub fn event_type(&self) -> Option<&str> {
        self.events.keys().next().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_in_the_order_issued_and_reads_back() {
        let mut events = Map::new();
        events.insert("https://e/x".into(), json!({"a": 1}));
        let c = SetClaims {
            iss: "https://id.example".into(),
            jti: "j".into(),
            iat: 1,
            aud: Audience::of(&["rs".into()]),
            txn: Some("7".into()),
            sub_id: json!({"format": "opaque", "id": "s"}),
            events,
        };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"iss":"https://id.example","jti":"j","iat":1,"aud":"rs","txn":"7","sub_id":{"format":"opaque","id":"s"},"events":{"https://e/x":{"a":1}}}"#
        );
        assert_eq!(serde_json::from_str::<SetClaims>(&text).unwrap(), c);
        assert_eq!(c.event_type(), Some("https://e/x"));
    }
}
