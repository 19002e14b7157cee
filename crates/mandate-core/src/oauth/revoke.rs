//! Token revocation (RFC 7009). Revoking a refresh token revokes its whole grant, including the
//! access tokens issued from it; revoking an access token revokes just that token.

use serde_json::json;

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::domain::model::Client;
use crate::error::OAuthError;
use crate::oauth::introspect::{Resolved, resolve};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AuditSink, GrantStore, MandateStore};

/// Revoke `token` on behalf of `caller`. Unknown or already invalid tokens succeed silently
/// (RFC 7009 §2.2); a token issued to another client is refused.
pub async fn revoke<S: MandateStore + GrantStore + AuditSink + ?Sized>(
    p: &Provider<S>,
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

#[cfg(test)]
mod tests {
    //! RFC 7009 over the in-memory store: only the owner revokes, and each revocation is on
    //! the trail (naming the mandate of a delegated token, for SSF).

    use super::*;
    use crate::audit::EventKind;
    use crate::domain::agents::AgentStatus;
    use crate::oauth::introspect::introspect;
    use crate::testing::{Fake, access_token, agent, client, mandate, provider};

    #[tokio::test]
    async fn only_the_owner_revokes_and_the_trail_names_the_mandate() {
        let store = Fake {
            agents: vec![agent("a1", AgentStatus::Active)],
            mandates: std::sync::Mutex::new(vec![mandate("m1", "a1", i64::MAX)]),
            ..Fake::default()
        };
        let (p, t) = provider(store);
        let owner = client("a1", false);
        let at = access_token(&p, &t, &owner, Some("a1"), Some("m1"), None);
        let meta = RequestMeta::default();
        let e = revoke(&p, &t, &client("other", false), &at.token, None, &meta)
            .await
            .unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidRequest);
        assert!(p.store.revoked.lock().unwrap().is_empty());
        assert!(p.store.audit.lock().unwrap().is_empty());

        revoke(&p, &t, &owner, &at.token, Some("access_token"), &meta)
            .await
            .unwrap();
        assert_eq!(
            p.store.revoked.lock().unwrap().get(&at.jti),
            Some(&at.expires_at)
        );
        let records = p.store.recorded(EventKind::TokenRevoked);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].mandate_id.as_deref(), Some("m1"));
        assert_eq!(records[0].detail["jti"], at.jti.as_str());
        let out = introspect(&p, &t, &client("rs", false), &at.token, None)
            .await
            .unwrap();
        assert_eq!(out["active"], false);

        // A token that is not live (now revoked, or never ours): success, nothing recorded.
        revoke(&p, &t, &owner, &at.token, None, &meta)
            .await
            .unwrap();
        revoke(&p, &t, &owner, "garbage", None, &meta)
            .await
            .unwrap();
        assert_eq!(p.store.audit.lock().unwrap().len(), 1);
    }
}
