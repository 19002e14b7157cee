//! Tenants, created together with their first signing keys.

use async_trait::async_trait;
use mandate_core::domain::model::{Tenant, TenantSettings};
use mandate_core::store::{StoreResult, TenantStore};
use mandate_token::jwk::KeyRecord;

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::{keys, rows};

macro_rules! select_tenant {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, secret_key, access_token_alg, created_at, settings FROM tenants",
            $rest
        )
    };
}

#[async_trait]
impl TenantStore for SqlStore {
    async fn create_tenant(&self, tenant: &Tenant, keys: &[KeyRecord]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO tenants (id, name, secret_key, access_token_alg, created_at, settings) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(&tenant.secret_key)
        .bind(tenant.access_token_alg.as_str())
        .bind(tenant.created_at)
        .bind(rows::settings_text(&tenant.settings)?)
        .execute(&mut *tx)
        .await
        .map_err(on_insert("tenant"))?;
        for key in keys {
            keys::insert(&mut tx, &tenant.id, key).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>> {
        sqlx::query(select_tenant!(" WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(rows::tenant)
            .transpose()
    }

    async fn set_tenant_settings(
        &self,
        tenant_id: &str,
        settings: &TenantSettings,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE tenants SET settings = $1 WHERE id = $2")
            .bind(rows::settings_text(settings)?)
            .bind(tenant_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        sqlx::query(select_tenant!(" ORDER BY name"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(rows::tenant)
            .collect()
    }
}
