//! OAuth clients.

use async_trait::async_trait;
use mandate_core::domain::model::Client;
use mandate_core::store::{ClientStore, StoreResult};

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::rows::{self, json_list};

#[async_trait]
impl ClientStore for SqlStore {
    async fn create_client(&self, c: &Client) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (tenant_id, client_id, name, secret_digest, auth_method, \
             redirect_uris, post_logout_redirect_uris, grant_types, scopes, jwks, id_token_alg, \
             web_origins, refresh_grace_seconds, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&c.tenant_id)
        .bind(&c.client_id)
        .bind(&c.name)
        .bind(c.secret_digest.as_deref())
        .bind(c.auth_method.as_str())
        .bind(json_list(c.redirect_uris.iter().map(String::as_str)))
        .bind(json_list(
            c.post_logout_redirect_uris.iter().map(String::as_str),
        ))
        .bind(json_list(c.grant_types.iter().map(|g| g.as_str())))
        .bind(c.scopes.to_string())
        .bind(c.jwks.as_ref().map(|j| j.to_string()))
        .bind(c.id_token_alg.map(|a| a.as_str()))
        .bind(json_list(c.web_origins.iter().map(String::as_str)))
        .bind(c.refresh_grace_seconds)
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(on_insert("client"))?;
        Ok(())
    }

    async fn client(&self, tenant_id: &str, client_id: &str) -> StoreResult<Option<Client>> {
        sqlx::query(
            "SELECT tenant_id, client_id, name, secret_digest, auth_method, redirect_uris, \
             post_logout_redirect_uris, grant_types, scopes, jwks, id_token_alg, web_origins, \
             refresh_grace_seconds, created_at FROM clients WHERE tenant_id = $1 AND client_id = $2",
        )
        .bind(tenant_id)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(rows::client)
        .transpose()
    }

    async fn list_clients(&self, tenant_id: &str) -> StoreResult<Vec<Client>> {
        sqlx::query(
            "SELECT tenant_id, client_id, name, secret_digest, auth_method, redirect_uris, \
             post_logout_redirect_uris, grant_types, scopes, jwks, id_token_alg, web_origins, \
             refresh_grace_seconds, created_at FROM clients WHERE tenant_id = $1 ORDER BY created_at, client_id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(rows::client)
        .collect()
    }
}
