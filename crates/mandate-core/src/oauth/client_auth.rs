//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523) and `none`.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
use serde::Deserialize;
use serde_json::Value;

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::{ct_eq, keyed_digest};
use crate::domain::model::{Client, ClientAuthMethod};
use crate::error::{ErrorCode, OAuthError};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AuditSink, ClientStore, ReplayStore};

/// RFC 7523 §2.2 assertion type.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The credentials a request carried, as the HTTP layer found them.
#[derive(Debug, Default, Clone)]
pub struct ClientCredentials {
    /// From `Authorization: Basic`, already form-decoded (RFC 6749 §2.3.1).
    pub basic: Option<(String, String)>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub assertion_type: Option<String>,
    pub assertion: Option<String>,
}

/// An authentication failure: the error, and whether the caller tried HTTP Basic
/// (then the response carries `WWW-Authenticate: Basic`, RFC 6749 §5.2).
#[derive(Debug)]
pub struct ClientAuthError {
    pub error: OAuthError,
    pub used_basic: bool,
}

impl From<OAuthError> for ClientAuthError {
    fn from(error: OAuthError) -> Self {
        ClientAuthError {
            error,
            used_basic: false,
        }
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: Value,
    exp: i64,
    jti: String,
    /// Checked by hand: a fractional or odd `iat` must not make the whole assertion undecodable.
    #[serde(default)]
    iat: Option<Value>,
}

/// Authenticate the calling client. `endpoint_url` is the URL the request was sent to, which a
/// client assertion may name as its audience besides the issuer.
pub async fn authenticate<S: AuditSink + ClientStore + ReplayStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    creds: &ClientCredentials,
    endpoint_url: &str,
    meta: &RequestMeta,
) -> Result<Arc<Client>, ClientAuthError> {
    let used_basic = creds.basic.is_some();
    let result = authenticate_inner(p, t, creds, endpoint_url).await;
    if let Err(e) = &result
        && e.code != ErrorCode::ServerError
    {
        {
            let id = creds
                .basic
                .as_ref()
                .map(|b| b.0.clone())
                .or_else(|| creds.client_id.clone())
                .unwrap_or_default();
            let ev = AuditEvent::new(
                t.id(),
                EventKind::ClientAuthFailed,
                Outcome::Failure,
                Principal::Client { id: id.clone() },
                meta,
            )
            .client(id)
            .reason(e.description.clone().unwrap_or_default());
            if let Err(err) = p.store.record(&ev).await {
                return Err(ClientAuthError {
                    error: err.into(),
                    used_basic,
                });
            }
        }
    }
    result.map_err(|error| ClientAuthError { error, used_basic })
}

async fn authenticate_inner<S: ClientStore + ReplayStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    c: &ClientCredentials,
    endpoint_url: &str,
) -> Result<Arc<Client>, OAuthError> {
    let methods = [
        c.basic.is_some(),
        c.client_secret.is_some(),
        c.assertion.is_some() || c.assertion_type.is_some(),
    ];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(OAuthError::invalid_request(
            "more than one client authentication method used",
        ));
    }
    if let Some((id, secret)) = &c.basic {
        if c.client_id.as_deref().is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Authorization header",
            ));
        }
        return secret_auth(p, t, id, secret).await;
    }
    if let Some(secret) = &c.client_secret {
        let id = c
            .client_id
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
        return secret_auth(p, t, id, secret).await;
    }
    if c.assertion.is_some() || c.assertion_type.is_some() {
        return assertion_auth(p, t, c, endpoint_url).await;
    }
    let id = c
        .client_id
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_client("client authentication required"))?;
    let client = p
        .client(t, id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
    if !client.is_public() {
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    Ok(client)
}

async fn secret_auth<S: ClientStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    id: &str,
    secret: &str,
) -> Result<Arc<Client>, OAuthError> {
    let fail = || OAuthError::invalid_client("client authentication failed");
    let client = p.client(t, id).await?.ok_or_else(fail)?;
    let stored = client.secret_digest.as_deref().ok_or_else(fail)?;
    if !matches!(
        client.auth_method,
        ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
    ) {
        return Err(fail());
    }
    if secret.len() > 512 || !ct_eq(&keyed_digest(&t.tenant.secret_key, secret), stored) {
        return Err(fail());
    }
    Ok(client)
}

