//! Login throttling counters, updated by compare-and-swap so that every node counts every
//! attempt.

use async_trait::async_trait;
use mandate_core::store::{LoginCounter, LoginThrottleStore, StoreResult};

use crate::connect::SqlStore;
use crate::error::backend;
use crate::rows::col;

#[async_trait]
impl LoginThrottleStore for SqlStore {
    async fn login_counter(&self, tenant_id: &str, key: &str) -> StoreResult<Option<LoginCounter>> {
        let row = sqlx::query(
            "SELECT failures, last_failure_at, locked_until, expires_at FROM login_throttle \
             WHERE tenant_id = $1 AND throttle_key = $2",
        )
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| {
            Ok(LoginCounter {
                failures: col(&r, "failures")?,
                last_failure_at: col(&r, "last_failure_at")?,
                locked_until: col(&r, "locked_until")?,
                expires_at: col(&r, "expires_at")?,
            })
        })
        .transpose()
    }

    async fn swap_login_counter(
        &self,
        tenant_id: &str,
        key: &str,
        old: Option<&LoginCounter>,
        new: Option<&LoginCounter>,
    ) -> StoreResult<bool> {
        let done = match (old, new) {
            (None, None) => return Ok(self.login_counter(tenant_id, key).await?.is_none()),
            (None, Some(n)) => sqlx::query(
                "INSERT INTO login_throttle \
                 (tenant_id, throttle_key, failures, last_failure_at, locked_until, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, throttle_key) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(key)
            .bind(n.failures)
            .bind(n.last_failure_at)
            .bind(n.locked_until)
            .bind(n.expires_at)
            .execute(&self.pool)
            .await
            .map_err(backend)?,
            (Some(o), None) => sqlx::query(
                "DELETE FROM login_throttle WHERE tenant_id = $1 AND throttle_key = $2 \
                 AND failures = $3 AND last_failure_at = $4 AND locked_until = $5",
            )
            .bind(tenant_id)
            .bind(key)
            .bind(o.failures)
            .bind(o.last_failure_at)
            .bind(o.locked_until)
            .execute(&self.pool)
            .await
            .map_err(backend)?,
            (Some(o), Some(n)) => sqlx::query(
                "UPDATE login_throttle SET failures = $6, last_failure_at = $7, \
                 locked_until = $8, expires_at = $9 WHERE tenant_id = $1 AND throttle_key = $2 \
                 AND failures = $3 AND last_failure_at = $4 AND locked_until = $5",
            )
            .bind(tenant_id)
            .bind(key)
            .bind(o.failures)
            .bind(o.last_failure_at)
            .bind(o.locked_until)
            .bind(n.failures)
            .bind(n.last_failure_at)
            .bind(n.locked_until)
            .bind(n.expires_at)
            .execute(&self.pool)
            .await
            .map_err(backend)?,
        };
        Ok(done.rows_affected() == 1)
    }
}
