//! Token revocation (RFC 7009). Revoking a refresh token revokes its whole grant, including the
//! access tokens issued from it; revoking an access token revokes just that token.

use serde_json::json;

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::domain::model::Client;
use crate::error::OAuthError;
use crate::oauth::introspect::{Resolved, resolve};
use crate::provider::{Provider, TenantCtx};

/// Revoke `token` on behalf of `caller`. Unknown or already invalid tokens succeed silently
/// (RFC 7009 §2.2); a token issued to another client is refused.
pub async fn revoke(
    p: &Provider,
    t: &TenantCtx,
    caller: &Client,
    token: &str,
    hint: Option<&str>,
    meta: &RequestMeta,
) -> Result<(), OAuthError> {
    let not_yours = || OAuthError::invalid_request("the token was not issued to this client");
    // The mandate a delegated token was issued under, so that the record (and the SSF event
    // made from it) names it.
    let mut mandate = None;
    let (what, subject, detail) = match resolve(p, t, token, hint).await? {
        Resolved::Inactive => return Ok(()),
        Resolved::Access(claims) => {
            if claims.client_id != caller.client_id {
                return Err(not_yours());
            }
            mandate = claims.mandate.clone();
            p.store
                .revoke_access_token(t.id(), &claims.jti, claims.exp)
                .await?;
            (
                "access_token",
                claims.sub.clone(),
                json!({"jti": claims.jti}),
            )
        }
        Resolved::Refresh(rt) => {
            if rt.client_id != caller.client_id {
                return Err(not_yours());
            }
            p.store.revoke_grant(t.id(), &rt.grant_id, p.now()).await?;
            (
                "refresh_token",
                rt.user_id.clone(),
                json!({"grant_id": rt.grant_id}),
            )
        }
    };
    let subject = if subject == caller.client_id {
        Principal::Client { id: subject }
    } else {
        Principal::User { id: subject }
    };
    let mut detail = detail;
    detail["token_type"] = what.into();
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::TokenRevoked,
        Outcome::Success,
        Principal::Client {
            id: caller.client_id.clone(),
        },
        meta,
    )
    .client(caller.client_id.clone())
    .subject(subject)
    .reason("revoked by client (RFC 7009)")
    .detail(detail);
    ev.mandate_id = mandate;
    p.store.record(&ev).await?;
    Ok(())
}
