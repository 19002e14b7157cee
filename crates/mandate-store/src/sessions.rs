//! Browser login sessions, stored under the digest of their cookie.

use async_trait::async_trait;
use mandate_core::domain::model::Session;
use mandate_core::store::{SessionStore, StoreResult};

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::rows::{self, json_list};

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (tenant_id, digest, sid, user_id, auth_time, amr, acr, \
             expires_at, risk_acr) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&s.tenant_id)
        .bind(&s.digest)
        .bind(&s.sid)
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(json_list(s.amr.iter().map(String::as_str)))
        .bind(&s.acr)
        .bind(s.expires_at)
        .bind(s.risk_acr.as_deref())
        .execute(&self.pool)
        .await
        .map_err(on_insert("session"))?;
        Ok(())
    }

    async fn session(&self, tenant_id: &str, digest: &[u8]) -> StoreResult<Option<Session>> {
        sqlx::query(
            "SELECT tenant_id, digest, sid, user_id, auth_time, amr, acr, expires_at, risk_acr \
             FROM sessions WHERE tenant_id = $1 AND digest = $2",
        )
        .bind(tenant_id)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(rows::session)
        .transpose()
    }

    async fn update_session(&self, s: &Session) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET amr = $1, acr = $2, auth_time = $3 \
             WHERE tenant_id = $4 AND digest = $5",
        )
        .bind(json_list(s.amr.iter().map(String::as_str)))
        .bind(&s.acr)
        .bind(s.auth_time)
        .bind(&s.tenant_id)
        .bind(&s.digest)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_session(&self, tenant_id: &str, digest: &[u8]) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND digest = $2")
            .bind(tenant_id)
            .bind(digest)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}
