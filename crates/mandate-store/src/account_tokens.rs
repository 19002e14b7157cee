//! The one-time secrets mailed to people, as keyed digests: one per person and purpose (a
//! newer one replaces the older in the same statement), taken with one `DELETE … RETURNING`.

use async_trait::async_trait;
use mandate_core::login::recovery::store::{AccountToken, AccountTokenStore, Purpose};
use mandate_core::store::StoreResult;
use sqlx::any::AnyRow;

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::rows::{col, corrupt};

const COLUMNS: &str = "tenant_id, user_id, purpose, digest, email, created_at, expires_at";

fn token(r: &AnyRow) -> StoreResult<AccountToken> {
    let purpose: String = col(r, "purpose")?;
    Ok(AccountToken {
        tenant_id: col(r, "tenant_id")?,
        user_id: col(r, "user_id")?,
        purpose: Purpose::parse(&purpose).ok_or_else(|| corrupt("token purpose", &purpose))?,
        digest: col(r, "digest")?,
        email: col(r, "email")?,
        created_at: col(r, "created_at")?,
        expires_at: col(r, "expires_at")?,
    })
}

#[async_trait]
impl AccountTokenStore for SqlStore {
    async fn put_account_token(&self, k: &AccountToken) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO account_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, user_id, purpose) DO UPDATE SET digest = excluded.digest, \
             email = excluded.email, created_at = excluded.created_at, \
             expires_at = excluded.expires_at"
        ))
        .bind(&k.tenant_id)
        .bind(&k.user_id)
        .bind(k.purpose.as_str())
        .bind(&k.digest)
        .bind(&k.email)
        .bind(k.created_at)
        .bind(k.expires_at)
        .execute(&self.pool)
        .await
        .map_err(on_insert("account token"))?;
        Ok(())
    }

    async fn account_token(
        &self,
        tenant_id: &str,
        purpose: Purpose,
        digest: &[u8],
        now: i64,
    ) -> StoreResult<Option<AccountToken>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM account_tokens \
             WHERE tenant_id = $1 AND purpose = $2 AND digest = $3 AND expires_at > $4"
        ))
        .bind(tenant_id)
        .bind(purpose.as_str())
        .bind(digest)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(token)
        .transpose()
    }

    async fn take_account_token(
        &self,
        tenant_id: &str,
        purpose: Purpose,
        digest: &[u8],
        now: i64,
    ) -> StoreResult<Option<AccountToken>> {
        let row = sqlx::query(&format!(
            "DELETE FROM account_tokens WHERE tenant_id = $1 AND purpose = $2 AND digest = $3 \
             RETURNING {COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(purpose.as_str())
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(r) = row else { return Ok(None) };
        let k = token(&r)?;
        Ok((k.expires_at > now).then_some(k))
    }

    async fn delete_account_tokens(
        &self,
        tenant_id: &str,
        user_id: &str,
        purpose: Option<Purpose>,
    ) -> StoreResult<u64> {
        let done = match purpose {
            Some(p) => sqlx::query(
                "DELETE FROM account_tokens WHERE tenant_id = $1 AND user_id = $2 AND purpose = $3",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(p.as_str()),
            None => sqlx::query("DELETE FROM account_tokens WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant_id)
                .bind(user_id),
        }
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }
}
