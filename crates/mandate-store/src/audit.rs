//! The audit trail, appended with group commit: concurrent `record` calls are queued to one
//! writer task that appends everything waiting in one transaction, and each caller returns only
//! after the transaction holding its event has committed. Durability per event, at a cost of one
//! commit per batch rather than per event.
//!
//! Each tenant's records form a hash chain (`mandate_core::audit::chain`). Per batch and tenant
//! the writer locks the tenant's `audit_heads` row with a no-op `UPDATE … RETURNING` (which also
//! reads the head), numbers and seals the events after it (personal data committed to under a
//! fresh salt, then hashed), then inserts them and their personal data and moves the head in
//! one round trip (several statements in one query on SQLite; one statement with
//! data-modifying CTEs over a JSON parameter on PostgreSQL): four round trips per batch with
//! `BEGIN` and `COMMIT`, whatever its size. The row lock serializes writers of other processes
//! on the same database (PostgreSQL), and tenants are locked in a fixed order (by id) so that
//! two writers never deadlock.
//!
//! Verification reads the log a page at a time, packed by the database into one JSON text per
//! page (see `packed_page_sql`): decoding a row per record through the driver cost more than
//! the hashing.

use std::collections::{BTreeMap, HashMap};

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

/// A tenant's head: (seq, hash) of its last record.
type Head = (i64, [u8; HASH_LEN]);
/// The writer's last known head per tenant.
type Heads = HashMap<String, Head>;

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut heads = Heads::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        // Gather what is queued; then yield (up to four times) so that the callers woken by
        // the previous commit, on other worker threads, can queue theirs too: otherwise the
        // writer, quicker than their wake-ups, cuts batches short (a 20–30% higher rate).
        for round in 0..5 {
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            if round < 4 && batch.len() < MAX_BATCH {
                tokio::task::yield_now().await;
            }
        }
        let result = append(&pool, &batch, &mut heads)
            .await
            .map_err(|e| e.to_string());
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

/// Append a batch, every tenant's events in arrival order, one transaction per tenant.
///
/// Fast path: the events are sealed after the head this writer last wrote, and written in one
/// round trip that moves the head only if it is still there (a single statement on
/// PostgreSQL; on SQLite the statements of one query in a transaction, rolled back when the
/// head had moved). Another process writing the same tenant, or an error, sends the batch down
/// the slow path: lock the head row, read it, seal after it, write, commit.
async fn append(pool: &AnyPool, batch: &[Pending], heads: &mut Heads) -> StoreResult<()> {
    let mut by_tenant: BTreeMap<&str, Vec<&AuditEvent>> = BTreeMap::new();
    for p in batch {
        by_tenant
            .entry(p.event.tenant_id.as_str())
            .or_default()
            .push(&p.event);
    }
    let postgres = pool.connect_options().database_url.scheme() != "sqlite";
    for (tenant, events) in by_tenant {
        if let Some(&(seq, prev)) = heads.get(tenant) {
            let (rows, head) = seal(seq, prev, &events)?;
            if let Ok(true) = write_if_head(pool, postgres, tenant, &rows, (seq, &prev), head).await
            {
                heads.insert(tenant.to_string(), head);
                continue;
            }
        }
        heads.remove(tenant);
        let mut tx = pool.begin().await.map_err(backend)?;
        let (seq, prev) = lock_head(&mut tx, tenant).await?;
        let prev: [u8; HASH_LEN] = prev.try_into().expect("length checked by lock_head");
        let (rows, head) = seal(seq, prev, &events)?;
        let moved = if postgres {
            write_postgres(&mut tx, tenant, &rows, head, None).await?
        } else {
            write_sqlite(&mut tx, tenant, &rows, head, None).await?
        };
        if !moved {
            return Err(StoreError::Backend("audit head vanished".into()));
        }
        tx.commit().await.map_err(backend)?;
        heads.insert(tenant.to_string(), head);
    }
    Ok(())
}

