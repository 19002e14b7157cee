//! Token introspection (RFC 7662) for access and refresh tokens. Revocation is checked on
//! every call; a token of another tenant or client is simply inactive.

use std::sync::Arc;

use mandate_token::claims::{AccessTokenClaims, verify_access_token};
use serde_json::{Value, json};

use crate::crypto::secret::keyed_digest;
use crate::domain::model::Client;
use crate::error::OAuthError;
use crate::provider::{Provider, TenantCtx};

/// What a token turned out to be.
pub enum Resolved {
    /// A valid, unrevoked access token issued by this tenant: its claims.
    Access(Arc<AccessTokenClaims>),
    /// A live refresh token.
    Refresh(Box<crate::domain::model::RefreshToken>),
    Inactive,
}

/// Verify an access token of this tenant: signature, `typ`, expiry and revocation.
pub async fn access_token_claims(
    p: &Provider,
    t: &TenantCtx,
    token: &str,
) -> Result<Option<Arc<AccessTokenClaims>>, OAuthError> {
    let now = p.now();
    let Some(claims) = signed_claims(p, t, token) else {
        return Ok(None);
    };
    // Revoked (itself or its grant), or, delegated, dead with its mandate or any agent of its
    // chain: one query.
    let chain: Vec<String> = claims.chain().into_iter().map(str::to_string).collect();
    if p.store
        .access_token_inactive(t.id(), &claims.jti, &chain, claims.mandate.as_deref(), now)
        .await?
    {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// The first half of [`access_token_claims`], with no storage: the claims of a token signed by
/// this tenant, of type `at+jwt`, from this issuer, unexpired and shaped as issued. A caller
/// that asks about liveness in a query of its own (token exchange) must still do so.
pub fn signed_claims(p: &Provider, t: &TenantCtx, token: &str) -> Option<Arc<AccessTokenClaims>> {
    let now = p.now();
    // A token whose signature already verified here: only its expiry can have changed.
    if token.len() <= 16 * 1024
        && let Some(c) = p.verified(t, token)
    {
        return (c.exp > now).then_some(c);
    }
    let (kid, claims) = verify_access_token(&t.keys, token, &t.issuer, now).ok()?;
    let claims = Arc::new(claims);
    p.remember_verified(t, token, &kid, claims.clone());
    Some(claims)
}

/// Resolve a token of either kind; `hint` (RFC 7662 `token_type_hint`) only orders the tries.
pub async fn resolve(
    p: &Provider,
    t: &TenantCtx,
    token: &str,
    hint: Option<&str>,
) -> Result<Resolved, OAuthError> {
    if token.is_empty() || token.len() > 16 * 1024 {
        return Ok(Resolved::Inactive);
    }
    let looks_jwt = token.matches('.').count() == 2;
    if hint != Some("refresh_token") || looks_jwt {
        if let Some(c) = access_token_claims(p, t, token).await? {
            return Ok(Resolved::Access(c));
        }
        if looks_jwt {
            return Ok(Resolved::Inactive);
        }
    }
    if token.len() > 256 {
        return Ok(Resolved::Inactive);
    }
    let rec = p
        .store
        .refresh(t.id(), &keyed_digest(&t.tenant.secret_key, token))
        .await?;
    let Some(rec) = rec else {
        return Ok(Resolved::Inactive);
    };
    if rec.spent_at.is_some() || rec.expires_at <= p.now() {
        return Ok(Resolved::Inactive);
    }
    let revoked = p
        .store
        .grant(t.id(), &rec.grant_id)
        .await?
        .is_none_or(|g| g.revoked_at.is_some());
    Ok(if revoked {
        Resolved::Inactive
    } else {
        Resolved::Refresh(Box::new(rec))
    })
}

/// The RFC 7662 response for the calling (confidential) client.
pub async fn introspect(
    p: &Provider,
    t: &TenantCtx,
    caller: &Client,
    token: &str,
    hint: Option<&str>,
) -> Result<Value, OAuthError> {
    // RFC 7662 §2.1 wants the caller authorized; a public client proves nothing.
    if caller.is_public() {
        return Err(OAuthError::invalid_client(
            "public clients may not introspect tokens",
        ));
    }
    Ok(match resolve(p, t, token, hint).await? {
        Resolved::Access(claims) => {
            let Ok(Value::Object(mut out)) = serde_json::to_value(&*claims) else {
                return Err(OAuthError::server_error("claims did not serialize"));
            };
            out.insert("active".into(), true.into());
            out.insert("token_type".into(), claims.token_type().into());
            // A delegated token: the acting agent's metadata (the `act` claim stays as is).
            if let Some(agent_id) = claims.chain().first()
                && let Some(agent) = p.store.agent(t.id(), agent_id).await?
            {
                out.insert("agent".into(), agent.metadata());
            }
            Value::Object(out)
        }
        // A refresh token is disclosed only to the client it was issued to.
        Resolved::Refresh(rt) if rt.client_id == caller.client_id => {
            let mut out = json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": rt.client_id,
                "sub": rt.user_id,
                "scope": rt.scope.to_string(),
                "iss": t.issuer,
                "exp": rt.expires_at,
                "iat": rt.created_at,
            });
            // RFC 9449 §6.2: the key a bound refresh token must be used with.
            if let Some(jkt) = &rt.dpop_jkt {
                out["cnf"] = json!({ "jkt": jkt });
            }
            out
        }
        _ => json!({"active": false}),
    })
}
