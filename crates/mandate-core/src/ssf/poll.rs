//! RFC 8936 poll delivery: the receiver acknowledges what it processed (`ack`), reports SETs it
//! could not process (`setErrs`), and gets up to `maxEvents` queued SETs, at once
//! (`returnImmediately`) or as soon as one is queued within a bounded wait (long poll).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::SsfStore;
use super::stream::{ConfigError, Delivery, StreamStatus};
use super::transmitter::{SsfError, get};
use crate::access::AdminCaller;
use crate::provider::{Provider, TenantCtx};

/// `maxEvents` when the request gives none, and the most one response carries.
pub const DEFAULT_MAX_EVENTS: u32 = 100;
pub const MAX_EVENTS: u32 = 1000;
/// Most jtis one request may acknowledge or report.
pub const MAX_ACKS: usize = 1000;
/// How often a long poll looks for new SETs.
const LONG_POLL_STEP: Duration = Duration::from_millis(100);

/// A parsed poll request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRequest {
    pub max_events: u32,
    pub return_immediately: bool,
    pub ack: Vec<String>,
    /// (jti, err, description) reported by the receiver.
    pub set_errs: Vec<(String, String, Option<String>)>,
}

fn bad<T>(m: &str) -> Result<T, ConfigError> {
    Err(ConfigError(m.to_string()))
}

impl PollRequest {
    /// Parse the request body (RFC 8936 §2.4).
    pub fn parse(body: &Map<String, Value>) -> Result<PollRequest, ConfigError> {
        let max_events = match body.get("maxEvents") {
            None => DEFAULT_MAX_EVENTS,
            Some(v) => match v.as_u64() {
                Some(n) => n.min(u64::from(MAX_EVENTS)) as u32,
                None => return bad("maxEvents must be a non-negative integer"),
            },
        };
        let return_immediately = match body.get("returnImmediately") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return bad("returnImmediately must be a boolean"),
        };
        let ack = match body.get("ack") {
            None => Vec::new(),
            Some(Value::Array(items)) if items.len() <= MAX_ACKS => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map_or_else(|| bad("ack must be an array of jti strings"), Ok)?,
            Some(_) => return bad("ack must be an array of at most 1000 jti strings"),
        };
        let set_errs = match body.get("setErrs") {
            None => Vec::new(),
            Some(Value::Object(m)) if m.len() <= MAX_ACKS => {
                let mut out = Vec::new();
                for (jti, e) in m {
                    let Some(err) = e.get("err").and_then(Value::as_str) else {
                        return bad("each setErrs entry needs an err string");
                    };
                    let description = e
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    out.push((jti.clone(), err.to_string(), description));
                }
                out
            }
            Some(_) => return bad("setErrs must be an object of at most 1000 entries"),
        };
        Ok(PollRequest {
            max_events,
            return_immediately,
            ack,
            set_errs,
        })
    }
}

/// Answer a poll for one of the caller's poll streams: forget acknowledged and reported SETs,
/// then return queued ones (none while the stream is paused or disabled). Without
/// `returnImmediately`, waits up to `max_wait` for a first SET.
pub async fn poll<S: SsfStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    caller: &AdminCaller,
    stream_id: &str,
    req: &PollRequest,
    max_wait: Duration,
) -> Result<Value, SsfError> {
    let s = get(p, t, caller, stream_id).await?;
    if s.delivery != Delivery::Poll {
        return Err(SsfError::Config(ConfigError(
            "the stream does not use poll delivery".into(),
        )));
    }
    let mut done: Vec<String> = req.ack.clone();
    // What a receiver reports is its own text: escaped and cut before it reaches a log line,
    // and only the first few per poll are logged.
    use crate::untrusted::for_log;
    for (i, (jti, err, description)) in req.set_errs.iter().enumerate() {
        if i < 10 {
            tracing::warn!(stream = %s.id, jti = %for_log(jti), err = %for_log(err),
                description = %for_log(description.as_deref().unwrap_or("")),
                "receiver reported a SET error");
        }
        done.push(jti.clone());
    }
    if req.set_errs.len() > 10 {
        tracing::warn!(stream = %s.id, count = req.set_errs.len(), "receiver reported SET errors");
    }
    if !done.is_empty() {
        p.store.ssf_ack(t.id(), &s.id, &done).await?;
    }
    let deadline = tokio::time::Instant::now() + max_wait;
    loop {
        let mut sets = Map::new();
        let mut more = false;
        if req.max_events > 0 && s.status == StreamStatus::Enabled {
            let queued = p
                .store
                .ssf_queued(t.id(), &s.id, req.max_events + 1)
                .await?;
            more = queued.len() > req.max_events as usize;
            for q in queued.into_iter().take(req.max_events as usize) {
                sets.insert(q.jti, q.set.into());
            }
        }
        let waiting = !req.return_immediately
            && req.max_events > 0
            && sets.is_empty()
            && tokio::time::Instant::now() + LONG_POLL_STEP < deadline;
        if !waiting {
            return Ok(json!({"sets": sets, "moreAvailable": more}));
        }
        tokio::time::sleep(LONG_POLL_STEP).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<PollRequest, ConfigError> {
        PollRequest::parse(v.as_object().unwrap())
    }

    #[test]
    fn requests() {
        let r = parse(json!({})).unwrap();
        assert_eq!(r.max_events, DEFAULT_MAX_EVENTS);
        assert!(!r.return_immediately);
        let r = parse(
            json!({"maxEvents": 0, "returnImmediately": true, "ack": ["a"],
            "setErrs": {"b": {"err": "jwtAud", "description": "wrong aud"}}}),
        )
        .unwrap();
        assert_eq!(r.max_events, 0);
        assert_eq!(r.ack, vec!["a".to_string()]);
        assert_eq!(r.set_errs[0].1, "jwtAud");
        for bad in [
            json!({"maxEvents": -1}),
            json!({"maxEvents": "3"}),
            json!({"returnImmediately": "yes"}),
            json!({"ack": "a"}),
            json!({"ack": [1]}),
            json!({"setErrs": []}),
            json!({"setErrs": {"a": {}}}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