async fn assertion_auth<S: ClientStore + ReplayStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    c: &ClientCredentials,
    endpoint_url: &str,
) -> Result<Arc<Client>, OAuthError> {
    let fail = |why: &str| {
        OAuthError::invalid_client("client authentication failed").with_debug(why.to_string())
    };
    if c.assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION) {
        return Err(OAuthError::invalid_request(
            "client_assertion_type must be ".to_string() + JWT_BEARER_ASSERTION,
        ));
    }
    let assertion = c
        .assertion
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("client_assertion missing"))?;
    if assertion.len() > 8192 {
        return Err(OAuthError::invalid_request("client_assertion too large"));
    }
    verify_assertion(
        p,
        t,
        assertion,
        c.client_id.as_deref(),
        endpoint_url,
        "client_assertion",
        fail,
    )
    .await
}

/// Verify an RFC 7523 JWT assertion signed by a client registered for private_key_jwt: `iss` =
/// `sub` = the client (and `expected_sub` when given), `aud` the issuer or `endpoint_url`, a
/// bounded lifetime, and a `jti` not seen before in the `use_` namespace (a client assertion and
/// an RFC 8693 actor token are separate uses). Failures are `fail(why)`.
pub(crate) async fn verify_assertion<S: ClientStore + ReplayStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    assertion: &str,
    expected_sub: Option<&str>,
    endpoint_url: &str,
    use_: &str,
    fail: impl Fn(&str) -> OAuthError,
) -> Result<Arc<Client>, OAuthError> {
    // Find the client by the (still unverified) subject, then verify with its keys.
    let unverified: AssertionClaims = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| fail("undecodable assertion"))?;
    if unverified.iss != unverified.sub {
        return Err(fail("iss != sub"));
    }
    if expected_sub.is_some_and(|id| id != unverified.sub) {
        return Err(fail("client_id != assertion sub"));
    }
    let client = p
        .client(t, &unverified.sub)
        .await?
        .ok_or_else(|| fail("unknown client"))?;
    if client.auth_method != ClientAuthMethod::PrivateKeyJwt {
        return Err(fail("client not registered for private_key_jwt"));
    }
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| fail("bad header"))?;
    let jwks = client
        .jwks
        .as_ref()
        .and_then(|j| j.get("keys"))
        .and_then(Value::as_array)
        .ok_or_else(|| fail("no jwks"))?;
    let candidates: Vec<&Value> = jwks
        .iter()
        .filter(
            |k| match (&header.kid, k.get("kid").and_then(Value::as_str)) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => jwks.len() == 1,
                (None, _) => true,
            },
        )
        .collect();
    let allowed = [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::RS384,
    ];
    if !allowed.contains(&header.alg) {
        return Err(fail("algorithm not allowed"));
    }
    let now = p.now();
    let mut verified: Option<AssertionClaims> = None;
    for k in candidates {
        let Ok(jwk) = serde_json::from_value::<Jwk>(k.clone()) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let mut v = Validation::new(header.alg);
        v.leeway = p.settings.clock_skew as u64;
        v.validate_aud = false;
        // RFC 7523 §3: an assertion is not accepted before its `nbf` (within the clock skew).
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud", "jti"]);
        if let Ok(data) = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &v) {
            verified = Some(data.claims);
            break;
        }
    }
    let claims = verified.ok_or_else(|| fail("signature did not verify"))?;
    let aud_ok = |s: &str| s == t.issuer || s == endpoint_url;
    let aud_valid = match &claims.aud {
        Value::String(s) => aud_ok(s),
        Value::Array(a) => !a.is_empty() && a.iter().all(|v| v.as_str().is_some_and(aud_ok)),
        _ => false,
    };
    if !aud_valid {
        return Err(fail("audience"));
    }
    if claims.exp - now > p.settings.max_assertion_lifetime {
        return Err(fail("assertion lifetime too long"));
    }
    // An assertion issued in the future was not issued yet (beyond the clock skew); a
    // malformed `iat` is refused rather than ignored.
    match claims.iat.as_ref() {
        None => {}
        Some(iat) => match iat.as_f64() {
            Some(iat) if iat <= (now + p.settings.clock_skew) as f64 => {}
            Some(_) => return Err(fail("assertion issued in the future")),
            None => return Err(fail("malformed iat")),
        },
    }
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(fail("bad jti"));
    }
    let key = format!("{use_}:{}:{}", client.client_id, claims.jti);
    if !p
        .store
        .first_use(t.id(), &key, claims.exp + p.settings.clock_skew)
        .await?
    {
        return Err(fail("assertion replayed"));
    }
    Ok(client)
}
