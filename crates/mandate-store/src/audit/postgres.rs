//! Appending to the chain on PostgreSQL, through a native pool: a batch goes as one array per
//! column, expanded by `unnest` (binary parameters; one statement text whatever the batch size,
//! prepared once). As JSON text, parsing it was a quarter of the server's time.

use mandate_core::audit::AuditEvent;
use mandate_core::store::StoreResult;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};

use super::head::lock_head;
use super::record::{ChainTx, Head, Record, canonical_detail, head_after, subject_parts};
use crate::error::backend;

/// Move the tenant's head from ($27, $28) to ($25, $26) and, only if it moved, insert the
/// batch's records with their personal data, one array per column. One statement, so one round
/// trip and one transaction when sent alone; it returns how many heads moved (0 or 1).
const WRITE: &str = "WITH h AS (UPDATE audit_heads SET seq = $25, hash = $26 \
     WHERE tenant_id = $1 AND seq = $27 AND hash = $28 RETURNING 1), \
     e AS (INSERT INTO audit_events (tenant_id, seq, time, kind, outcome, actor_type, actor_id, \
     subject_type, subject_id, act_chain, client_id, mandate_id, request_id, reason, detail, \
     personal_commitment, prev_hash, hash, salt, data_subject, ip, user_agent, username, email) \
     SELECT $1, u.* FROM unnest($2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], \
     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
     $14::text[], $15::text[], $16::bytea[], $17::bytea[], $18::bytea[], $19::bytea[], \
     $20::text[], $21::text[], $22::text[], $23::text[], $24::text[]) AS u \
     WHERE EXISTS (SELECT 1 FROM h)) \
     SELECT count(*) AS moved FROM h";

/// Write `records` if the tenant's head is still `from`, as one statement (no `BEGIN` or
/// `COMMIT` round trip); `Ok(false)` and nothing written if it was not.
pub(super) async fn write_after(
    pool: &PgPool,
    tenant: &str,
    events: &[&AuditEvent],
    records: &[Record],
    from: Head,
) -> StoreResult<bool> {
    let mut conn = pool.acquire().await.map_err(backend)?;
    write(&mut conn, tenant, events, records, from).await
}

/// The locked path's transaction.
pub(super) struct Tx(pub(super) Transaction<'static, Postgres>);

impl ChainTx for Tx {
    async fn lock_head(&mut self, tenant: &str) -> StoreResult<Head> {
        lock_head(&mut *self.0, tenant).await
    }

    async fn write(
        &mut self,
        tenant: &str,
        events: &[&AuditEvent],
        records: &[Record],
        from: Head,
    ) -> StoreResult<bool> {
        write(&mut self.0, tenant, events, records, from).await
    }

    async fn commit(self) -> StoreResult<()> {
        self.0.commit().await.map_err(backend)
    }
}

/// Write `records` and move the head from `from` to their last (see [`WRITE`]); whether it
/// moved (nothing is written otherwise).
async fn write(
    conn: &mut PgConnection,
    tenant: &str,
    events: &[&AuditEvent],
    records: &[Record],
    from: Head,
) -> StoreResult<bool> {
    let n = records.len();
    let mut seq = Vec::with_capacity(n);
    let mut time = Vec::with_capacity(n);
    let mut text: [Vec<Option<&str>>; 11] = Default::default();
    let mut detail = Vec::with_capacity(n);
    let mut commitment = Vec::with_capacity(n);
    let mut prev = Vec::with_capacity(n);
    let mut hash = Vec::with_capacity(n);
    let mut salt = Vec::with_capacity(n);
    let mut personal: [Vec<Option<&str>>; 5] = Default::default();
    for (e, r) in events.iter().zip(records) {
        let (actor_type, actor_id) = e.actor.parts();
        let (subject_type, subject_id) = subject_parts(e);
        seq.push(r.seq);
        time.push(e.time);
        let row = [
            Some(e.kind.as_str()),
            Some(e.outcome.as_str()),
            Some(actor_type),
            actor_id,
            subject_type,
            subject_id,
            Some(r.act_chain.as_str()),
            e.client_id.as_deref(),
            e.mandate_id.as_deref(),
            e.request_id.as_deref(),
            e.reason.as_deref(),
        ];
        for (column, value) in text.iter_mut().zip(row) {
            column.push(value);
        }
        detail.push(canonical_detail(e));
        commitment.push(r.sealed.personal.map(|(_, c)| c.to_vec()));
        prev.push(r.prev.to_vec());
        hash.push(r.sealed.hash.to_vec());
        salt.push(r.sealed.personal.map(|(s, _)| s.to_vec()));
        let p = &e.personal;
        let row = [
            e.data_subject().filter(|_| r.sealed.personal.is_some()),
            p.ip.as_deref(),
            p.user_agent.as_deref(),
            p.username.as_deref(),
            p.email.as_deref(),
        ];
        for (column, value) in personal.iter_mut().zip(row) {
            column.push(value);
        }
    }
    let mut q = sqlx::query(WRITE).bind(tenant).bind(seq).bind(time);
    for column in text {
        q = q.bind(column);
    }
    q = q
        .bind(detail)
        .bind(commitment)
        .bind(prev)
        .bind(hash)
        .bind(salt);
    for column in personal {
        q = q.bind(column);
    }
    let to = head_after(from, records);
    let row = q
        .bind(to.0)
        .bind(&to.1[..])
        .bind(from.0)
        .bind(&from.1[..])
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
    let moved: i64 = row.try_get("moved").map_err(backend)?;
    Ok(moved == 1)
}
