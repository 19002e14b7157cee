//! Outbound notifications: CIBA pings to a client's notification endpoint and the CIBA webhook
//! that lets an app tell a person a request is waiting. Sent in the background with a short
//! timeout and a few retries; failures are logged and never affect the request that caused them.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mandate_core::ciba::{self, Ping};
use mandate_core::{Provider, TenantCtx};
use serde_json::Value;

/// Attempts per notification (the first and two retries).
const ATTEMPTS: u32 = 3;
/// Per-attempt timeout.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The shared HTTP client (no redirects followed: a notification goes where it was registered).
fn client() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // reqwest is built without its own crypto provider; use the process's aws-lc-rs.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            reqwest::Client::builder()
                .timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| tracing::error!(error = %e, "cannot build the HTTP client"))
                .ok()
        })
        .as_ref()
}

/// POST `body` as JSON to `url` (with a bearer token if given); `true` once a 2xx came back.
async fn post(what: &'static str, url: &str, bearer: Option<&str>, body: &Value) -> bool {
    let Some(http) = client() else {
        return false;
    };
    for attempt in 1..=ATTEMPTS {
        let mut req = http.post(url).json(body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => return true,
            // A client error will not get better by retrying.
            Ok(r) if r.status().is_client_error() => {
                tracing::warn!(
                    what,
                    url,
                    status = r.status().as_u16(),
                    "notification refused"
                );
                return false;
            }
            Ok(r) => {
                tracing::warn!(
                    what,
                    url,
                    attempt,
                    status = r.status().as_u16(),
                    "notification failed"
                )
            }
            Err(e) => tracing::warn!(what, url, attempt, error = %e, "notification failed"),
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
