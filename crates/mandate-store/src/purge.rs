//! Deleting what has expired, and the [`Store`] supertrait.

use async_trait::async_trait;
use mandate_core::store::{Store, StoreResult};

use crate::connect::SqlStore;
use crate::error::backend;

/// Codes stay this long after expiring, so that a late replay is still recognised as reuse.
const CODE_REUSE_WINDOW: i64 = 3600;

/// Each statement deletes rows whose `expires_at` is before its only parameter.
const PURGES: [(&str, i64); 5] = [
    (
        "DELETE FROM auth_codes WHERE expires_at < $1",
        CODE_REUSE_WINDOW,
    ),
    ("DELETE FROM sessions WHERE expires_at < $1", 0),
    ("DELETE FROM replay_entries WHERE expires_at < $1", 0),
    ("DELETE FROM revoked_access_tokens WHERE expires_at < $1", 0),
    ("DELETE FROM access_tokens WHERE expires_at < $1", 0),
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
