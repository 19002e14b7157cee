//! `POST {issuer}/token` (RFC 6749 §3.2).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mandate_core::oauth::grants::{self, TokenRequest};

use super::authenticated_form;
use crate::client_ip::Meta;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tenant::Tenant;

pub async fn token(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (p, client) = authenticated_form(&s, &t, &meta, &headers, &body, "/token").await?;
    let grant_type = p.opt("grant_type");
    // The grant's own parameters, as it names them; the registry says which grant that is.
    let params = grant_type
        .as_deref()
        .and_then(|g| s.grants.find(g))
        .map(|g| {
            g.parameters()
                .iter()
                .filter_map(|name| p.opt(name).map(|v| (*name, v)))
                .collect()
        })
        .unwrap_or_default();
    let req = TokenRequest {
        grant_type,
        scope: p.get("scope").map(str::to_string),
        resources: p.all("resource"),
        audiences: p.all("audience"),
        dpop_proof: dpop_header(&headers)?,
        dpop_jkt: None,
        authorization_details: match p.opt("authorization_details") {
            None => None,
            Some(d) => Some(
                mandate_core::domain::agents::parse_details(&d).ok_or_else(|| {
                    mandate_core::OAuthError::invalid_request(
                        "authorization_details must be a JSON array of objects with a type",
                    )
                })?,
            ),
        },
        params,
    };
    let nonce = mandate_core::oauth::dpop::nonce(&s.provider, &t);
    let resp = match grants::exchange(&s.grants, &s.provider, &t, &client, &req, &meta).await {
        Ok(r) => r,
        Err(e) => {
            let mut err = ApiError::from(e);
            // RFC 6749 §5.2: token errors are 400 (CIBA's access_denied too), bar invalid_client.
            if err.error.code == mandate_core::ErrorCode::AccessDenied {
                err.status = Some(axum::http::StatusCode::BAD_REQUEST);
            }
            let mut r = err.into_response();
            if let Some(n) = nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
                r.headers_mut().insert("dpop-nonce", n);
            }
            return Ok(r);
        }
    };
    s.metrics
        .token_issued(req.grant_type.as_deref().unwrap_or_default());
    let mut r = Json(resp).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Some(n) = nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
        r.headers_mut().insert("dpop-nonce", n);
    }
    Ok(r)
}

/// The `DPoP` header's proof, if any; more than one is `invalid_dpop_proof` (RFC 9449 §4.3).
fn dpop_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if headers.get("dpop").is_none() {
        return Ok(None);
    }
    let values = headers
        .get_all("dpop")
        .iter()
        .map(|v| v.to_str().unwrap_or(""));
    mandate_core::oauth::dpop::proof::single_proof(values)
        .map(|p| Some(p.to_string()))
        .map_err(|e| {
            ApiError::from(mandate_core::OAuthError::new(
                mandate_core::ErrorCode::InvalidDpopProof,
                e.to_string(),
            ))
        })
}
