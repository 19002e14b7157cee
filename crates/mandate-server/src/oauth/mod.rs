//! OAuth 2.1 endpoints: authorize, token, introspection, revocation, CIBA backchannel
//! authentication.

pub mod authorize;
pub mod bc_authorize;
pub mod introspect;
pub mod revoke;
pub mod token;

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use base64::Engine;
use std::sync::Arc;

use mandate_core::audit::RequestMeta;
use mandate_core::client_auth::{ClientAuthError, ClientCredentials};
use mandate_core::model::Client;
use mandate_core::{OAuthError, TenantCtx, client_auth};

use crate::error::ApiError;
use crate::params::{self, Params};
use crate::state::AppState;

/// Parse a form body, refusing other content types (415) and repeated parameters.
pub fn form(headers: &HeaderMap, body: &Bytes) -> Result<Params, ApiError> {
    if !params::is_form(headers) {
        return Err(ApiError::unsupported_media_type());
    }
    Ok(Params::parse(body)?)
}

/// Parse the form of a client-authenticated endpoint and authenticate the caller; `path` is
/// the endpoint's path under the issuer (an acceptable client assertion audience).
pub async fn authenticated_form(
    s: &AppState,
    t: &TenantCtx,
    meta: &RequestMeta,
    headers: &HeaderMap,
    body: &Bytes,
    path: &str,
) -> Result<(Params, Arc<Client>), ApiError> {
    let p = form(headers, body)?;
    let creds = credentials(headers, &p)?;
    let client = client_auth::authenticate(&s.provider, t, &creds, &t.url(path), meta)
        .await
        .map_err(auth_error)?;
    Ok((p, client))
}

/// Client credentials from the `Authorization: Basic` header and the form.
pub fn credentials(headers: &HeaderMap, p: &Params) -> Result<ClientCredentials, ApiError> {
    let basic = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) if v.len() > 6 && v[..6].eq_ignore_ascii_case("basic ") => {
            Some(decode_basic(&v[6..]).ok_or_else(|| ApiError {
                error: OAuthError::invalid_client("malformed Basic credentials"),
                challenge: Some("Basic".into()),
                status: None,
            })?)
        }
        _ => None,
    };
    Ok(ClientCredentials {
        basic,
        client_id: p.opt("client_id"),
        client_secret: p.opt("client_secret"),
        assertion_type: p.opt("client_assertion_type"),
        assertion: p.opt("client_assertion"),
    })
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
fn decode_basic(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let id = dec(id)?;
    let secret = dec(secret)?;
    (!id.is_empty()).then_some((id, secret))
}

/// Render a client authentication failure with `WWW-Authenticate` when Basic was used.
pub fn auth_error(e: ClientAuthError) -> ApiError {
    ApiError {
        challenge: (e.used_basic && e.error.code == mandate_core::ErrorCode::InvalidClient)
            .then(|| "Basic realm=\"mandate\"".to_string()),
        error: e.error,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_is_form_decoded() {
        use base64::Engine;
        let enc = base64::engine::general_purpose::STANDARD.encode("my%20id:s%3Acret+x");
        assert_eq!(
            super::decode_basic(&enc),
            Some(("my id".into(), "s:cret+x".into()))
        );
    }
}