/// The fast path of [`append`]: write `rows` if the tenant's head is still `expected`.
/// `Ok(false)` when it was not (nothing written).
async fn write_if_head(
    pool: &AnyPool,
    postgres: bool,
    tenant: &str,
    rows: &[Sealed<'_>],
    expected: (i64, &[u8; HASH_LEN]),
    head: (i64, [u8; HASH_LEN]),
) -> StoreResult<bool> {
    if postgres {
        // One statement is one transaction: no BEGIN or COMMIT round trip.
        let mut conn = pool.acquire().await.map_err(backend)?;
        return write_postgres(&mut conn, tenant, rows, head, Some(expected)).await;
    }
    let mut tx = pool.begin().await.map_err(backend)?;
    match write_sqlite(&mut tx, tenant, rows, head, Some(expected)).await {
        Ok(true) => {
            tx.commit().await.map_err(backend)?;
            Ok(true)
        }
        // Dropping the transaction rolls it back.
        other => other,
    }
}

/// Number and seal `events` after the head (`seq`, `prev`); returns the rows and the new head.
fn seal<'a>(
    mut seq: i64,
    mut prev: [u8; HASH_LEN],
    events: &[&'a AuditEvent],
) -> StoreResult<(Vec<Sealed<'a>>, Head)> {
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        seq += 1;
        let sealed = chain::seal(&prev, e, seq);
        let hash = sealed.hash;
        rows.push(Sealed {
            seq,
            event: e,
            act_chain: serde_json::to_string(&e.act_chain).map_err(encoding)?,
            sealed,
            prev: std::mem::replace(&mut prev, hash),
        });
    }
    Ok((rows, (seq, prev)))
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

/// `INSERT INTO {table} ({columns}) VALUES (?, …), (?, …)…` for `rows` rows (SQLite). Plain
/// `?`: with numbered placeholders the driver looks every parameter up by name, which is
/// quadratic in their number and was a quarter of the writer's time.
fn multi_insert(table: &str, columns: &str, width: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    format!(
        "INSERT INTO {table} ({columns}) VALUES {}",
        vec![row; rows].join(", ")
    )
}

const EVENT_COLUMNS: &str = "tenant_id, seq, time, kind, outcome, actor_type, actor_id, \
     subject_type, subject_id, act_chain, client_id, mandate_id, request_id, reason, detail, \
     personal_commitment, prev_hash, hash";
const PERSONAL_COLUMN_NAMES: &str =
    "tenant_id, seq, salt, data_subject, ip, user_agent, username, email";

/// One sealed record, ready to insert.
struct Sealed<'a> {
    seq: i64,
    event: &'a AuditEvent,
    act_chain: String,
    sealed: chain::Sealed,
    prev: [u8; HASH_LEN],
}

