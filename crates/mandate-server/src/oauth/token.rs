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
    let req = TokenRequest {
        grant_type: p.opt("grant_type"),
        code: p.opt("code"),
        redirect_uri: p.opt("redirect_uri"),
        code_verifier: p.opt("code_verifier"),
        refresh_token: p.opt("refresh_token"),
        scope: p.get("scope").map(str::to_string),
        resources: p.all("resource"),
        subject_token: p.opt("subject_token"),
        subject_token_type: p.opt("subject_token_type"),
        actor_token: p.opt("actor_token"),
        actor_token_type: p.opt("actor_token_type"),
        requested_token_type: p.opt("requested_token_type"),
        audiences: p.all("audience"),
        dpop_proof: dpop_header(&headers)?,
        dpop_jkt: None,
        auth_req_id: p.opt("auth_req_id"),
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
    };
    let nonce = mandate_core::oauth::dpop::nonce(&s.provider, &t);
    let resp = match grants::exchange(&s.provider, &t, &client, &req, &meta).await {
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
