//! Signing keys of a tenant and their rotation.

use async_trait::async_trait;
use mandate_core::store::{KeyStore, StoreResult};
use mandate_token::jwk::KeyRecord;
use sqlx::AnyConnection;

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::rows;

/// Insert one key under `tenant_id` (the key's own `tenant_id` field is not trusted).
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    key: &KeyRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO signing_keys \
         (tenant_id, kid, alg, private_pkcs8, created_at, retired_at, publish_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant_id)
    .bind(&key.kid)
    .bind(key.alg.as_str())
    .bind(&key.private_pkcs8)
    .bind(key.created_at)
    .bind(key.retired_at)
    .bind(key.publish_until)
    .execute(conn)
    .await
    .map_err(on_insert("signing key"))?;
    Ok(())
}

#[async_trait]
impl KeyStore for SqlStore {
    /// Every key of the tenant, newest first.
    async fn keys(&self, tenant_id: &str) -> StoreResult<Vec<KeyRecord>> {
        sqlx::query(
            "SELECT tenant_id, kid, alg, private_pkcs8, created_at, retired_at, publish_until \
             FROM signing_keys WHERE tenant_id = $1 ORDER BY created_at DESC, kid",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(rows::key)
        .collect()
    }

    async fn rotate_keys(
        &self,
        tenant_id: &str,
        new: &[KeyRecord],
        now: i64,
        publish_until: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $2, publish_until = $3 \
             WHERE tenant_id = $1 AND retired_at IS NULL",
        )
        .bind(tenant_id)
        .bind(now)
        .bind(publish_until)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        for key in new {
            insert(&mut tx, tenant_id, key).await?;
        }
        tx.commit().await.map_err(backend)
    }
}