/// Insert `rows` and their personal data and move the head to `head`, in one query (SQLite
/// runs the statements of one query string in turn; each round trip is a wake-up of the
/// driver's thread, which is what a batch's latency is made of under load). With `expected`,
/// the head moves only from there; `Ok(false)` then means it had moved and the caller must
/// roll back.
async fn write_sqlite(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    rows: &[Sealed<'_>],
    (seq, head): (i64, [u8; HASH_LEN]),
    expected: Option<(i64, &[u8; HASH_LEN])>,
) -> StoreResult<bool> {
    let personal: Vec<&Sealed> = rows
        .iter()
        .filter(|r| r.sealed.personal.is_some())
        .collect();
    let sql = format!(
        "{}; {}UPDATE audit_heads SET seq = ?, hash = ? WHERE tenant_id = ?{}",
        multi_insert("audit_events", EVENT_COLUMNS, COLUMNS, rows.len()),
        if personal.is_empty() {
            String::new()
        } else {
            multi_insert(
                "audit_personal",
                PERSONAL_COLUMN_NAMES,
                PERSONAL_COLUMNS,
                personal.len(),
            ) + "; "
        },
        if expected.is_some() {
            " AND seq = ? AND hash = ?"
        } else {
            ""
        }
    );
    let mut q = sqlx::query(&sql);
    for r in rows {
        let e = r.event;
        let (actor_type, actor_id) = e.actor.parts();
        let (subject_type, subject_id) = subject_parts(e);
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
            .bind(e.detail.to_string())
            .bind(r.sealed.personal.map(|(_, c)| c.to_vec()))
            .bind(r.prev.to_vec())
            .bind(r.sealed.hash.to_vec());
    }
    for r in &personal {
        let (e, p) = (r.event, &r.event.personal);
        q = q
            .bind(tenant)
            .bind(r.seq)
            .bind(r.sealed.personal.map(|(salt, _)| salt.to_vec()))
            .bind(e.data_subject())
            .bind(p.ip.as_deref())
            .bind(p.user_agent.as_deref())
            .bind(p.username.as_deref())
            .bind(p.email.as_deref());
    }
    q = q.bind(seq).bind(head.to_vec()).bind(tenant);
    if let Some((s, h)) = expected {
        q = q.bind(s).bind(h.to_vec());
    }
    let done = q.execute(&mut **tx).await.map_err(backend)?;
    Ok(done.rows_affected() == (rows.len() + personal.len() + 1) as u64)
}

fn subject_parts(e: &AuditEvent) -> (Option<&'static str>, Option<&str>) {
    match &e.subject {
        Some(p) => {
            let (t, id) = p.parts();
            (Some(t), id)
        }
        None => (None, None),
    }
}

/// The PostgreSQL write: the batch goes as one JSON parameter that `json_to_recordset` turns
/// back into rows, inserted by data-modifying CTEs of the head update. One statement text
/// whatever the batch size (prepared once, planned cheaply), and one round trip. The head moves
/// only from ($5, $6) when they are given (a NULL $5 means the row is already locked); the
/// rows are inserted only if it moved, and the statement returns how many heads moved (0 or 1).
const POSTGRES_WRITE: &str = "WITH h AS (UPDATE audit_heads SET seq = $2, hash = $3 \
     WHERE tenant_id = $4 AND ($5::bigint IS NULL OR (seq = $5 AND hash = $6)) RETURNING 1), \
     r AS (SELECT * FROM json_to_recordset($1::json) AS x(\
     seq bigint, time bigint, kind text, outcome text, actor_type text, actor_id text, \
     subject_type text, subject_id text, act_chain text, client_id text, mandate_id text, \
     request_id text, reason text, detail text, personal_commitment text, prev_hash text, \
     hash text, salt text, data_subject text, ip text, user_agent text, username text, \
     email text) WHERE EXISTS (SELECT 1 FROM h)), \
     e AS (INSERT INTO audit_events (tenant_id, seq, time, kind, outcome, actor_type, actor_id, \
     subject_type, subject_id, act_chain, client_id, mandate_id, request_id, reason, detail, \
     personal_commitment, prev_hash, hash) \
     SELECT $4, seq, time, kind, outcome, actor_type, actor_id, subject_type, subject_id, \
     act_chain, client_id, mandate_id, request_id, reason, detail, \
     decode(personal_commitment, 'hex'), decode(prev_hash, 'hex'), decode(hash, 'hex') FROM r), \
     p AS (INSERT INTO audit_personal (tenant_id, seq, salt, data_subject, ip, user_agent, \
     username, email) SELECT $4, seq, decode(salt, 'hex'), data_subject, ip, user_agent, \
     username, email FROM r WHERE salt IS NOT NULL) \
     SELECT count(*) AS moved FROM h";

/// Write `rows` and move the head to `head` (see [`POSTGRES_WRITE`]); with `expected`, only
/// from there. Returns whether the head moved (nothing is written otherwise).
async fn write_postgres(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    rows: &[Sealed<'_>],
    (seq, head): (i64, [u8; HASH_LEN]),
    expected: Option<(i64, &[u8; HASH_LEN])>,
) -> StoreResult<bool> {
    fn field(out: &mut Vec<u8>, key: &str, value: Option<&str>) -> StoreResult<()> {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        serde_json::to_writer(&mut *out, &value).map_err(encoding)
    }
    let mut json = Vec::with_capacity(rows.len() * 700);
    json.push(b'[');
    for (i, r) in rows.iter().enumerate() {
        let e = r.event;
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(format!("{{\"seq\":{},\"time\":{}", r.seq, e.time).as_bytes());
        let (actor_type, actor_id) = e.actor.parts();
        let (subject_type, subject_id) = subject_parts(e);
        let detail = e.detail.to_string();
        let commitment = r.sealed.personal.map(|(_, c)| chain::hex(&c));
        let salt = r.sealed.personal.map(|(s, _)| chain::hex(&s));
        let p = &e.personal;
        for (key, value) in [
            ("kind", Some(e.kind.as_str())),
            ("outcome", Some(e.outcome.as_str())),
            ("actor_type", Some(actor_type)),
            ("actor_id", actor_id),
            ("subject_type", subject_type),
            ("subject_id", subject_id),
            ("act_chain", Some(r.act_chain.as_str())),
            ("client_id", e.client_id.as_deref()),
            ("mandate_id", e.mandate_id.as_deref()),
            ("request_id", e.request_id.as_deref()),
            ("reason", e.reason.as_deref()),
            ("detail", Some(detail.as_str())),
            ("personal_commitment", commitment.as_deref()),
            ("prev_hash", Some(chain::hex(&r.prev).as_str())),
            ("hash", Some(chain::hex(&r.sealed.hash).as_str())),
            ("salt", salt.as_deref()),
            ("data_subject", e.data_subject()),
            ("ip", p.ip.as_deref()),
            ("user_agent", p.user_agent.as_deref()),
            ("username", p.username.as_deref()),
            ("email", p.email.as_deref()),
        ] {
            field(&mut json, key, value)?;
        }
        json.push(b'}');
    }
    json.push(b']');
    let json = String::from_utf8(json).map_err(|e| StoreError::Backend(e.to_string()))?;
    let moved: i64 = sqlx::query(POSTGRES_WRITE)
        .bind(json)
        .bind(seq)
        .bind(head.to_vec())
        .bind(tenant)
        .bind(expected.map(|e| e.0))
        .bind(expected.map(|e| e.1.to_vec()))
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?
        .try_get("moved")
        .map_err(backend)?;
    Ok(moved == 1)
}

/// The columns every read selects, audit_events as `e` and audit_personal as `p`.
const SELECT: &str = "SELECT e.id, e.seq, e.prev_hash, e.hash, e.time, e.tenant_id, e.kind, \
     e.outcome, e.actor_type, e.actor_id, e.subject_type, e.subject_id, e.act_chain, \
     e.client_id, e.mandate_id, e.request_id, e.reason, e.detail, e.personal_commitment, \
     p.salt, p.ip, p.user_agent, p.username, p.email \
     FROM audit_events e LEFT JOIN audit_personal p \
     ON p.tenant_id = e.tenant_id AND p.seq = e.seq";

/// The stored fields of a record, as read (`None`: SQL NULL), in table order.
struct Fields {
    time: i64,
    tenant_id: Option<String>,
    kind: Option<String>,
    outcome: Option<String>,
    actor_type: Option<String>,
    actor_id: Option<String>,
    subject_type: Option<String>,
    subject_id: Option<String>,
    act_chain: Option<String>,
    client_id: Option<String>,
    mandate_id: Option<String>,
    request_id: Option<String>,
    reason: Option<String>,
    detail: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    username: Option<String>,
    email: Option<String>,
}

impl Fields {
    /// The event these fields hold; an error names the first undecodable field.
    fn into_event(self) -> Result<AuditEvent, String> {
        fn required(v: Option<String>, c: &str) -> Result<String, String> {
            v.ok_or_else(|| format!("{c} is missing"))
        }
        fn principal(
            prefix: &str,
            kind: Option<String>,
            id: Option<String>,
        ) -> Result<Option<Principal>, String> {
            match kind {
                None if id.is_none() => Ok(None),
                None => Err(format!("{prefix}_id without {prefix}_type")),
                Some(k) => Principal::from_parts(&k, id)
                    .map(Some)
                    .ok_or_else(|| format!("invalid {prefix}: type {k:?}")),
            }
        }
        let kind = required(self.kind, "kind")?;
        let outcome = required(self.outcome, "outcome")?;
        let detail = required(self.detail, "detail")?;
        let tenant_id = required(self.tenant_id, "tenant_id")?;
        let act_chain = required(self.act_chain, "act_chain")?;
        Ok(AuditEvent {
            time: self.time,
            tenant_id,
            kind: EventKind::parse(&kind).ok_or_else(|| format!("unknown kind {kind:?}"))?,
            outcome: Outcome::parse(&outcome)
                .ok_or_else(|| format!("unknown outcome {outcome:?}"))?,
            reason: self.reason,
            actor: principal("actor", self.actor_type, self.actor_id)?.ok_or("actor is missing")?,
            subject: principal("subject", self.subject_type, self.subject_id)?,
            act_chain: if act_chain == "[]" {
                Vec::new()
            } else {
                serde_json::from_str(&act_chain).map_err(|e| format!("act_chain: {e}"))?
            },
            client_id: self.client_id,
            mandate_id: self.mandate_id,
            request_id: self.request_id,
            detail: serde_json::from_str(&detail).map_err(|e| format!("detail: {e}"))?,
            personal: Personal {
                ip: self.ip,
                user_agent: self.user_agent,
                username: self.username,
                email: self.email,
            },
        })
    }
}

/// The stored fields of a row back as an event; an error names the first undecodable field.
fn decode_event(row: &AnyRow) -> Result<AuditEvent, String> {
    fn text(row: &AnyRow, c: &str) -> Result<Option<String>, String> {
        row.try_get::<Option<String>, _>(c)
            .map_err(|e| format!("{c}: {e}"))
    }
    Fields {
        time: row.try_get("time").map_err(|e| format!("time: {e}"))?,
        tenant_id: text(row, "tenant_id")?,
        kind: text(row, "kind")?,
        outcome: text(row, "outcome")?,
        actor_type: text(row, "actor_type")?,
        actor_id: text(row, "actor_id")?,
        subject_type: text(row, "subject_type")?,
        subject_id: text(row, "subject_id")?,
        act_chain: text(row, "act_chain")?,
        client_id: text(row, "client_id")?,
        mandate_id: text(row, "mandate_id")?,
        request_id: text(row, "request_id")?,
        reason: text(row, "reason")?,
        detail: text(row, "detail")?,
        ip: text(row, "ip")?,
        user_agent: text(row, "user_agent")?,
        username: text(row, "username")?,
        email: text(row, "email")?,
    }
    .into_event()
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

/// The records of one page of [`AuditLog::audit_chain`], packed by the database into one JSON
/// text: `[[[id, seq, prev_hash, hash, time, tenant_id, kind, outcome, actor_type, actor_id,
/// subject_type, subject_id], [act_chain, client_id, mandate_id, request_id, reason, detail,
/// personal_commitment, salt, ip, user_agent, username, email]], …]`, byte strings in hex.
/// One row per page instead of one per record: decoding rows column by column through the
/// driver cost more than hashing them. The two halves are joined as text (not nested JSON
/// arrays, which SQLite would parse again).
fn packed_page_sql(backend: Backend, range: &str) -> String {
    let (array, hex, hex_opt, agg) = match backend {
        Backend::Sqlite => (
            "json_array",
            "hex(COL)",
            // hex(NULL) is '' in SQLite; keep NULL apart from an empty value.
            "iif(COL IS NULL, NULL, hex(COL))",
            "group_concat(r, ',' ORDER BY seq, id)",
        ),
        Backend::Postgres => (
            "json_build_array",
            "encode(COL, 'hex')",
            "encode(COL, 'hex')",
            "string_agg(r, ',' ORDER BY seq, id)",
        ),
    };
    let hex = |c: &str| hex.replace("COL", c);
    let hex_opt = |c: &str| hex_opt.replace("COL", c);
    let cast = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => "::text",
    };
    format!(
        "SELECT '[' || {agg} || ']' FROM (SELECT e.seq AS seq, e.id AS id, \
         '[' || {array}(e.id, e.seq, {prev}, {hash}, e.time, e.tenant_id, e.kind, e.outcome, \
         e.actor_type, e.actor_id, e.subject_type, e.subject_id){cast} || ',' || \
         {array}(e.act_chain, e.client_id, e.mandate_id, e.request_id, e.reason, e.detail, \
         {commitment}, {salt}, p.ip, p.user_agent, p.username, p.email){cast} || ']' AS r \
         FROM audit_events e LEFT JOIN audit_personal p \
         ON p.tenant_id = e.tenant_id AND p.seq = e.seq \
         WHERE e.tenant_id = $1 AND {range} ORDER BY e.seq, e.id LIMIT $5) page",
        prev = hex("e.prev_hash"),
        hash = hex("e.hash"),
        commitment = hex_opt("e.personal_commitment"),
        salt = hex_opt("p.salt"),
    )
}

type Opt = Option<String>;
/// The first half of a packed record (see [`packed_page_sql`]).
type PackedHead = (
    i64,
    i64,
    String,
    String,
    i64,
    Opt,
    Opt,
    Opt,
    Opt,
    Opt,
    Opt,
    Opt,
);
/// The second half.
type PackedTail = (Opt, Opt, Opt, Opt, Opt, Opt, Opt, Opt, Opt, Opt, Opt, Opt);

/// Decode a packed page; `None` when it is not what [`packed_page_sql`] produces.
fn unpack_page(text: &str) -> Option<Vec<ChainRecord>> {
    let rows: Vec<(PackedHead, PackedTail)> = serde_json::from_str(text).ok()?;
    let mut out = Vec::with_capacity(rows.len());
    for (head, tail) in rows {
        let (row_id, seq, prev_hash, hash, time, tenant_id, kind, outcome) = (
            head.0, head.1, head.2, head.3, head.4, head.5, head.6, head.7,
        );
        let (actor_type, actor_id, subject_type, subject_id) = (head.8, head.9, head.10, head.11);
        let (act_chain, client_id, mandate_id, request_id, reason, detail) =
            (tail.0, tail.1, tail.2, tail.3, tail.4, tail.5);
        let (commitment, salt, ip, user_agent, username, email) =
            (tail.6, tail.7, tail.8, tail.9, tail.10, tail.11);
        let opt_hex = |h: Option<String>| match h {
            None => Some(None),
            Some(h) => unhex(&h).map(Some),
        };
        out.push(ChainRecord {
            row_id,
            seq,
            prev_hash: unhex(&prev_hash)?,
            hash: unhex(&hash)?,
            personal_commitment: opt_hex(commitment)?,
            personal_salt: opt_hex(salt)?,
            event: Fields {
                time,
                tenant_id,
                kind,
                outcome,
                actor_type,
                actor_id,
                subject_type,
                subject_id,
                act_chain,
                client_id,
                mandate_id,
                request_id,
                reason,
                detail,
                ip,
                user_agent,
                username,
                email,
            }
            .into_event(),
        });
    }
    Some(out)
}

/// Value of each hexadecimal digit (either case); 0xFF for anything else.
const HEX: [u8; 256] = {
    let mut t = [0xFF_u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Hexadecimal (either case) to bytes (a table lookup per digit: verify decodes three hashes
/// per record).
fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 2);
    for p in s.chunks_exact(2) {
        let (hi, lo) = (HEX[p[0] as usize], HEX[p[1] as usize]);
        if (hi | lo) & 0xF0 != 0 {
            return None;
        }
        out.push(hi << 4 | lo);
    }
    Some(out)
}

/// Records strictly after the position ($2 = $3 = seq, $4 = row id).
const AFTER: &str = "e.seq >= $2 AND (e.seq > $3 OR (e.seq = $3 AND e.id > $4))";
/// Records with $2 < seq <= $3 ($4 unused but bound, so both shapes take the same parameters).
const SPAN: &str = "e.seq > $2 AND e.seq <= $3 AND $4 = $4";

impl SqlStore {
    /// One page in chain order, packed by the database (see [`packed_page_sql`]); falls back
    /// to [`Self::audit_chain_rows`] when the packed form cannot carry what is stored.
    async fn packed_chain(
        &self,
        tenant_id: &str,
        range: (&str, i64, i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<ChainRecord>> {
        let sql = packed_page_sql(self.backend(), range.0);
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(range.1)
            .bind(range.2)
            .bind(range.3)
            .bind(i64::from(limit))
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        let page = match row.try_get::<Option<String>, _>(0) {
            Ok(Some(page)) => page,
            Ok(None) => return Ok(Vec::new()),
            // Not UTF-8 (only tampering stores that): see below.
            Err(_) => return self.audit_chain_rows(tenant_id, range, limit).await,
        };
        // Decoding a page is CPU work (JSON, events): keep it off the async worker, so that
        // a verifier can hash the previous page meanwhile.
        let unpacked = tokio::task::spawn_blocking(move || unpack_page(&page))
            .await
            .map_err(|e| StoreError::Backend(format!("decoding audit records: {e}")))?;
        match unpacked {
            Some(records) => Ok(records),
            // Text the packed form cannot carry (only tampering stores it): read row by row,
            // which reports it as the record's decoding error.
            None => self.audit_chain_rows(tenant_id, range, limit).await,
        }
    }

    /// [`AuditLog::audit_chain`] read row by row: slower, but it reports every field that
    /// cannot be decoded on the record that holds it.
    async fn audit_chain_rows(
        &self,
        tenant_id: &str,
        (range, a, b, c): (&str, i64, i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<ChainRecord>> {
        let sql =
            format!("{SELECT} WHERE e.tenant_id = $1 AND {range} ORDER BY e.seq, e.id LIMIT $5");
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(a)
            .bind(b)
            .bind(c)
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
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn audit_chain(
        &self,
        tenant_id: &str,
        after: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<ChainRecord>> {
        self.packed_chain(tenant_id, (AFTER, after.0, after.0, after.1), limit)
            .await
    }

    async fn audit_chain_span(
        &self,
        tenant_id: &str,
        seqs: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<ChainRecord>> {
        self.packed_chain(tenant_id, (SPAN, seqs.0, seqs.1, 0), limit)
            .await
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
        wait.await
            .map_err(|_| gone())?
            .map_err(StoreError::Backend)?;
        if mandate_core::ssf::events::SIGNAL_KINDS.contains(&e.kind) {
            self.ssf_wake.notify_one();
        }
        Ok(())
    }
}
