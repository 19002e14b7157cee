//! The UserInfo endpoint (OIDC Core §5.3): claims of the token's user, by granted scope.

use serde_json::{Map, Value, json};

use crate::error::{ErrorCode, OAuthError};
use crate::oauth::dpop::{Presented, resource_claims};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AuditSink, MandateStore, ReplayStore, UserStore};

/// Claims for a bearer access token; errors are RFC 6750 codes.
pub async fn userinfo<S: MandateStore + ReplayStore + AuditSink + UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    token: &Presented<'_>,
) -> Result<Value, OAuthError> {
    let claims = resource_claims(p, t, token).await?.ok_or_else(|| {
        OAuthError::invalid_token("the access token is invalid, expired or revoked")
    })?;
    if !claims.is_for(&t.issuer) {
        return Err(OAuthError::invalid_token(
            "the access token is not meant for this endpoint",
        ));
    }
    let scopes: Vec<&str> = claims.scopes().collect();
    if !scopes.contains(&"openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the openid scope is required",
        ));
    }
    let user = p
        .store
        .user(t.id(), &claims.sub)
        .await?
        .ok_or_else(|| OAuthError::invalid_token("the token's user no longer exists"))?;
    let mut out = Map::new();
    out.insert("sub".into(), user.id.clone().into());
    if scopes.contains(&"profile") {
        out.insert("preferred_username".into(), user.username.clone().into());
        if let Some(n) = &user.name {
            out.insert("name".into(), n.clone().into());
        }
        out.insert("updated_at".into(), json!(user.updated_at));
    }
    if scopes.contains(&"email")
        && let Some(e) = &user.email
    {
        out.insert("email".into(), e.clone().into());
        out.insert("email_verified".into(), user.email_verified.into());
    }
    Ok(Value::Object(out))
}
