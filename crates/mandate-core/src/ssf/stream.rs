//! Stream configuration (SSF 1.0 §8.1.1): what a receiver may set (`delivery`,
//! `events_requested`, `description`, and here also `aud`), validated, and the JSON form the
//! management API returns.

use serde_json::{Map, Value, json};

use super::events::Subject;
use super::{EVENTS_SUPPORTED, POLL_METHOD, PUSH_METHOD};

pub use super::model::{Delivery, Stream, StreamStatus};

impl Stream {
    /// The `aud` of every SET: the receiver's client_id, set by the transmitter (SSF 1.0
    /// §8.1.1), whatever an older version stored.
    pub fn audience(&self) -> Vec<String> {
        vec![self.client_id.clone()]
    }

    /// The event types delivered: those requested that are supported, in request order.
    pub fn events_delivered(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for e in &self.events_requested {
            if EVENTS_SUPPORTED.contains(&e.as_str()) && !out.contains(&e.as_str()) {
                out.push(e);
            }
        }
        out
    }

    /// Whether SETs about `subject` go to this stream.
    pub fn includes(&self, subject: &Subject) -> bool {
        !self.excluded_subjects.iter().any(|f| f.matches(subject))
    }

    /// Whether SETs of `event_type` go to this stream.
    pub fn delivers(&self, event_type: &str) -> bool {
        self.events_requested.iter().any(|e| e == event_type)
            && EVENTS_SUPPORTED.contains(&event_type)
    }

    /// The configuration as the management API returns it. The push `authorization_header`
    /// is a credential of the receiver's: it is never echoed back.
    pub fn to_json(&self, issuer: &str, poll_url: &str) -> Value {
        let delivery = match &self.delivery {
            Delivery::Push { endpoint_url, .. } => {
                json!({"method": PUSH_METHOD, "endpoint_url": endpoint_url})
            }
            Delivery::Poll => json!({"method": POLL_METHOD, "endpoint_url": poll_url}),
        };
        let aud: Value = self.client_id.clone().into();
        let mut v = json!({
            "stream_id": self.id,
            "iss": issuer,
            "aud": aud,
            "delivery": delivery,
            "events_supported": EVENTS_SUPPORTED,
            "events_requested": self.events_requested,
            "events_delivered": self.events_delivered(),
        });
        if let Some(d) = &self.description {
            v["description"] = d.clone().into();
        }
        v
    }
}

/// Why a stream configuration was refused (400 `invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad<T>(m: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(m.into()))
}

/// Longest accepted `description`, `authorization_header`, URL or event type.
const MAX_TEXT: usize = 2048;
/// Most entries in `events_requested` or `aud`.
const MAX_ITEMS: usize = 32;

/// The receiver-supplied part of a configuration, as parsed from a request body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverConfig {
    pub delivery: Option<Delivery>,
    pub events_requested: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub aud: Option<Vec<String>>,
}

impl ReceiverConfig {
    /// Parse a request body. Transmitter-supplied members (`iss`, `events_supported`,
    /// `events_delivered`, `stream_id` …) are ignored, as are unknown ones; receiver-supplied
    /// ones must be well-formed.
    pub fn parse(body: &Map<String, Value>) -> Result<ReceiverConfig, ConfigError> {
        let mut c = ReceiverConfig::default();
        if let Some(d) = body.get("delivery") {
            c.delivery = Some(parse_delivery(d)?);
        }
        if let Some(e) = body.get("events_requested") {
            c.events_requested = Some(string_list(e, "events_requested")?);
        }
        if let Some(d) = body.get("description") {
            c.description = Some(match d {
                Value::Null => None,
                Value::String(s) if s.len() <= MAX_TEXT => Some(s.clone()),
                _ => return bad("description must be a string of at most 2048 bytes"),
            });
        }
        if let Some(a) = body.get("aud") {
            let aud = match a {
                Value::String(s) => vec![s.clone()],
                Value::Array(_) => string_list(a, "aud")?,
                _ => return bad("aud must be a string or an array of strings"),
            };
            if aud.is_empty() || aud.iter().any(|s| s.is_empty() || s.len() > MAX_TEXT) {
                return bad("aud must name at least one non-empty audience");
            }
            c.aud = Some(aud);
        }
        Ok(c)
    }
}

