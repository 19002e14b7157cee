//! The tenant's audit head row: locked and read at the start of each chained write.

use mandate_core::StoreError;
use mandate_core::store::StoreResult;
use sqlx::Row;

use super::record::Head;
use crate::error::backend;

/// Lock the tenant's head row and read it, creating it (at the genesis hash, $2) for the
/// tenant's first record; the same statement on both databases.
const LOCK_HEAD: &str = "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) \
     ON CONFLICT (tenant_id) DO UPDATE SET seq = audit_heads.seq RETURNING seq, hash";

/// Lock the tenant's head row and read it ([`LOCK_HEAD`]), on either database.
pub(super) async fn lock_head<'a, DB, E>(conn: E, tenant: &'a str) -> StoreResult<Head>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'a, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Vec<u8>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    i64: for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    &'static str: sqlx::ColumnIndex<DB::Row>,
{
    let row = sqlx::query::<DB>(LOCK_HEAD)
        .bind(tenant)
        .bind(mandate_core::audit::chain::GENESIS.to_vec())
        .fetch_one(conn)
        .await
        .map_err(backend)?;
    head_row(tenant, &row)
}

/// The head in a row of `LOCK_HEAD`, its hash checked for length.
fn head_row<R: Row>(tenant: &str, row: &R) -> StoreResult<Head>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'static str: sqlx::ColumnIndex<R>,
{
    let seq: i64 = row.try_get("seq").map_err(backend)?;
    let hash: Vec<u8> = row.try_get("hash").map_err(backend)?;
    let len = hash.len();
    let hash = hash.try_into().map_err(|_| {
        StoreError::Corrupt(format!(
            "audit head of tenant {tenant} holds a {len}-byte hash"
        ))
    })?;
    Ok((seq, hash))
}
