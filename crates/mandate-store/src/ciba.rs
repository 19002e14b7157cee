//! CIBA client registrations and backchannel authentication requests.

use async_trait::async_trait;
use mandate_core::StoreError;
use mandate_core::ciba::{CibaApproval, CibaRegistration, CibaRequest, CibaStatus, DeliveryMode};
use mandate_core::store::{CibaStore, StoreResult};
use serde_json::Value;
use sqlx::any::AnyRow;

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::rows::{col, corrupt, json_list, list, scope};

const REQUEST_COLUMNS: &str = "tenant_id, id, digest, client_id, user_id, scope, \
     authorization_details, resources, binding_message, notification_token, ping_auth_req_id, \
     status, poll_interval, last_polled_at, expires_at, created_at, decided_at, mandate_id, \
     auth_time, acr, amr";

fn registration(row: &AnyRow) -> Result<CibaRegistration, StoreError> {
    let mode: String = col(row, "delivery_mode")?;
    Ok(CibaRegistration {
        tenant_id: col(row, "tenant_id")?,
        client_id: col(row, "client_id")?,
        mode: DeliveryMode::parse(&mode).ok_or_else(|| corrupt("delivery_mode", &mode))?,
        notification_endpoint: col(row, "notification_endpoint")?,
    })
}

fn request(row: &AnyRow) -> Result<CibaRequest, StoreError> {
    let status: String = col(row, "status")?;
    let details: String = col(row, "authorization_details")?;
    let details: Value = serde_json::from_str(&details)
        .map_err(|e| StoreError::Corrupt(format!("authorization_details: {e}")))?;
    let approval = match col::<Option<String>>(row, "mandate_id")? {
        None => None,
        Some(mandate_id) => Some(CibaApproval {
            mandate_id,
            auth_time: col::<Option<i64>>(row, "auth_time")?.unwrap_or_default(),
            acr: col::<Option<String>>(row, "acr")?.unwrap_or_default(),
            amr: match col::<Option<String>>(row, "amr")? {
                None => Vec::new(),
                Some(_) => list(row, "amr")?,
            },
        }),
    };
    Ok(CibaRequest {
        tenant_id: col(row, "tenant_id")?,
        id: col(row, "id")?,
        digest: col(row, "digest")?,
        client_id: col(row, "client_id")?,
        user_id: col(row, "user_id")?,
        scope: scope(row, "scope")?,
        authorization_details: details.as_array().cloned().unwrap_or_default(),
        resources: list(row, "resources")?,
        binding_message: col(row, "binding_message")?,
        notification_token: col(row, "notification_token")?,
        ping_auth_req_id: col(row, "ping_auth_req_id")?,
        status: CibaStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        interval: col(row, "poll_interval")?,
        last_polled_at: col(row, "last_polled_at")?,
        expires_at: col(row, "expires_at")?,
        created_at: col(row, "created_at")?,
        decided_at: col(row, "decided_at")?,
        approval,
    })
}

