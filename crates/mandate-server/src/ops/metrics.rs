//! Prometheus metrics: request counts and latencies by endpoint, tokens issued by grant type,
//! risk decisions by decision and signal.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RiskLabels {
    decision: String,
    signal: String,
}

type HistogramFamily = Family<EndpointLabels, Histogram, fn() -> Histogram>;

/// The server's metric registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    tokens: Family<GrantLabels, Counter>,
    risk: Family<RiskLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mandate");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let tokens = Family::<GrantLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by endpoint, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by endpoint",
            latency.clone(),
        );
        registry.register(
            "tokens_issued",
            "Tokens issued by grant type",
            tokens.clone(),
        );
        let risk = Family::<RiskLabels, Counter>::default();
        registry.register(
            "risk_decisions",
            "Risk decisions by decision and the signal that fired (none: no rule fired)",
            risk.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            tokens,
            risk,
        }
    }

    /// Count a token response.
    pub fn token_issued(&self, grant_type: &str) {
        self.tokens
            .get_or_create(&GrantLabels {
                grant_type: grant_type.to_string(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().expect("metrics lock");
        // The core counts its decisions (`mandate_core::risk::counts`); brought up to date
        // here, under the registry's lock, so two renders never add the same decisions twice.
        for (decision, signal, n) in mandate_core::risk::counts() {
            let c = self.risk.get_or_create(&RiskLabels {
                decision: decision.to_string(),
                signal: signal.to_string(),
            });
            c.inc_by(n.saturating_sub(c.get()));
        }
        let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        out
    }
}

/// Middleware recording each request.
pub async fn track(State(m): State<Arc<Metrics>>, req: Request<Body>, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    m.latency
        .get_or_create(&EndpointLabels {
            endpoint: endpoint.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            endpoint,
            method,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

/// `GET /metrics`.
pub async fn metrics(State(m): State<Arc<Metrics>>) -> Response {
    let mut resp = m.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}
