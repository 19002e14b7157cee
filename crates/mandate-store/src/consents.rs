//! Standing consent of a user for a client.

use async_trait::async_trait;
use mandate_core::domain::model::Consent;
use mandate_core::store::{ConsentStore, StoreResult};

use crate::connect::SqlStore;
use crate::error::backend;
use crate::rows;

#[async_trait]
impl ConsentStore for SqlStore {
    async fn consent(
        &self,
        tenant_id: &str,
        user_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<Consent>> {
        sqlx::query(
            "SELECT tenant_id, user_id, client_id, scope, granted_at FROM consents \
             WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(rows::consent)
        .transpose()
    }

    async fn consents(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<Consent>> {
        sqlx::query(
            "SELECT tenant_id, user_id, client_id, scope, granted_at FROM consents \
             WHERE tenant_id = $1 AND user_id = $2 ORDER BY granted_at, client_id",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(rows::consent)
        .collect()
    }

    async fn put_consent(&self, c: &Consent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (tenant_id, user_id, client_id, scope, granted_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, user_id, client_id) \
             DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(&c.tenant_id)
        .bind(&c.user_id)
        .bind(&c.client_id)
        .bind(c.scope.to_string())
        .bind(c.granted_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn delete_consent(
        &self,
        tenant_id: &str,
        user_id: &str,
        client_id: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM consents WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(client_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}