#[async_trait]
impl CibaStore for SqlStore {
    async fn put_ciba_registration(&self, r: &CibaRegistration) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ciba_clients (tenant_id, client_id, delivery_mode, notification_endpoint) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, client_id) DO UPDATE SET \
             delivery_mode = excluded.delivery_mode, \
             notification_endpoint = excluded.notification_endpoint",
        )
        .bind(&r.tenant_id)
        .bind(&r.client_id)
        .bind(r.mode.as_str())
        .bind(r.notification_endpoint.as_deref())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn ciba_registration(
        &self,
        tenant_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<CibaRegistration>> {
        sqlx::query(
            "SELECT tenant_id, client_id, delivery_mode, notification_endpoint FROM ciba_clients \
             WHERE tenant_id = $1 AND client_id = $2",
        )
        .bind(tenant_id)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(registration)
        .transpose()
    }

    async fn insert_ciba_request(&self, r: &CibaRequest) -> StoreResult<()> {
        let a = r.approval.as_ref();
        sqlx::query(&format!(
            "INSERT INTO ciba_requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        ))
        .bind(&r.tenant_id)
        .bind(&r.id)
        .bind(&r.digest)
        .bind(&r.client_id)
        .bind(&r.user_id)
        .bind(r.scope.to_string())
        .bind(Value::from(r.authorization_details.clone()).to_string())
        .bind(json_list(r.resources.iter().map(String::as_str)))
        .bind(r.binding_message.as_deref())
        .bind(r.notification_token.as_deref())
        .bind(r.ping_auth_req_id.as_deref())
        .bind(r.status.as_str())
        .bind(r.interval)
        .bind(r.last_polled_at)
        .bind(r.expires_at)
        .bind(r.created_at)
        .bind(r.decided_at)
        .bind(a.map(|a| a.mandate_id.as_str()))
        .bind(a.map(|a| a.auth_time))
        .bind(a.map(|a| a.acr.as_str()))
        .bind(a.map(|a| json_list(a.amr.iter().map(String::as_str))))
        .execute(&self.pool)
        .await
        .map_err(on_insert("CIBA request"))?;
        Ok(())
    }

    async fn ciba_request(&self, tenant_id: &str, id: &str) -> StoreResult<Option<CibaRequest>> {
        sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM ciba_requests WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(request)
        .transpose()
    }

    async fn ciba_request_by_digest(
        &self,
        tenant_id: &str,
        digest: &[u8],
    ) -> StoreResult<Option<CibaRequest>> {
        sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM ciba_requests WHERE tenant_id = $1 AND digest = $2"
        ))
        .bind(tenant_id)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(request)
        .transpose()
    }

    async fn pending_ciba_requests(
        &self,
        tenant_id: &str,
        user_id: &str,
        now: i64,
    ) -> StoreResult<Vec<CibaRequest>> {
        sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM ciba_requests WHERE tenant_id = $1 AND user_id = $2 \
             AND status = 'pending' AND expires_at > $3 ORDER BY created_at DESC, id"
        ))
        .bind(tenant_id)
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(request)
        .collect()
    }

    async fn decide_ciba_request(
        &self,
        tenant_id: &str,
        id: &str,
        approval: Option<&CibaApproval>,
        now: i64,
    ) -> StoreResult<bool> {
        let status = match approval {
            Some(_) => CibaStatus::Approved,
            None => CibaStatus::Denied,
        };
        let done = sqlx::query(
            "UPDATE ciba_requests SET status = $3, decided_at = $4, mandate_id = $5, \
             auth_time = $6, acr = $7, amr = $8 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND expires_at > $4",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(status.as_str())
        .bind(now)
        .bind(approval.map(|a| a.mandate_id.as_str()))
        .bind(approval.map(|a| a.auth_time))
        .bind(approval.map(|a| a.acr.as_str()))
        .bind(approval.map(|a| json_list(a.amr.iter().map(String::as_str))))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn poll_ciba_request(
        &self,
        tenant_id: &str,
        id: &str,
        now: i64,
        step: i64,
    ) -> StoreResult<bool> {
        let in_time = sqlx::query(
            "UPDATE ciba_requests SET last_polled_at = $3 WHERE tenant_id = $1 AND id = $2 \
             AND (last_polled_at IS NULL OR last_polled_at + poll_interval <= $3)",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if in_time.rows_affected() > 0 {
            return Ok(true);
        }
        sqlx::query(
            "UPDATE ciba_requests SET last_polled_at = $3, poll_interval = poll_interval + $4 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .bind(step)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(false)
    }

    async fn consume_ciba_request(&self, tenant_id: &str, id: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE ciba_requests SET status = 'consumed', last_polled_at = $3, \
             ping_auth_req_id = NULL WHERE tenant_id = $1 AND id = $2 AND status = 'approved'",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn clear_ciba_ping(&self, tenant_id: &str, id: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE ciba_requests SET ping_auth_req_id = NULL WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }
}
