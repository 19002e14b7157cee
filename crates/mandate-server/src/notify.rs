//! Outbound notifications: CIBA pings to a client's notification endpoint and the CIBA webhook
//! that lets an app tell a person a request is waiting. Sent in the background with a short
//! timeout and a few retries; failures are logged and never affect the request that caused them.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mandate_core::ciba::{self, Ping};
use mandate_core::{Provider, TenantCtx};
use serde_json::Value;

use axum::body::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};

use crate::outbound::HttpClient;

/// Attempts per notification (the first and two retries).
const ATTEMPTS: u32 = 3;
/// Per-attempt timeout.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The shared outbound client (see [`crate::outbound`]): allowed addresses only, no redirects
/// (a notification goes where it was registered).
fn client() -> Option<&'static HttpClient> {
    static CLIENT: OnceLock<Option<HttpClient>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            crate::outbound::client(TIMEOUT)
                .map_err(|e| tracing::error!(error = %e, "cannot set up TLS for notifications"))
                .ok()
        })
        .as_ref()
}

/// One POST; the response status, or why there was none.
async fn send_once(
    http: &HttpClient,
    url: &str,
    bearer: Option<&str>,
    body: &Value,
) -> Result<u16, String> {
    let mut req = hyper::Request::post(url).header(CONTENT_TYPE, "application/json");
    if let Some(b) = bearer {
        req = req.header(AUTHORIZATION, format!("Bearer {b}"));
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(TIMEOUT, http.request(req)).await {
        Ok(Ok(r)) => Ok(r.status().as_u16()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// POST `body` as JSON to `url` (with a bearer token if given); `true` once a 2xx came back.
async fn post(what: &'static str, url: &str, bearer: Option<&str>, body: &Value) -> bool {
    let Some(http) = client() else {
        return false;
    };
    for attempt in 1..=ATTEMPTS {
        match send_once(http, url, bearer, body).await {
            Ok(status) if (200..300).contains(&status) => return true,
            // A client error will not get better by retrying.
            Ok(status) if (400..500).contains(&status) => {
                tracing::warn!(what, url, status, "notification refused");
                return false;
            }
            Ok(status) => tracing::warn!(what, url, attempt, status, "notification failed"),
            Err(error) => {
                let error = mandate_core::untrusted::for_log(&error);
                tracing::warn!(what, url, attempt, %error, "notification failed")
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
    }
    false
}

/// Tell the configured webhook about a new backchannel request (in the background).
pub fn ciba_webhook(url: String, notice: Value) {
    tokio::spawn(async move {
        post("ciba webhook", &url, None, &notice).await;
    });
}

/// Send a CIBA ping (CIBA §10.2) in the background, then forget the `auth_req_id` kept for it.
pub fn ciba_ping(provider: Arc<Provider>, tenant: Arc<TenantCtx>, ping: Ping) {
    tokio::spawn(async move {
        post("ciba ping", &ping.endpoint, Some(&ping.token), &ping.body()).await;
        if let Err(e) = ciba::ping_done(&provider, &tenant, &ping.request_id).await {
            tracing::warn!(error = ?e, "cannot clear a sent ping");
        }
    });
}
