//! Authorization codes: single use, kept after use so that reuse is detected.

use mandate_core::domain::model::AuthCode;
use mandate_core::store::{Spend, StoreResult};
use sqlx::AnyPool;

use crate::error::{backend, on_insert};
use crate::rows::{self, json_list};

macro_rules! code_columns {
    () => {
        "tenant_id, digest, grant_id, client_id, user_id, redirect_uri, code_challenge, scope, \
         nonce, sid, auth_time, acr, amr, expires_at, consumed_at, resources, mandate_id"
    };
}

pub(crate) async fn insert(pool: &AnyPool, c: &AuthCode) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO auth_codes (",
        code_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL, $15, $16)"
    ))
    .bind(&c.tenant_id)
    .bind(&c.digest)
    .bind(&c.grant_id)
    .bind(&c.client_id)
    .bind(&c.user_id)
    .bind(&c.redirect_uri)
    .bind(&c.code_challenge)
    .bind(c.scope.to_string())
    .bind(c.nonce.as_deref())
    .bind(c.sid.as_deref())
    .bind(c.auth_time)
    .bind(&c.acr)
    .bind(json_list(c.amr.iter().map(String::as_str)))
    .bind(c.expires_at)
    .bind(json_list(c.resources.iter().map(String::as_str)))
    .bind(c.mandate_id.as_deref())
    .execute(pool)
    .await
    .map_err(on_insert("authorization code"))?;
    Ok(())
}

/// The code whatever its state, and whether it was consumed.
pub(crate) async fn get(
    pool: &AnyPool,
    tenant_id: &str,
    digest: &[u8],
) -> StoreResult<Option<(AuthCode, bool)>> {
    sqlx::query(concat!(
        "SELECT ",
        code_columns!(),
        " FROM auth_codes WHERE tenant_id = $1 AND digest = $2"
    ))
    .bind(tenant_id)
    .bind(digest)
    .fetch_optional(pool)
    .await
    .map_err(backend)?
    .as_ref()
    .map(rows::code)
    .transpose()
}

/// Mark the code consumed in one conditional update: only one caller sees it unconsumed.
pub(crate) async fn consume(
    pool: &AnyPool,
    tenant_id: &str,
    digest: &[u8],
    now: i64,
) -> StoreResult<Spend<AuthCode>> {
    let fresh = sqlx::query(concat!(
        "UPDATE auth_codes SET consumed_at = $3 \
         WHERE tenant_id = $1 AND digest = $2 AND consumed_at IS NULL RETURNING ",
        code_columns!()
    ))
    .bind(tenant_id)
    .bind(digest)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    if let Some(row) = fresh {
        return Ok(Spend::Fresh(rows::code(&row)?.0));
    }
    Ok(match get(pool, tenant_id, digest).await? {
        Some((code, _)) => Spend::Replayed(code),
        None => Spend::Unknown,
    })
}
