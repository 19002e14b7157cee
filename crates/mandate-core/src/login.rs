//! Password login and browser sessions. Failures look and take the same whether or not the
//! account exists; session ids are stored only as digests and are new at every login.

use serde_json::json;

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::error::StoreError;
use crate::model::{Session, User};
use crate::provider::{Provider, TenantCtx};
use crate::secret::{keyed_digest, password, random_token};
use crate::settings::ACR_PASSWORD;

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong password: never say which.
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Check a username and password.
pub async fn password_login(
    p: &Provider,
    t: &TenantCtx,
    username: &str,
    pw: &str,
    meta: &RequestMeta,
) -> Result<User, LoginError> {
    let user = if username.is_empty() || username.len() > 256 || pw.len() > 1024 {
        None
    } else {
        p.store.user_by_username(t.id(), username).await?
    };
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let pw = pw.to_string();
    let hash_for_check = hash
        .clone()
        .unwrap_or_else(|| password::dummy_hash().to_string());
    let ok = tokio::task::spawn_blocking(move || password::verify(&pw, &hash_for_check))
        .await
        .unwrap_or(false);
    match user {
        Some(u) if ok && hash.is_some() => {
            let ev = AuditEvent::new(
                t.id(),
                EventKind::LoginSucceeded,
                Outcome::Success,
                Principal::User { id: u.id.clone() },
                meta,
            )
            .subject(Principal::User { id: u.id.clone() })
            .username(username)
            .detail(json!({"method": "pwd"}));
            p.store.record(&ev).await?;
            Ok(u)
        }
        other => {
            let reason = if other.is_some() {
                "wrong password"
            } else {
                "unknown user"
            };
            let actor = other
                .map(|u| Principal::User { id: u.id })
                .unwrap_or(Principal::Anonymous);
            let ev = AuditEvent::new(
                t.id(),
                EventKind::LoginFailed,
                Outcome::Failure,
                actor,
                meta,
            )
            .reason(reason)
            .detail(json!({"method": "pwd"}));
            // The name typed is kept (erasable) for attempts at an existing or plausible one.
            let ev = if username.is_empty() || username.len() > 256 {
                ev
            } else {
                ev.username(username)
            };
            p.store.record(&ev).await?;
            Err(LoginError::InvalidCredentials)
        }
    }
}

/// Start a new session for a user who just authenticated; returns the cookie value.
pub async fn start_session(
    p: &Provider,
    t: &TenantCtx,
    user: &User,
    amr: &[&str],
    meta: &RequestMeta,
) -> Result<(String, Session), StoreError> {
    let now = p.now();
    let value = random_token(32);
    let session = Session {
        digest: keyed_digest(&t.tenant.secret_key, &value),
        tenant_id: t.id().to_string(),
        sid: random_token(16),
        user_id: user.id.clone(),
        auth_time: now,
        amr: amr.iter().map(|s| s.to_string()).collect(),
        acr: ACR_PASSWORD.to_string(),
        expires_at: now + p.settings.session_ttl,
    };
    p.store.create_session(&session).await?;
    let ev = AuditEvent::new(
        t.id(),
        EventKind::SessionStarted,
        Outcome::Success,
        Principal::User {
            id: user.id.clone(),
        },
        meta,
    )
    .subject(Principal::User {
        id: user.id.clone(),
    })
    .detail(json!({"sid": session.sid, "amr": session.amr}));
    p.store.record(&ev).await?;
    Ok((value, session))
}

/// The live session behind a cookie value, if any.
pub async fn current_session(
    p: &Provider,
    t: &TenantCtx,
    cookie: &str,
) -> Result<Option<Session>, StoreError> {
    if cookie.is_empty() || cookie.len() > 128 {
        return Ok(None);
    }
    let s = p
        .store
        .session(t.id(), &keyed_digest(&t.tenant.secret_key, cookie))
        .await?;
    Ok(s.filter(|s| s.expires_at > p.now()))
}

/// End a session (logout): delete it and revoke the grants made in it.
pub async fn end_session(
    p: &Provider,
    t: &TenantCtx,
    session: &Session,
    meta: &RequestMeta,
) -> Result<(), StoreError> {
    p.store.delete_session(t.id(), &session.digest).await?;
    let revoked = p
        .store
        .revoke_session_grants(t.id(), &session.sid, p.now())
        .await?;
    let ev = AuditEvent::new(
        t.id(),
        EventKind::SessionEnded,
        Outcome::Success,
        Principal::User {
            id: session.user_id.clone(),
        },
        meta,
    )
    .subject(Principal::User {
        id: session.user_id.clone(),
    })
    .reason("logout")
    .detail(json!({"sid": session.sid, "grants_revoked": revoked}));
    p.store.record(&ev).await?;
    Ok(())
}
