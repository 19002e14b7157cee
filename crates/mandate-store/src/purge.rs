//! Deleting what has expired, and the [`Store`] supertrait.

use async_trait::async_trait;
use mandate_core::store::{Store, StoreResult};

use crate::connect::SqlStore;
use crate::error::backend;

/// Codes stay this long after expiring, so that a late replay is still recognised as reuse.
const CODE_REUSE_WINDOW: i64 = 3600;

/// Each statement deletes rows that expired (or, for grants, were created) before its only
/// parameter: now minus the second field. Order matters: grants go after what refers to them.
const PURGES: [(&str, i64); 16] = [
    (
        "DELETE FROM auth_codes WHERE expires_at < $1",
        CODE_REUSE_WINDOW,
    ),
    ("DELETE FROM sessions WHERE expires_at < $1", 0),
    ("DELETE FROM replay_entries WHERE expires_at < $1", 0),
    ("DELETE FROM login_throttle WHERE expires_at < $1", 0),
    ("DELETE FROM webauthn_ceremonies WHERE expires_at < $1", 0),
    // A TOTP enrolment shown and never confirmed.
    (
        "DELETE FROM totp_credentials WHERE confirmed_at IS NULL AND pending_until < $1",
        0,
    ),
    ("DELETE FROM account_tokens WHERE expires_at < $1", 0),
    ("DELETE FROM risk_sign_ins WHERE expires_at < $1", 0),
    ("DELETE FROM risk_failures WHERE expires_at < $1", 0),
    ("DELETE FROM risk_agent_requests WHERE expires_at < $1", 0),
    // A CIBA request keeps answering `expired_token` for a while, then goes; an expired one
    // never needs its ping's auth_req_id again.
    (
        "UPDATE ciba_requests SET ping_auth_req_id = NULL \
         WHERE ping_auth_req_id IS NOT NULL AND expires_at < $1",
        0,
    ),
    (
        "DELETE FROM ciba_requests WHERE expires_at < $1",
        CODE_REUSE_WINDOW,
    ),
    ("DELETE FROM revoked_access_tokens WHERE expires_at < $1", 0),
    ("DELETE FROM access_tokens WHERE expires_at < $1", 0),
    ("DELETE FROM refresh_tokens WHERE expires_at < $1", 0),
    // A grant with nothing left that refers to it (its codes past the reuse window, its
    // refresh and access tokens expired) has nothing more to revoke.
    (
        "DELETE FROM grants WHERE created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM auth_codes c WHERE c.tenant_id = grants.tenant_id AND c.grant_id = grants.id) \
         AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.tenant_id = grants.tenant_id AND r.grant_id = grants.id) \
         AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.tenant_id = grants.tenant_id AND a.grant_id = grants.id)",
        CODE_REUSE_WINDOW,
    ),
];

#[async_trait]
impl Store for SqlStore {
    async fn purge_expired(&self, now: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let mut deleted = 0;
        for (sql, grace) in PURGES {
            let done = sqlx::query(sql)
                .bind(now.saturating_sub(grace))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            deleted += done.rows_affected();
        }
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }
}
