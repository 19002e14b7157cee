//! Rendering protocol errors: RFC 6749 §5.2 JSON for API endpoints, RFC 6750 for bearer
//! resources. Internal detail is logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_core::oauth::dpop::proof::{DpopConfig, Scheme};
use mandate_core::{ErrorCode, OAuthError, oauth::dpop};
use serde_json::json;

/// An OAuth error as an HTTP response.
pub struct ApiError {
    pub error: OAuthError,
    /// `WWW-Authenticate` value, when due.
    pub challenge: Option<String>,
    /// Overrides the status the error code implies (e.g. 415).
    pub status: Option<StatusCode>,
}

impl From<OAuthError> for ApiError {
    fn from(error: OAuthError) -> Self {
        ApiError {
            error,
            challenge: None,
            status: None,
        }
    }
}

impl From<mandate_core::StoreError> for ApiError {
    fn from(e: mandate_core::StoreError) -> Self {
        ApiError::from(OAuthError::from(e))
    }
}

/// Log an error's hidden detail at the right level.
pub fn log(e: &OAuthError) {
    if e.code == ErrorCode::ServerError {
        tracing::error!(error = ?e, "request failed");
    } else {
        tracing::debug!(error = ?e, "request refused");
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        log(&self.error);
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
        });
        let mut body = json!({"error": self.error.code.as_str()});
        if let Some(d) = &self.error.description {
            // Descriptions may quote what the request sent (a parameter name): bounded.
            let d = mandate_core::untrusted::clip(d, 512);
            body["error_description"] = d.into_owned().into();
        }
        let mut resp = (status, Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, c);
        }
        resp
    }
}

/// RFC 6750 §3 error for a protected resource (userinfo) whose token scheme is unknown.
pub fn bearer_error(e: OAuthError) -> ApiError {
    resource_error(e, None)
}

/// RFC 6750 §3 / RFC 9449 §7.1 error for a protected resource, for a token presented with
/// `scheme`. Proof problems, key-binding problems and anything wrong with a token presented as
/// `DPoP` get a `DPoP` challenge (with the accepted `algs`) and 401 for proof problems; the
/// rest a `Bearer` challenge.
pub fn resource_error(e: OAuthError, scheme: Option<Scheme>) -> ApiError {
    let proof = matches!(
        e.code,
        ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce
    );
    let dpop = proof || scheme == Some(Scheme::DPoP) || dpop::is_key_binding_error(&e);
    let mut params = Vec::new();
    if e.code != ErrorCode::InvalidRequest || e.description.is_some() {
        params.push(format!("error=\"{}\"", e.code.as_str()));
        if let Some(d) = &e.description {
            params.push(format!("error_description=\"{}\"", quoted(d)));
        }
    }
    let challenge = if dpop {
        let algs = DpopConfig::default().alg_names().join(" ");
        params.push(format!("algs=\"{algs}\""));
        format!("DPoP {}", params.join(", "))
    } else if params.is_empty() {
        "Bearer".to_string()
    } else {
        format!("Bearer {}", params.join(", "))
    };
    ApiError {
        error: e,
        challenge: Some(challenge),
        status: proof.then_some(StatusCode::UNAUTHORIZED),
    }
}

/// Text safe inside an auth-param quoted-string: no quotes, backslashes or control characters.
fn quoted(d: &str) -> String {
    d.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if c.is_control() || !c.is_ascii() => ' ',
            c => c,
        })
        .collect()
}

/// 404 for unknown paths, as JSON.
pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response()
}
