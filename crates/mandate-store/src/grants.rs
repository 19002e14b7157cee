//! Grants (token families), their revocation, and everything that hangs off them: codes,
//! refresh tokens and issued access tokens.

use async_trait::async_trait;
use mandate_core::domain::model::{AuthCode, Grant, RefreshToken};
use mandate_core::store::{GrantStore, Spend, StoreResult};

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::{codes, refresh, rows};

#[async_trait]
impl GrantStore for SqlStore {
    async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO grants (tenant_id, id, client_id, user_id, sid, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&g.tenant_id)
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(&g.user_id)
        .bind(g.sid.as_deref())
        .bind(g.created_at)
        .bind(g.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(on_insert("grant"))?;
        Ok(())
    }

    async fn grant(&self, tenant_id: &str, grant_id: &str) -> StoreResult<Option<Grant>> {
        sqlx::query(
            "SELECT tenant_id, id, client_id, user_id, sid, created_at, revoked_at FROM grants \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(grant_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(rows::grant)
        .transpose()
    }

    async fn revoke_grant(&self, tenant_id: &str, grant_id: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE grants SET revoked_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(tenant_id)
        .bind(grant_id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_session_grants(
        &self,
        tenant_id: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE grants SET revoked_at = $3 \
             WHERE tenant_id = $1 AND sid = $2 AND revoked_at IS NULL",
        )
        .bind(tenant_id)
        .bind(sid)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn revoke_client_grants(
        &self,
        tenant_id: &str,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<Vec<String>> {
        let revoked = sqlx::query(
            "UPDATE grants SET revoked_at = $4 \
             WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3 AND revoked_at IS NULL \
             RETURNING id",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(client_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        revoked.iter().map(|r| rows::col(r, "id")).collect()
    }

    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()> {
        codes::insert(&self.pool, code).await
    }

    async fn code(&self, tenant_id: &str, digest: &[u8]) -> StoreResult<Option<(AuthCode, bool)>> {
        codes::get(&self.pool, tenant_id, digest).await
    }

    async fn consume_code(
        &self,
        tenant_id: &str,
        digest: &[u8],
        now: i64,
    ) -> StoreResult<Spend<AuthCode>> {
        codes::consume(&self.pool, tenant_id, digest, now).await
    }

    async fn insert_refresh(&self, token: &RefreshToken) -> StoreResult<()> {
        refresh::insert(&self.pool, token).await
    }

    async fn refresh(&self, tenant_id: &str, digest: &[u8]) -> StoreResult<Option<RefreshToken>> {
        refresh::get(&self.pool, tenant_id, digest).await
    }

    async fn spend_refresh(
        &self,
        tenant_id: &str,
        digest: &[u8],
        now: i64,
    ) -> StoreResult<Spend<RefreshToken>> {
        refresh::spend(&self.pool, tenant_id, digest, now).await
    }

    async fn spend_refresh_in_grace(
        &self,
        tenant_id: &str,
        digest: &[u8],
        spent_since: i64,
        now: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        refresh::spend_in_grace(&self.pool, tenant_id, digest, spent_since, now).await
    }

    async fn record_access_token(
        &self,
        tenant_id: &str,
        jti: &str,
        grant_id: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO access_tokens (tenant_id, jti, grant_id, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, jti) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(jti)
        .bind(grant_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn revoke_access_token(
        &self,
        tenant_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO revoked_access_tokens (tenant_id, jti, expires_at) \
             VALUES ($1, $2, $3) ON CONFLICT (tenant_id, jti) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn access_token_revoked(&self, tenant_id: &str, jti: &str) -> StoreResult<bool> {
        // The token's own branches of the liveness query (no chain, no mandate).
        self.any_dead(tenant_id, Some(jti), &[], None, 0).await
    }
}