fn string_list(v: &Value, name: &str) -> Result<Vec<String>, ConfigError> {
    let Some(items) = v.as_array() else {
        return bad(format!("{name} must be an array of strings"));
    };
    if items.len() > MAX_ITEMS {
        return bad(format!("{name} has more than {MAX_ITEMS} entries"));
    }
    items
        .iter()
        .map(|i| match i.as_str() {
            Some(s) if !s.is_empty() && s.len() <= MAX_TEXT => Ok(s.to_string()),
            _ => bad(format!("{name} must be an array of non-empty strings")),
        })
        .collect()
}

fn parse_delivery(v: &Value) -> Result<Delivery, ConfigError> {
    let Some(d) = v.as_object() else {
        return bad("delivery must be an object");
    };
    let text = |k: &str| -> Result<Option<&str>, ConfigError> {
        match d.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= MAX_TEXT => Ok(Some(s.as_str())),
            Some(_) => bad(format!(
                "delivery.{k} must be a string of at most 2048 bytes"
            )),
        }
    };
    match text("method")? {
        Some(PUSH_METHOD) => {
            let Some(url) = text("endpoint_url")? else {
                return bad("push delivery needs delivery.endpoint_url");
            };
            check_push_url(url)?;
            let auth = text("authorization_header")?;
            if let Some(a) = auth
                && (a.is_empty() || !a.bytes().all(|b| b == b' ' || b.is_ascii_graphic()))
            {
                return bad("delivery.authorization_header must be printable ASCII");
            }
            Ok(Delivery::Push {
                endpoint_url: url.to_string(),
                authorization_header: auth.map(str::to_string),
            })
        }
        // The poll endpoint is ours to name: a receiver-sent endpoint_url is ignored.
        Some(POLL_METHOD) => Ok(Delivery::Poll),
        Some(other) => bad(format!("unsupported delivery method {other:?}")),
        None => bad("delivery.method is required"),
    }
}

/// A push endpoint must pass the outbound rules ([`crate::outbound::check_url`]).
pub fn check_push_url(url: &str) -> Result<(), ConfigError> {
    crate::outbound::check_url(url)
        .map_err(|why| ConfigError(format!("delivery.endpoint_url {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ReceiverConfig, ConfigError> {
        ReceiverConfig::parse(v.as_object().unwrap())
    }

    #[test]
    fn push_urls() {
        assert!(check_push_url("https://rs.example/ssf").is_ok());
        // Loopback only behind the development switch (off here).
        assert!(check_push_url("http://127.0.0.1:8080/ssf").is_err());
        assert!(check_push_url("http://[::1]/ssf").is_err());
        assert!(check_push_url("http://localhost/ssf").is_err());
        assert!(check_push_url("http://rs.example/ssf").is_err());
        assert!(check_push_url("ftp://127.0.0.1/").is_err());
        assert!(check_push_url("https://u:p@rs.example/").is_err());
        assert!(check_push_url("not a url").is_err());
        for private in [
            "https://10.1.2.3/",
            "https://192.168.0.1/",
            "https://172.16.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
        ] {
            assert!(check_push_url(private).is_err(), "{private}");
        }
        assert!(check_push_url("https://93.184.215.14/ssf").is_ok());
    }

    #[test]
    fn configs() {
        let c = parse(json!({"delivery": {"method": PUSH_METHOD,
            "endpoint_url": "https://rs.example/e", "authorization_header": "Bearer x"},
            "events_requested": [super::super::SESSION_REVOKED], "aud": "rs"}))
        .unwrap();
        assert_eq!(c.aud, Some(vec!["rs".to_string()]));
        assert!(matches!(c.delivery, Some(Delivery::Push { .. })));
        assert_eq!(
            parse(json!({"delivery": {"method": POLL_METHOD}}))
                .unwrap()
                .delivery,
            Some(Delivery::Poll)
        );
        for bad in [
            json!({"delivery": "push"}),
            json!({"delivery": {"method": "urn:x"}}),
            json!({"delivery": {"method": PUSH_METHOD}}),
            json!({"delivery": {"method": PUSH_METHOD, "endpoint_url": "http://rs.example/"}}),
            json!({"delivery": {"method": PUSH_METHOD, "endpoint_url": "https://rs.example/",
                "authorization_header": "a\r\nb"}}),
            json!({"events_requested": "x"}),
            json!({"events_requested": [1]}),
            json!({"aud": []}),
            json!({"aud": 3}),
            json!({"description": 3}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
