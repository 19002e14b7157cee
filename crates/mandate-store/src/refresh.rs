//! Refresh tokens: each is spent once, when exchanged for its successor.

use mandate_core::domain::model::RefreshToken;
use mandate_core::store::{Spend, StoreResult};
use sqlx::AnyPool;

use crate::error::{backend, on_insert};
use crate::rows::{self, json_list};

macro_rules! refresh_columns {
    () => {
        "tenant_id, digest, grant_id, client_id, user_id, scope, sid, auth_time, acr, amr, \
         expires_at, created_at, spent_at, delegation, dpop_jkt, resources"
    };
}

pub(crate) async fn insert(pool: &AnyPool, t: &RefreshToken) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO refresh_tokens (",
        refresh_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(&t.tenant_id)
    .bind(&t.digest)
    .bind(&t.grant_id)
    .bind(&t.client_id)
    .bind(&t.user_id)
    .bind(t.scope.to_string())
    .bind(t.sid.as_deref())
    .bind(t.auth_time)
    .bind(&t.acr)
    .bind(json_list(t.amr.iter().map(String::as_str)))
    .bind(t.expires_at)
    .bind(t.created_at)
    .bind(t.spent_at)
    .bind(t.delegation.as_ref().map(|d| d.to_string()))
    .bind(t.dpop_jkt.as_deref())
    .bind(json_list(t.resources.iter().map(String::as_str)))
    .execute(pool)
    .await
    .map_err(on_insert("refresh token"))?;
    Ok(())
}

/// The token whatever its state.
pub(crate) async fn get(
    pool: &AnyPool,
    tenant_id: &str,
    digest: &[u8],
) -> StoreResult<Option<RefreshToken>> {
    sqlx::query(concat!(
        "SELECT ",
        refresh_columns!(),
        " FROM refresh_tokens WHERE tenant_id = $1 AND digest = $2"
    ))
    .bind(tenant_id)
    .bind(digest)
    .fetch_optional(pool)
    .await
    .map_err(backend)?
    .as_ref()
    .map(rows::refresh)
    .transpose()
}

/// Spend the token in one conditional update: it must be unspent and its grant unrevoked.
pub(crate) async fn spend(
    pool: &AnyPool,
    tenant_id: &str,
    digest: &[u8],
    now: i64,
) -> StoreResult<Spend<RefreshToken>> {
    let fresh = sqlx::query(concat!(
        "UPDATE refresh_tokens SET spent_at = $3 \
         WHERE tenant_id = $1 AND digest = $2 AND spent_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.tenant_id = refresh_tokens.tenant_id \
         AND g.id = refresh_tokens.grant_id AND g.revoked_at IS NOT NULL) RETURNING ",
        refresh_columns!()
    ))
    .bind(tenant_id)
    .bind(digest)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    if let Some(row) = fresh {
        return Ok(Spend::Fresh(rows::refresh(&row)?));
    }
    Ok(match get(pool, tenant_id, digest).await? {
        Some(token) => Spend::Replayed(token),
        None => Spend::Unknown,
    })
}

/// Accept a spent token once more within a grace period: only the family's most recently spent
/// token (no other token of the family spent in the same second or later), spent at or after `spent_since`, never graced before, with its grant unrevoked.
pub(crate) async fn spend_in_grace(
    pool: &AnyPool,
    tenant_id: &str,
    digest: &[u8],
    spent_since: i64,
    now: i64,
) -> StoreResult<Option<RefreshToken>> {
    sqlx::query(concat!(
        "UPDATE refresh_tokens SET grace_used_at = $4 \
         WHERE tenant_id = $1 AND digest = $2 AND spent_at IS NOT NULL AND spent_at >= $3 \
         AND grace_used_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM refresh_tokens o WHERE o.tenant_id = refresh_tokens.tenant_id \
         AND o.grant_id = refresh_tokens.grant_id AND o.digest <> refresh_tokens.digest \
         AND o.spent_at >= refresh_tokens.spent_at) \
         AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.tenant_id = refresh_tokens.tenant_id \
         AND g.id = refresh_tokens.grant_id AND g.revoked_at IS NOT NULL) RETURNING ",
        refresh_columns!()
    ))
    .bind(tenant_id)
    .bind(digest)
    .bind(spent_since)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(backend)?
    .as_ref()
    .map(rows::refresh)
    .transpose()
}
