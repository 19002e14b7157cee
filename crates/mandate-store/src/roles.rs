//! Roles people hold in a tenant (admin API access).

use async_trait::async_trait;
use mandate_core::store::{RoleGrant, RoleStore, StoreResult};

use crate::connect::SqlStore;
use crate::error::backend;
use crate::rows::col;

#[async_trait]
impl RoleStore for SqlStore {
    async fn grant_role(&self, g: &RoleGrant) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO user_roles (tenant_id, user_id, role, granted_at, granted_by) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, user_id, role) DO NOTHING",
        )
        .bind(&g.tenant_id)
        .bind(&g.user_id)
        .bind(&g.role)
        .bind(g.granted_at)
        .bind(&g.granted_by)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_role(&self, tenant_id: &str, user_id: &str, role: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM user_roles WHERE tenant_id = $1 AND user_id = $2 AND role = $3",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(role)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn user_roles(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT role FROM user_roles WHERE tenant_id = $1 AND user_id = $2 ORDER BY role",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(|r| col(r, "role")).collect()
    }

    async fn role_grants(&self, tenant_id: &str) -> StoreResult<Vec<RoleGrant>> {
        let rows = sqlx::query(
            "SELECT tenant_id, user_id, role, granted_at, granted_by FROM user_roles \
             WHERE tenant_id = $1 ORDER BY granted_at, user_id, role",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(RoleGrant {
                    tenant_id: col(r, "tenant_id")?,
                    user_id: col(r, "user_id")?,
                    role: col(r, "role")?,
                    granted_at: col(r, "granted_at")?,
                    granted_by: col(r, "granted_by")?,
                })
            })
            .collect()
    }
}
