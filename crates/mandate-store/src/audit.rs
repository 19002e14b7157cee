//! The audit trail, appended with group commit: concurrent `record` calls are queued to one
//! writer task that appends everything waiting in one transaction, and each caller returns only
//! after the transaction holding its event has committed. Durability per event, at a cost of one
//! commit per batch rather than per event.
//!
//! Each tenant's records form a hash chain (`mandate_core::audit::chain`). Per batch and tenant
//! the writer locks the tenant's `audit_heads` row with a no-op `UPDATE … RETURNING` (which also
//! reads the head), numbers and seals the events after it (personal data committed to under a
//! fresh salt, then hashed), inserts them and their personal data in one statement each and
//! moves the head: at most four statements, whatever the batch size. The row lock serializes writers
//! of other processes on the same database (PostgreSQL), and tenants are locked in a fixed order
//! (by id) so that two writers never deadlock.

use std::collections::BTreeMap;

use async_trait::async_trait;
use mandate_core::StoreError;
use mandate_core::audit::chain::{self, ChainRecord, Checkpoint, GENESIS, HASH_LEN};
use mandate_core::audit::{AuditEvent, EventKind, Outcome, Personal, Principal};
use mandate_core::store::{AuditLog, AuditQuery, AuditRecord, AuditSink, StoreResult};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::connect::{Backend, SqlStore};
use crate::error::backend;

/// Most events one batch carries (18 parameters each, well under both databases' limits).
const MAX_BATCH: usize = 256;
const COLUMNS: usize = 18;
const PERSONAL_COLUMNS: usize = 8;

struct Pending {
    event: AuditEvent,
    done: oneshot::Sender<Result<(), String>>,
}

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub(crate) struct AuditWriter {
    tx: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Start the writer on the current runtime; it ends when every handle is dropped.
    pub(crate) fn spawn(pool: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        tokio::spawn(run(pool, rx));
        AuditWriter { tx }
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let result = append(&pool, &batch).await.map_err(|e| e.to_string());
        for p in batch.drain(..) {
            let _ = p.done.send(result.clone());
        }
    }
}

fn encoding(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("encoding audit event: {e}"))
}

/// Lock the tenant's head row and read it.
const LOCK_HEAD: &str = "UPDATE audit_heads SET seq = seq WHERE tenant_id = $1 RETURNING seq, hash";

/// Append a batch: one transaction, every tenant's events in arrival order.
async fn append(pool: &AnyPool, batch: &[Pending]) -> StoreResult<()> {
    let mut by_tenant: BTreeMap<&str, Vec<&AuditEvent>> = BTreeMap::new();
    for p in batch {
        by_tenant
            .entry(p.event.tenant_id.as_str())
            .or_default()
            .push(&p.event);
    }
    let mut tx = pool.begin().await.map_err(backend)?;
    for (tenant, events) in by_tenant {
        append_tenant(&mut tx, tenant, &events).await?;
    }
    tx.commit().await.map_err(backend)
}

