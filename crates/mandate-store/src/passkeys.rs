//! Passkeys and the WebAuthn ceremonies in flight.

use async_trait::async_trait;
use mandate_core::login::webauthn::store::{Ceremony, CeremonyKind, PasskeyStore, StoredPasskey};
use mandate_core::store::StoreResult;
use sqlx::any::AnyRow;

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::rows::{col, corrupt, flag};

const PASSKEY_COLUMNS: &str = "tenant_id, id, user_id, user_handle, name, credential, \
     backup_eligible, backup_state, counter, created_at, last_used_at";

fn passkey(r: &AnyRow) -> StoreResult<StoredPasskey> {
    let counter: i64 = col(r, "counter")?;
    Ok(StoredPasskey {
        tenant_id: col(r, "tenant_id")?,
        id: col(r, "id")?,
        user_id: col(r, "user_id")?,
        user_handle: col(r, "user_handle")?,
        name: col(r, "name")?,
        credential: col(r, "credential")?,
        backup_eligible: col::<i64>(r, "backup_eligible")? != 0,
        backup_state: col::<i64>(r, "backup_state")? != 0,
        counter: u32::try_from(counter).map_err(|_| corrupt("counter", &counter.to_string()))?,
        created_at: col(r, "created_at")?,
        last_used_at: col(r, "last_used_at")?,
    })
}

#[async_trait]
impl PasskeyStore for SqlStore {
    async fn passkeys(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<StoredPasskey>> {
        sqlx::query(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(passkey)
        .collect()
    }

    async fn passkey(&self, tenant_id: &str, id: &str) -> StoreResult<Option<StoredPasskey>> {
        sqlx::query(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(passkey)
        .transpose()
    }

    async fn add_passkey(&self, k: &StoredPasskey) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO passkeys ({PASSKEY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&k.tenant_id)
        .bind(&k.id)
        .bind(&k.user_id)
        .bind(&k.user_handle)
        .bind(&k.name)
        .bind(&k.credential)
        .bind(flag(k.backup_eligible))
        .bind(flag(k.backup_state))
        .bind(i64::from(k.counter))
        .bind(k.created_at)
        .bind(k.last_used_at)
        .execute(&self.pool)
        .await
        .map_err(on_insert("passkey"))?;
        Ok(())
    }

    async fn passkey_used(&self, k: &StoredPasskey) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE passkeys SET credential = $1, counter = $2, backup_eligible = $3, \
             backup_state = $4, last_used_at = $5 WHERE tenant_id = $6 AND id = $7",
        )
        .bind(&k.credential)
        .bind(i64::from(k.counter))
        .bind(flag(k.backup_eligible))
        .bind(flag(k.backup_state))
        .bind(k.last_used_at)
        .bind(&k.tenant_id)
        .bind(&k.id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_passkey(&self, tenant_id: &str, user_id: &str, id: &str) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM passkeys WHERE tenant_id = $1 AND user_id = $2 AND id = $3")
                .bind(tenant_id)
                .bind(user_id)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn live_ceremonies(
        &self,
        tenant_id: &str,
        address: Option<&str>,
        now: i64,
    ) -> StoreResult<(u64, u64)> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, \
             COALESCE(SUM(CASE WHEN address = $2 THEN 1 ELSE 0 END), 0) AS here \
             FROM webauthn_ceremonies WHERE tenant_id = $1 AND expires_at > $3",
        )
        .bind(tenant_id)
        .bind(address)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        let n: i64 = col(&r, "n")?;
        let here: i64 = col(&r, "here")?;
        Ok((n.max(0) as u64, here.max(0) as u64))
    }

    async fn put_ceremony(&self, c: &Ceremony) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO webauthn_ceremonies \
             (tenant_id, id, kind, user_id, address, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.tenant_id)
        .bind(&c.id)
        .bind(c.kind.as_str())
        .bind(c.user_id.as_deref())
        .bind(c.address.as_deref())
        .bind(&c.state)
        .bind(c.expires_at)
        .execute(&self.pool)
        .await
        .map_err(on_insert("ceremony"))?;
        Ok(())
    }

    async fn take_ceremony(
        &self,
        tenant_id: &str,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<Ceremony>> {
        // One statement: of two nodes taking the same ceremony, one gets it.
        let row = sqlx::query(
            "DELETE FROM webauthn_ceremonies WHERE tenant_id = $1 AND id = $2 \
             RETURNING tenant_id, id, kind, user_id, address, state, expires_at",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(r) = row else { return Ok(None) };
        let kind: String = col(&r, "kind")?;
        let c = Ceremony {
            tenant_id: col(&r, "tenant_id")?,
            id: col(&r, "id")?,
            kind: CeremonyKind::parse(&kind).ok_or_else(|| corrupt("ceremony kind", &kind))?,
            user_id: col(&r, "user_id")?,
            address: col(&r, "address")?,
            state: col(&r, "state")?,
            expires_at: col(&r, "expires_at")?,
        };
        Ok((c.expires_at > now).then_some(c))
    }
}
