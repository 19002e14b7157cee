//! One-time values (e.g. client assertion `jti`s) remembered until they expire.

use async_trait::async_trait;
use mandate_core::store::{ReplayStore, StoreResult};

use crate::connect::SqlStore;
use crate::error::backend;

#[async_trait]
impl ReplayStore for SqlStore {
    async fn first_use(&self, tenant_id: &str, key: &str, expires_at: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO replay_entries (tenant_id, entry, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, entry) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}