async fn lock_head(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
) -> StoreResult<(i64, Vec<u8>)> {
    let mut row = sqlx::query(LOCK_HEAD)
        .bind(tenant)
        .fetch_optional(&mut **tx)
        .await
        .map_err(backend)?;
    if row.is_none() {
        // First record of this tenant: create the head (another process may race us), then lock.
        sqlx::query(
            "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) \
             ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(GENESIS.to_vec())
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
        row = sqlx::query(LOCK_HEAD)
            .bind(tenant)
            .fetch_optional(&mut **tx)
            .await
            .map_err(backend)?;
    }
    let row = row.ok_or_else(|| StoreError::Backend("audit head vanished".into()))?;
    let seq: i64 = row.try_get("seq").map_err(backend)?;
    let hash: Vec<u8> = row.try_get("hash").map_err(backend)?;
    if hash.len() != HASH_LEN {
        return Err(StoreError::Corrupt(format!(
            "audit head of tenant {tenant} holds a {}-byte hash",
            hash.len()
        )));
    }
    Ok((seq, hash))
}

/// `INSERT INTO {table} ({columns}) VALUES ($1, …), ($k, …)…` for `rows` rows.
fn multi_insert(table: &str, columns: &str, width: usize, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({columns}) VALUES ");
    for i in 0..rows {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(i * width + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

async fn append_tenant(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    events: &[&AuditEvent],
) -> StoreResult<()> {
    let (mut seq, mut prev) = lock_head(tx, tenant).await?;
    let sql = multi_insert(
        "audit_events",
        "tenant_id, seq, time, kind, outcome, actor_type, actor_id, subject_type, subject_id, \
         act_chain, client_id, mandate_id, request_id, reason, detail, personal_commitment, \
         prev_hash, hash",
        COLUMNS,
        events.len(),
    );
    let mut q = sqlx::query(&sql);
    let mut personal = Vec::new();
    for e in events {
        seq += 1;
        let sealed = chain::seal(&prev, e, seq);
        let (actor_type, actor_id) = e.actor.parts();
        let (subject_type, subject_id) = match &e.subject {
            Some(p) => {
                let (t, id) = p.parts();
                (Some(t), id)
            }
            None => (None, None),
        };
        let act_chain = serde_json::to_string(&e.act_chain).map_err(encoding)?;
        if let Some((salt, _)) = &sealed.personal {
            personal.push((seq, *salt, *e));
        }
        q = q
            .bind(e.tenant_id.clone())
            .bind(seq)
            .bind(e.time)
            .bind(e.kind.as_str())
            .bind(e.outcome.as_str())
            .bind(actor_type)
            .bind(actor_id.map(str::to_string))
            .bind(subject_type)
            .bind(subject_id.map(str::to_string))
            .bind(act_chain)
            .bind(e.client_id.clone())
            .bind(e.mandate_id.clone())
            .bind(e.request_id.clone())
            .bind(e.reason.clone())
            .bind(e.detail.to_string())
            .bind(sealed.personal.map(|(_, c)| c.to_vec()))
            .bind(std::mem::replace(&mut prev, sealed.hash.to_vec()))
            .bind(sealed.hash.to_vec());
    }
    q.execute(&mut **tx).await.map_err(backend)?;
    if !personal.is_empty() {
        let sql = multi_insert(
            "audit_personal",
            "tenant_id, seq, salt, data_subject, ip, user_agent, username, email",
            PERSONAL_COLUMNS,
            personal.len(),
        );
        let mut q = sqlx::query(&sql);
        for (seq, salt, e) in personal {
            let p = &e.personal;
            q = q
                .bind(tenant)
                .bind(seq)
                .bind(salt.to_vec())
                .bind(e.data_subject().map(str::to_string))
                .bind(p.ip.clone())
                .bind(p.user_agent.clone())
                .bind(p.username.clone())
                .bind(p.email.clone());
        }
        q.execute(&mut **tx).await.map_err(backend)?;
    }
    sqlx::query("UPDATE audit_heads SET seq = $1, hash = $2 WHERE tenant_id = $3")
        .bind(seq)
        .bind(prev)
        .bind(tenant)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

/// The columns every read selects, audit_events as `e` and audit_personal as `p`.
const SELECT: &str = "SELECT e.id, e.seq, e.prev_hash, e.hash, e.time, e.tenant_id, e.kind, \
     e.outcome, e.actor_type, e.actor_id, e.subject_type, e.subject_id, e.act_chain, \
     e.client_id, e.mandate_id, e.request_id, e.reason, e.detail, e.personal_commitment, \
     p.salt, p.ip, p.user_agent, p.username, p.email \
     FROM audit_events e LEFT JOIN audit_personal p \
     ON p.tenant_id = e.tenant_id AND p.seq = e.seq";

/// The stored fields of a row back as an event; an error names the first undecodable field.
fn decode_event(row: &AnyRow) -> Result<AuditEvent, String> {
    fn text(row: &AnyRow, c: &str) -> Result<Option<String>, String> {
        row.try_get::<Option<String>, _>(c)
            .map_err(|e| format!("{c}: {e}"))
    }
    fn required(row: &AnyRow, c: &str) -> Result<String, String> {
        text(row, c)?.ok_or_else(|| format!("{c} is missing"))
    }
    fn principal(row: &AnyRow, prefix: &str) -> Result<Option<Principal>, String> {
        let kind = text(row, &format!("{prefix}_type"))?;
        let id = text(row, &format!("{prefix}_id"))?;
        match kind {
            None if id.is_none() => Ok(None),
            None => Err(format!("{prefix}_id without {prefix}_type")),
            Some(k) => Principal::from_parts(&k, id)
                .map(Some)
                .ok_or_else(|| format!("invalid {prefix}: type {k:?}")),
        }
    }
    let kind = required(row, "kind")?;
    let outcome = required(row, "outcome")?;
    let detail = required(row, "detail")?;
    Ok(AuditEvent {
        time: row.try_get("time").map_err(|e| format!("time: {e}"))?,
        tenant_id: required(row, "tenant_id")?,
        kind: EventKind::parse(&kind).ok_or_else(|| format!("unknown kind {kind:?}"))?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| format!("unknown outcome {outcome:?}"))?,
        reason: text(row, "reason")?,
        actor: principal(row, "actor")?.ok_or("actor is missing")?,
        subject: principal(row, "subject")?,
        act_chain: serde_json::from_str(&required(row, "act_chain")?)
            .map_err(|e| format!("act_chain: {e}"))?,
        client_id: text(row, "client_id")?,
        mandate_id: text(row, "mandate_id")?,
        request_id: text(row, "request_id")?,
        detail: serde_json::from_str(&detail).map_err(|e| format!("detail: {e}"))?,
        personal: Personal {
            ip: text(row, "ip")?,
            user_agent: text(row, "user_agent")?,
            username: text(row, "username")?,
            email: text(row, "email")?,
        },
    })
}

fn bytes(row: &AnyRow, c: &str) -> StoreResult<Option<Vec<u8>>> {
    row.try_get::<Option<Vec<u8>>, _>(c).map_err(backend)
}

/// SQL that is true when column `col` contains the text of parameter `param`, case-sensitively
/// (LIKE is not, on SQLite).
fn contains(backend: Backend, col: &str, param: usize) -> String {
    match backend {
        Backend::Sqlite => format!("instr({col}, ${param}) > 0"),
        Backend::Postgres => format!("strpos({col}, ${param}) > 0"),
    }
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn audit_chain(
        &self,
        tenant_id: &str,
        after: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<ChainRecord>> {
        let sql = format!(
            "{SELECT} WHERE e.tenant_id = $1 AND (e.seq > $2 OR (e.seq = $3 AND e.id > $4)) \
             ORDER BY e.seq, e.id LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(after.0)
            .bind(after.0)
            .bind(after.1)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(ChainRecord {
                    row_id: row.try_get("id").map_err(backend)?,
                    seq: row.try_get("seq").map_err(backend)?,
                    prev_hash: row.try_get("prev_hash").map_err(backend)?,
                    hash: row.try_get("hash").map_err(backend)?,
                    event: decode_event(row),
                    personal_commitment: bytes(row, "personal_commitment")?,
                    personal_salt: bytes(row, "salt")?,
                })
            })
            .collect()
    }

    async fn audit_head(&self, tenant_id: &str) -> StoreResult<Option<Checkpoint>> {
        let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| {
            Ok(Checkpoint {
                seq: r.try_get("seq").map_err(backend)?,
                hash: r.try_get("hash").map_err(backend)?,
            })
        })
        .transpose()
    }

    async fn audit_query(&self, tenant_id: &str, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let mut sql = format!("{SELECT} WHERE e.tenant_id = $1");
        let mut texts: Vec<String> = vec![tenant_id.to_string()];
        let next = |texts: &mut Vec<String>, v: String| {
            texts.push(v);
            texts.len()
        };
        if let Some(a) = &q.actor {
            let n = next(&mut texts, a.clone());
            sql.push_str(&format!(" AND e.actor_id = ${n}"));
        }
        if let Some(s) = &q.subject {
            let n = next(&mut texts, s.clone());
            sql.push_str(&format!(" AND e.subject_id = ${n}"));
        }
        if let Some(m) = &q.mandate {
            let n = next(&mut texts, m.clone());
            sql.push_str(&format!(" AND e.mandate_id = ${n}"));
        }
        if let Some(a) = &q.agent {
            let id = next(&mut texts, a.clone());
            let needle =
                serde_json::to_string(&Principal::Agent { id: a.clone() }).map_err(encoding)?;
            let n = next(&mut texts, needle);
            sql.push_str(&format!(
                " AND ((e.actor_type = 'agent' AND e.actor_id = ${id}) OR {})",
                contains(self.backend(), "e.act_chain", n)
            ));
        }
        if !q.kinds.is_empty() {
            let list: Vec<String> = q
                .kinds
                .iter()
                .map(|k| format!("${}", next(&mut texts, k.as_str().to_string())))
                .collect();
            sql.push_str(&format!(" AND e.kind IN ({})", list.join(", ")));
        }
        let mut ints: Vec<i64> = Vec::new();
        let base = texts.len();
        let mut int = |sql: &mut String, cond: &str, v: i64| {
            ints.push(v);
            sql.push_str(&format!(" AND {cond} ${}", base + ints.len()));
        };
        if let Some(t) = q.since {
            int(&mut sql, "e.time >=", t);
        }
        if let Some(t) = q.until {
            int(&mut sql, "e.time <", t);
        }
        if let Some(c) = q.cursor {
            int(&mut sql, if q.ascending { "e.seq >" } else { "e.seq <" }, c);
        }
        sql.push_str(if q.ascending {
            " ORDER BY e.seq, e.id"
        } else {
            " ORDER BY e.seq DESC, e.id DESC"
        });
        sql.push_str(&format!(" LIMIT {}", q.limit));
        let mut query = sqlx::query(&sql);
        for t in texts {
            query = query.bind(t);
        }
        for i in ints {
            query = query.bind(i);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Ok(event) = decode_event(row) {
                out.push(AuditRecord {
                    seq: row.try_get("seq").map_err(backend)?,
                    hash: row.try_get("hash").map_err(backend)?,
                    event,
                });
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl AuditSink for SqlStore {
    async fn record(&self, e: &AuditEvent) -> StoreResult<()> {
        let (done, wait) = oneshot::channel();
        let gone = || StoreError::Backend("audit writer stopped".into());
        self.audit
            .tx
            .send(Pending {
                event: e.clone(),
                done,
            })
            .await
            .map_err(|_| gone())?;
        wait.await.map_err(|_| gone())?.map_err(StoreError::Backend)
    }
}
