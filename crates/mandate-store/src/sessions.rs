//! Browser login sessions, stored under the digest of their cookie.

use async_trait::async_trait;
use mandate_core::domain::model::Session;
use mandate_core::store::{SessionStore, StoreResult};

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::rows::{self, json_list};

const SESSION_COLUMNS: &str = "tenant_id, digest, sid, user_id, auth_time, amr, acr, expires_at, \
     created_at, user_agent, ip, risk_acr";

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (tenant_id, digest, sid, user_id, auth_time, amr, acr, \
             expires_at, created_at, user_agent, ip, risk_acr) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&s.tenant_id)
        .bind(&s.digest)
        .bind(&s.sid)
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(json_list(s.amr.iter().map(String::as_str)))
        .bind(&s.acr)
        .bind(s.expires_at)
        .bind(s.created_at)
        .bind(s.user_agent.as_deref())
        .bind(s.ip.as_deref())
        .bind(s.risk_acr.as_deref())
        .execute(&self.pool)
        .await
        .map_err(on_insert("session"))?;
        Ok(())
    }

    async fn session(&self, tenant_id: &str, digest: &[u8]) -> StoreResult<Option<Session>> {
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = $1 AND digest = $2"
        ))
        .bind(tenant_id)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(rows::session)
        .transpose()
    }

    async fn user_sessions(
        &self,
        tenant_id: &str,
        user_id: &str,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<Session>> {
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE tenant_id = $1 AND user_id = $2 AND expires_at > $3 \
             ORDER BY created_at DESC, sid LIMIT $4"
        ))
        .bind(tenant_id)
        .bind(user_id)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(rows::session)
        .collect()
    }

    async fn update_session(&self, s: &Session) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET amr = $1, acr = $2, auth_time = $3, risk_acr = $4 \
             WHERE tenant_id = $5 AND digest = $6",
        )
        .bind(json_list(s.amr.iter().map(String::as_str)))
        .bind(&s.acr)
        .bind(s.auth_time)
        .bind(s.risk_acr.as_deref())
        .bind(&s.tenant_id)
        .bind(&s.digest)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_sessions(
        &self,
        tenant_id: &str,
        user_id: &str,
        keep: Option<&[u8]>,
    ) -> StoreResult<Vec<String>> {
        // An empty digest matches no session: the one to keep, when there is none.
        let keep: &[u8] = keep.unwrap_or(&[]);
        let rows = sqlx::query(
            "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND digest <> $3 \
             RETURNING sid",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(keep)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(|r| rows::col(r, "sid")).collect()
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
