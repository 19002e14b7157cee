//! TOTP credentials and recovery codes. Accepting a code's step, confirming an enrolment and
//! spending a recovery code are each one conditional statement, so of two nodes accepting the
//! same code one succeeds.

use async_trait::async_trait;
use mandate_core::login::totp::store::{TotpCredential, TotpStore};
use mandate_core::store::StoreResult;

use crate::connect::SqlStore;
use crate::error::backend;
use crate::rows::col;

#[async_trait]
impl TotpStore for SqlStore {
    async fn totp(&self, tenant_id: &str, user_id: &str) -> StoreResult<Option<TotpCredential>> {
        let row = sqlx::query(
            "SELECT tenant_id, user_id, secret, created_at, confirmed_at, pending_until, \
             last_step FROM totp_credentials WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(TotpCredential {
            tenant_id: col(&r, "tenant_id")?,
            user_id: col(&r, "user_id")?,
            secret: col(&r, "secret")?,
            created_at: col(&r, "created_at")?,
            confirmed_at: col(&r, "confirmed_at")?,
            pending_until: col(&r, "pending_until")?,
            last_step: col(&r, "last_step")?,
        }))
    }

    async fn put_pending_totp(&self, c: &TotpCredential) -> StoreResult<bool> {
        // Replaces a pending one, never an enrolled one (the WHERE of the upsert).
        let done = sqlx::query(
            "INSERT INTO totp_credentials (tenant_id, user_id, secret, created_at, \
             confirmed_at, pending_until, last_step) VALUES ($1, $2, $3, $4, NULL, $5, 0) \
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET secret = excluded.secret, \
             created_at = excluded.created_at, pending_until = excluded.pending_until, \
             last_step = 0 WHERE totp_credentials.confirmed_at IS NULL",
        )
        .bind(&c.tenant_id)
        .bind(&c.user_id)
        .bind(&c.secret)
        .bind(c.created_at)
        .bind(c.pending_until)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn confirm_totp(
        &self,
        tenant_id: &str,
        user_id: &str,
        step: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE totp_credentials SET confirmed_at = $4, pending_until = NULL, \
             last_step = $3 WHERE tenant_id = $1 AND user_id = $2 \
             AND confirmed_at IS NULL AND pending_until > $4",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(step)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn spend_totp_step(
        &self,
        tenant_id: &str,
        user_id: &str,
        step: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE totp_credentials SET last_step = $3 WHERE tenant_id = $1 AND user_id = $2 \
             AND confirmed_at IS NOT NULL AND last_step < $3",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(step)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_totp(&self, tenant_id: &str, user_id: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let enrolled = sqlx::query(
            "DELETE FROM totp_credentials WHERE tenant_id = $1 AND user_id = $2 \
             AND confirmed_at IS NOT NULL",
        )
        .bind(tenant_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        let mut deleted = [0u64; 2];
        for (n, sql) in [
            // A pending enrolment goes too, but alone it is no second factor.
            "DELETE FROM totp_credentials WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2",
        ]
        .into_iter()
        .enumerate()
        {
            deleted[n] = sqlx::query(sql)
                .bind(tenant_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected();
        }
        tx.commit().await.map_err(backend)?;
        Ok(enrolled > 0 || deleted[1] > 0)
    }

    async fn replace_recovery_codes(
        &self,
        tenant_id: &str,
        user_id: &str,
        digests: &[Vec<u8>],
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        for d in digests {
            sqlx::query(
                "INSERT INTO recovery_codes (tenant_id, user_id, digest, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(d)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn spend_recovery_code(
        &self,
        tenant_id: &str,
        user_id: &str,
        digest: &[u8],
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND digest = $3",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(digest)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn recovery_codes_left(&self, tenant_id: &str, user_id: &str) -> StoreResult<i64> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        col(&r, "n")
    }
}
