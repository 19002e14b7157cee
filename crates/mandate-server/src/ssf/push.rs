//! The transmitter's background task on each node: every tick (and at once when this process
//! records a revocation) it turns new audit records of tenants with streams into queued SETs
//! (`mandate_core::ssf::tail`), then POSTs due SETs of push streams to their receivers
//! (RFC 8935). A SET leaves the queue once a receiver accepted it (2xx, 202 per the RFC) or
//! refused it for good (400, RFC 8935 §2.3); anything else is retried with exponential backoff
//! for about three days, then dropped.
//! Delivery runs off the request path, so a slow or dead receiver never holds a revocation up.
//! Nodes share the queue: the cursor and per-SET leases in the database keep them from queuing
//! twice or sending at once.
//!
//! Outbound requests go only to `https` on public addresses (`http` and loopback only behind
//! the development switch), checked on the configured URL and again when connecting; redirects
//! are not followed, an error answer is read up to 4 KiB, and each attempt is bounded in time.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use mandate_core::Provider;
use mandate_core::ssf::store::ClaimedSet;
use mandate_core::ssf::tail::tail_tenant;
use tokio::sync::Semaphore;

/// How often the audit log is looked at and due SETs are sent.
pub const TICK: Duration = Duration::from_millis(100);
/// Most POSTs in flight at once per node.
const MAX_IN_FLIGHT: usize = 32;
/// How long one attempt may take before another node may try the SET again (seconds).
const LEASE_SECS: i64 = 30;
/// Timeout of one POST.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between attempts (seconds).
const MAX_BACKOFF_SECS: i64 = 600;

/// Attempts after which an undeliverable SET is dropped: about three days of trying (the
/// first ten attempts take 17 minutes, then one every ten minutes). A receiver that has been
/// down that long must resynchronise anyway, and a dead one must not be retried forever.
const MAX_ATTEMPTS: i64 = 440;

/// Seconds to wait after the `attempts`-th failed attempt: 1, 2, 4 … up to ten minutes.
pub fn backoff(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 20) - 1;
    (1i64 << exp).min(MAX_BACKOFF_SECS)
}

/// Whether a SET whose `attempts`-th attempt just failed is tried again.
fn retried(attempts: i64) -> bool {
    attempts < MAX_ATTEMPTS
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// The receiver refused this SET (RFC 8935 §2.3): sending it again will not help.
    Refused,
    Retry,
}

use crate::outbound::HttpClient;

fn http_client() -> Result<HttpClient, rustls::Error> {
    crate::outbound::client(REQUEST_TIMEOUT)
}

/// Start the transmitter task on the current runtime.
pub fn spawn(provider: Arc<Provider>) -> tokio::task::JoinHandle<()> {
    let http = http_client();
    tokio::spawn(async move {
        let http = match http {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "SSF push delivery disabled: no HTTP client");
                return;
            }
        };
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let wake = provider.store.signals();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = wake.notified() => {}
            }
            tail_all(&provider).await;
            deliver_due(&provider, &http, &slots).await;
        }
    })
}

/// Queue the SETs of every tenant whose audit log moved past its cursor.
async fn tail_all(p: &Provider) {
    let backlog = match p.store.ssf_backlog().await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "SSF: reading the backlog failed");
            return;
        }
    };
    for b in &backlog {
        match tail_tenant(p, b).await {
            Ok(n) if n > 0 => tracing::debug!(tenant = %b.tenant_name, sets = n, "SSF: queued"),
            Ok(_) => {}
            Err(e) => tracing::warn!(tenant = %b.tenant_name, error = %e, "SSF: queuing failed"),
        }
    }
}

/// Claim as many due push SETs as there are free slots and send each in its own task.
async fn deliver_due(p: &Arc<Provider>, http: &HttpClient, slots: &Arc<Semaphore>) {
    let free = slots.available_permits();
    if free == 0 {
        return;
    }
    let now = p.now();
    let claimed = match p.store.ssf_claim(now, now + LEASE_SECS, free as u32).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "SSF: claiming due SETs failed");
            return;
        }
    };
    for c in claimed {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (p, http) = (p.clone(), http.clone());
        tokio::spawn(async move {
            let outcome = send(&http, &c).await;
            let result = match outcome {
                Outcome::Delivered | Outcome::Refused => p.store.ssf_delivered(c.id).await,
                Outcome::Retry if retried(c.attempts) => {
                    p.store.ssf_retry(c.id, p.now() + backoff(c.attempts)).await
                }
                Outcome::Retry => {
                    tracing::warn!(stream = %c.stream_id, jti = %c.jti, attempts = c.attempts,
                        "SSF: giving up on a SET its receiver has not taken for three days");
                    p.store.ssf_delivered(c.id).await
                }
            };
            if let Err(e) = result {
                tracing::warn!(jti = %c.jti, error = %e, "SSF: recording a delivery failed");
            }
            drop(permit);
        });
    }
}

/// POST one SET (RFC 8935 §2).
async fn send(http: &HttpClient, c: &ClaimedSet) -> Outcome {
    let mut req = Request::post(c.endpoint_url.as_str())
        .header(header::CONTENT_TYPE, "application/secevent+jwt")
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("mandate-ssf/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(a) = &c.authorization_header {
        req = req.header(header::AUTHORIZATION, a.as_str());
    }
    let req = match req.body(Full::new(Bytes::from(c.set.clone()))) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(stream = %c.stream_id, error = %e, "SSF: cannot build the push request");
            return Outcome::Refused;
        }
    };
    let resp = match tokio::time::timeout(REQUEST_TIMEOUT, http.request(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let error = mandate_core::untrusted::for_log(&e.to_string()).to_string();
            tracing::info!(stream = %c.stream_id, jti = %c.jti, %error, attempts = c.attempts,
                "SSF: push failed, will retry");
            return Outcome::Retry;
        }
        Err(_) => {
            tracing::info!(stream = %c.stream_id, jti = %c.jti, attempts = c.attempts,
                "SSF: push timed out, will retry");
            return Outcome::Retry;
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    if status == StatusCode::BAD_REQUEST {
        // RFC 8935 §2.3: {"err", "description"}; read a bounded amount for the log.
        let body = tokio::time::timeout(
            REQUEST_TIMEOUT,
            http_body_util::Limited::new(resp.into_body(), 4096).collect(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
        // The receiver's text: escaped, so it cannot forge log lines or send escape sequences.
        let body = mandate_core::untrusted::for_log(&body);
        tracing::warn!(stream = %c.stream_id, jti = %c.jti, %body, "SSF: the receiver refused a SET");
        return Outcome::Refused;
    }
    tracing::info!(stream = %c.stream_id, jti = %c.jti, %status, attempts = c.attempts,
        "SSF: push failed, will retry");
    Outcome::Retry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), 1);
        assert_eq!(backoff(2), 2);
        assert_eq!(backoff(5), 16);
        assert_eq!(backoff(30), MAX_BACKOFF_SECS);
    }

    #[test]
    fn undeliverable_sets_are_dropped_after_about_three_days() {
        let waited: i64 = (1..MAX_ATTEMPTS).map(backoff).sum();
        assert!(
            (3 * 86_400 - 3_600..3 * 86_400 + 3_600).contains(&waited),
            "{waited}"
        );
        assert!(retried(MAX_ATTEMPTS - 1));
        assert!(!retried(MAX_ATTEMPTS));
    }
}
