//! Reading what an RFC 8693 exchange presents: token types, the subject token's claims and
//! the requested token type; shared by delegation and impersonation.

use std::sync::Arc;

use mandate_token::claims::AccessTokenClaims;

use crate::error::OAuthError;
use crate::oauth::grants::TokenRequest;
use crate::oauth::introspect::access_token_claims;
use crate::provider::{Provider, TenantCtx};
use crate::store::MandateStore;

/// RFC 8693 §3 token type of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The claims of a valid access token of this issuer, or `invalid_request` (RFC 8693 §2.2.2).
pub(super) async fn token_claims<S: MandateStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    token: Option<&str>,
    token_type: Option<&str>,
    name: &str,
) -> Result<Arc<AccessTokenClaims>, OAuthError> {
    let token = token.ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))?;
    if token_type != Some(ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request(format!(
            "{name}_type must be {ACCESS_TOKEN_TYPE}"
        )));
    }
    access_token_claims(p, t, token).await?.ok_or_else(|| {
        OAuthError::invalid_request(format!(
            "the {name} is invalid, expired, revoked or not from this issuer"
        ))
    })
}

/// Only access tokens are issued (RFC 8693 `requested_token_type`).
pub(super) fn requested_type_supported(req: &TokenRequest) -> Result<(), OAuthError> {
    match req.param("requested_token_type") {
        Some(rt) if rt != ACCESS_TOKEN_TYPE => Err(OAuthError::invalid_request(format!(
            "requested_token_type {rt} is not supported"
        ))),
        _ => Ok(()),
    }
}
