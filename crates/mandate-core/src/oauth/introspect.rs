//! Token introspection (RFC 7662) for access and refresh tokens. Revocation is checked on
//! every call; a token of another tenant or client is simply inactive.

use std::sync::Arc;

use mandate_token::claims::{AccessTokenClaims, verify_access_token};
use serde_json::{Value, json};

use crate::crypto::secret::keyed_digest;
use crate::domain::model::Client;
use crate::error::OAuthError;
use crate::provider::{Provider, TenantCtx};
use crate::store::{AgentStore, GrantStore, MandateStore};

/// What a token turned out to be.
pub enum Resolved {
    /// A valid, unrevoked access token issued by this tenant: its claims.
    Access(Arc<AccessTokenClaims>),
    /// A live refresh token.
    Refresh(Box<crate::domain::model::RefreshToken>),
    Inactive,
}

/// Verify an access token of this tenant: signature, `typ`, expiry and revocation.
pub async fn access_token_claims<S: MandateStore + ?Sized>(
    p: &Provider<S>,
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
pub fn signed_claims<S: ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    token: &str,
) -> Option<Arc<AccessTokenClaims>> {
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
pub async fn resolve<S: MandateStore + GrantStore + ?Sized>(
    p: &Provider<S>,
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
pub async fn introspect<S: MandateStore + GrantStore + AgentStore + ?Sized>(
    p: &Provider<S>,
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

#[cfg(test)]
mod tests {
    //! Liveness and disclosure over the in-memory store: the rules name only the ports they use.

    use super::*;
    use crate::domain::agents::AgentStatus;
    use crate::testing::{Fake, TENANT, access_token, agent, client, mandate, provider};

    fn store() -> Fake {
        Fake {
            agents: vec![
                agent("a1", AgentStatus::Active),
                agent("a2", AgentStatus::Suspended),
            ],
            mandates: std::sync::Mutex::new(vec![
                mandate("m1", "a1", i64::MAX),
                mandate("m0", "a1", 1),
            ]),
            ..Fake::default()
        }
    }

    #[tokio::test]
    async fn a_live_delegated_token_is_described_with_its_agent() {
        let (p, t) = provider(store());
        let rs = client("rs", false);
        let at = access_token(&p, &t, &client("a1", false), Some("a1"), Some("m1"), None);
        let out = introspect(&p, &t, &rs, &at.token, None).await.unwrap();
        assert_eq!(out["active"], true);
        assert_eq!(out["token_type"], "Bearer");
        assert_eq!(
            (out["sub"].as_str(), out["mandate"].as_str()),
            (Some("u1"), Some("m1"))
        );
        assert_eq!(out["act"]["sub"], "a1");
        assert_eq!(
            (out["agent"]["id"].as_str(), out["agent"]["owner"].as_str()),
            (Some("a1"), Some("u1"))
        );
        // RFC 7662 §2.1: a public client proves nothing, so it may not ask.
        let e = introspect(&p, &t, &client("spa", true), &at.token, None)
            .await
            .unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidClient);
    }

    #[tokio::test]
    async fn revoked_suspended_ended_or_foreign_tokens_are_inactive() {
        let (p, t) = provider(store());
        let rs = client("rs", false);
        let c = client("a1", false);
        let revoked = access_token(&p, &t, &c, None, None, None);
        p.store
            .revoke_access_token(TENANT, &revoked.jti, i64::MAX)
            .await
            .unwrap();
        let dead = [
            revoked.token,
            access_token(&p, &t, &client("a2", false), Some("a2"), Some("m1"), None).token,
            access_token(&p, &t, &c, Some("a1"), Some("m0"), None).token,
            access_token(&p, &t, &c, Some("a1"), Some("gone"), None).token,
            "not.a.token".into(),
            "x".repeat(20_000),
        ];
        for token in dead {
            let out = introspect(&p, &t, &rs, &token, None).await.unwrap();
            assert_eq!(out, json!({"active": false}), "{token:.40}");
        }
        // Another tenant's keys, same issuer name: inactive too.
        let (p2, t2) = provider(store());
        let foreign = access_token(&p2, &t2, &c, None, None, None);
        assert_eq!(
            introspect(&p, &t, &rs, &foreign.token, None).await.unwrap()["active"],
            false
        );
    }

    #[tokio::test]
    async fn a_refresh_token_is_disclosed_only_to_its_client_while_its_grant_lives() {
        use crate::domain::model::Grant;
        let (p, t) = provider(store());
        let web = client("web", false);
        let (value, rt) = crate::oauth::tokens::refresh_token(
            &p,
            &t,
            "g1",
            &web,
            &crate::oauth::tokens::TokenSubject {
                sub: "u1".into(),
                auth_time: None,
                acr: None,
                amr: vec![],
                sid: None,
                cnf_jkt: None,
            },
            &crate::domain::scope::Scope::parse("read").unwrap(),
        );
        p.store.insert_refresh(&rt).await.unwrap();
        p.store
            .create_grant(&Grant {
                id: "g1".into(),
                tenant_id: TENANT.into(),
                client_id: "web".into(),
                user_id: "u1".into(),
                sid: None,
                created_at: 0,
                revoked_at: None,
            })
            .await
            .unwrap();
        let mine = introspect(&p, &t, &web, &value, Some("refresh_token"))
            .await
            .unwrap();
        assert_eq!(
            (mine["active"].as_bool(), mine["token_type"].as_str()),
            (Some(true), Some("refresh_token"))
        );
        let theirs = introspect(&p, &t, &client("rs", false), &value, None)
            .await
            .unwrap();
        assert_eq!(theirs, json!({"active": false}));
        p.store.revoke_grant(TENANT, "g1", 1).await.unwrap();
        let after = introspect(&p, &t, &web, &value, None).await.unwrap();
        assert_eq!(after, json!({"active": false}));
    }
}
