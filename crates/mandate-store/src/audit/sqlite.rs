//! Appending to the chain on SQLite: the inserts and the head update go in one query string
//! (SQLite runs its statements in turn), inside a transaction. Each round trip is a wake-up of
//! the driver's thread, which is what a batch's latency is made of under load.

use mandate_core::audit::AuditEvent;
use mandate_core::store::StoreResult;
use sqlx::{Any, AnyPool, Transaction};

use super::head::lock_head;
use super::record::{ChainTx, Head, Record, canonical_detail, head_after, subject_parts};
use crate::error::backend;

const COLUMNS: usize = 24;
const EVENT_COLUMNS: &str = "tenant_id, seq, time, kind, outcome, actor_type, actor_id, \
     subject_type, subject_id, act_chain, client_id, mandate_id, request_id, reason, detail, \
     personal_commitment, prev_hash, hash, salt, data_subject, ip, user_agent, username, email";

/// Write `records` if the tenant's head is still `from`; `Ok(false)` (rolled back) if not.
pub(super) async fn write_after(
    pool: &AnyPool,
    tenant: &str,
    events: &[&AuditEvent],
    records: &[Record],
    from: Head,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(backend)?;
    match write(&mut tx, tenant, events, records, from).await {
        Ok(true) => {
            tx.commit().await.map_err(backend)?;
            Ok(true)
        }
        // Dropping the transaction rolls it back.
        other => other,
    }
}

/// The locked path's transaction.
pub(super) struct Tx(pub(super) Transaction<'static, Any>);

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

/// `INSERT INTO {table} ({columns}) VALUES (?, …), (?, …)…` for `rows` rows. Plain `?`: with
/// numbered placeholders the driver looks every parameter up by name, which is quadratic in
/// their number and was a quarter of the writer's time.
fn multi_insert(table: &str, columns: &str, width: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    format!(
        "INSERT INTO {table} ({columns}) VALUES {}",
        vec![row; rows].join(", ")
    )
}

/// Insert `records` (with their personal data) and move the head from `from` to their last,
/// in one query; `Ok(false)` means the head was elsewhere and the caller must roll back.
async fn write(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    events: &[&AuditEvent],
    records: &[Record],
    from: Head,
) -> StoreResult<bool> {
    let (seq, head) = head_after(from, records);
    let sql = format!(
        "{}; UPDATE audit_heads SET seq = ?, hash = ? \
         WHERE tenant_id = ? AND seq = ? AND hash = ?",
        multi_insert("audit_events", EVENT_COLUMNS, COLUMNS, records.len()),
    );
    let mut q = sqlx::query(&sql);
    for (e, r) in events.iter().zip(records) {
        let (actor_type, actor_id) = e.actor.parts();
        let (subject_type, subject_id) = subject_parts(e);
        let p = &e.personal;
        let has_personal = r.sealed.personal.is_some();
        q = q
            .bind(tenant)
            .bind(r.seq)
            .bind(e.time)
            .bind(e.kind.as_str())
            .bind(e.outcome.as_str())
            .bind(actor_type)
            .bind(actor_id)
            .bind(subject_type)
            .bind(subject_id)
            .bind(r.act_chain.as_str())
            .bind(e.client_id.as_deref())
            .bind(e.mandate_id.as_deref())
            .bind(e.request_id.as_deref())
            .bind(e.reason.as_deref())
            .bind(canonical_detail(e))
            .bind(r.sealed.personal.map(|(_, c)| c.to_vec()))
            .bind(r.prev.to_vec())
            .bind(r.sealed.hash.to_vec())
            .bind(r.sealed.personal.map(|(salt, _)| salt.to_vec()))
            .bind(e.data_subject().filter(|_| has_personal))
            .bind(p.ip.as_deref())
            .bind(p.user_agent.as_deref())
            .bind(p.username.as_deref())
            .bind(p.email.as_deref());
    }
    q = q
        .bind(seq)
        .bind(head.to_vec())
        .bind(tenant)
        .bind(from.0)
        .bind(from.1.to_vec());
    let done = q.execute(&mut **tx).await.map_err(backend)?;
    Ok(done.rows_affected() == (records.len() + 1) as u64)
}
