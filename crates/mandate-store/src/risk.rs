//! What the risk signals remember: sign-ins, failures by address, agents' token requests.

use async_trait::async_trait;
use mandate_core::risk::store::{
    AddressFailures, AgentRequestRow, FailureRow, MAX_ROWS, RiskStore, SignInRow,
};
use mandate_core::store::StoreResult;
use sqlx::any::AnyRow;

use crate::connect::SqlStore;
use crate::error::backend;
use crate::rows::{col, flag, json_list, list};

fn sign_in(r: &AnyRow) -> StoreResult<SignInRow> {
    let lat: Option<i64> = col(r, "lat_tenths")?;
    let lon: Option<i64> = col(r, "lon_tenths")?;
    Ok(SignInRow {
        tenant_id: col(r, "tenant_id")?,
        user_id: col(r, "user_id")?,
        at: col(r, "at")?,
        address: col(r, "address")?,
        place: lat.zip(lon),
        device: col(r, "device")?,
        expires_at: col(r, "expires_at")?,
    })
}

fn agent_request(r: &AnyRow) -> StoreResult<AgentRequestRow> {
    Ok(AgentRequestRow {
        tenant_id: col(r, "tenant_id")?,
        agent_id: col(r, "agent_id")?,
        user_id: col(r, "user_id")?,
        mandate_id: col(r, "mandate_id")?,
        resources: list(r, "resources")?,
        allowed: col::<i64>(r, "allowed")? != 0,
        approved: col::<i64>(r, "approved")? != 0,
        at: col(r, "at")?,
        expires_at: col(r, "expires_at")?,
    })
}

#[async_trait]
impl RiskStore for SqlStore {
    async fn add_sign_in(&self, s: &SignInRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO risk_sign_ins (tenant_id, user_id, at, address, lat_tenths, \
             lon_tenths, device, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.tenant_id)
        .bind(&s.user_id)
        .bind(s.at)
        .bind(s.address.as_deref())
        .bind(s.place.map(|p| p.0))
        .bind(s.place.map(|p| p.1))
        .bind(s.device.as_deref())
        .bind(s.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn sign_ins(
        &self,
        tenant_id: &str,
        user_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<SignInRow>> {
        sqlx::query(
            "SELECT tenant_id, user_id, at, address, lat_tenths, lon_tenths, device, expires_at \
             FROM risk_sign_ins WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY at DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(limit.clamp(0, MAX_ROWS))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(sign_in)
        .collect()
    }

    async fn add_failure(&self, f: &FailureRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO risk_failures (tenant_id, address, account, user_id, at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&f.tenant_id)
        .bind(&f.address)
        .bind(&f.account)
        .bind(f.user_id.as_deref())
        .bind(f.at)
        .bind(f.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn failures_from(
        &self,
        tenant_id: &str,
        address: &str,
        since: i64,
    ) -> StoreResult<AddressFailures> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COUNT(DISTINCT account) AS BIGINT) AS names \
             FROM (SELECT account FROM risk_failures WHERE tenant_id = $1 AND address = $2 \
             AND at > $3 ORDER BY at DESC LIMIT $4) recent",
        )
        .bind(tenant_id)
        .bind(address)
        .bind(since)
        .bind(MAX_ROWS)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(AddressFailures {
            failures: col(&row, "n")?,
            accounts: col(&row, "names")?,
        })
    }

    async fn failures_of(&self, tenant_id: &str, account: &str, since: i64) -> StoreResult<i64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT 1 FROM risk_failures \
             WHERE tenant_id = $1 AND account = $2 AND at > $3 LIMIT $4) AS recent",
        )
        .bind(tenant_id)
        .bind(account)
        .bind(since)
        .bind(MAX_ROWS)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(n)
    }

    async fn add_agent_request(&self, r: &AgentRequestRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO risk_agent_requests (tenant_id, agent_id, user_id, mandate_id, \
             resources, allowed, approved, at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&r.tenant_id)
        .bind(&r.agent_id)
        .bind(&r.user_id)
        .bind(&r.mandate_id)
        .bind(json_list(r.resources.iter().map(String::as_str)))
        .bind(flag(r.allowed))
        .bind(flag(r.approved))
        .bind(r.at)
        .bind(r.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn approve_agent_requests(
        &self,
        tenant_id: &str,
        agent_id: &str,
        user_id: &str,
        until: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE risk_agent_requests SET approved = 1 WHERE tenant_id = $1 AND agent_id = $2 \
             AND user_id = $3 AND at <= $4 AND approved = 0",
        )
        .bind(tenant_id)
        .bind(agent_id)
        .bind(user_id)
        .bind(until)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn agent_requests(
        &self,
        tenant_id: &str,
        agent_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<AgentRequestRow>> {
        sqlx::query(
            "SELECT tenant_id, agent_id, user_id, mandate_id, resources, allowed, approved, at, \
             expires_at \
             FROM risk_agent_requests WHERE tenant_id = $1 AND agent_id = $2 AND user_id = $3 \
             ORDER BY at DESC LIMIT $4",
        )
        .bind(tenant_id)
        .bind(agent_id)
        .bind(user_id)
        .bind(MAX_ROWS)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(agent_request)
        .collect()
    }

    async fn suspend_agent_with_reason(
        &self,
        tenant_id: &str,
        agent_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = sqlx::query(
            "UPDATE agents SET status = 'suspended', status_reason = $3, updated_at = $4 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'active'",
        )
        .bind(tenant_id)
        .bind(agent_id)
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() > 0 {
            // As for any suspension: what it holds as a client of its own ends too.
            sqlx::query(
                "UPDATE grants SET revoked_at = $3 \
                 WHERE tenant_id = $1 AND client_id = $2 AND revoked_at IS NULL",
            )
            .bind(tenant_id)
            .bind(agent_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}
