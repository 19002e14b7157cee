//! The audit trail: appended by the group-commit writer (`writer`, with one module per
//! database for the write itself), read and verified here.
//!
//! Each tenant's records form a hash chain (`mandate_core::audit::chain`); `audit_heads` holds
//! each tenant's last (seq, hash), and is the row a writer locks or moves to append.
//!
//! Verification reads the log a page at a time. On SQLite the database packs a page into one
//! JSON text (see `packed_page_sql`): decoding a row per record through the `Any` driver cost
//! more than the hashing. On PostgreSQL a native pool reads plain binary rows, which cost the
//! server far less than building that JSON.

use async_trait::async_trait;
use mandate_core::StoreError;
use mandate_core::audit::chain::{ChainRecord, Checkpoint};
use mandate_core::audit::{AuditEvent, EventKind, Outcome, Personal, Principal};
use mandate_core::store::{AuditLog, AuditQuery, AuditRecord, AuditSink, StoreResult};
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::oneshot;

use crate::connect::{Backend, SqlStore};
use crate::error::backend;

mod head;
mod postgres;
mod record;
mod sqlite;
pub(crate) mod writer;

use record::encoding;
pub(crate) use writer::Pending;

/// The columns every read selects, audit_events as `e`.
const SELECT: &str = "SELECT e.id, e.seq, e.prev_hash, e.hash, e.time, e.tenant_id, e.kind, \
     e.outcome, e.actor_type, e.actor_id, e.subject_type, e.subject_id, e.act_chain, \
     e.client_id, e.mandate_id, e.request_id, e.reason, e.detail, e.personal_commitment, \
     e.salt, e.ip, e.user_agent, e.username, e.email FROM audit_events e";

/// The stored fields of a record, as read (`None`: SQL NULL), in table order (also the order
/// of a packed record's tail, read as a sequence).
#[derive(serde::Deserialize)]
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

impl Fields {
    /// The event for verification, with the detail handed over as stored text, unparsed (see
    /// [`ChainRecord::stored_detail`]): the event's own detail is `null`.
    fn into_chain_event(mut self) -> (Result<AuditEvent, String>, Option<String>) {
        let text = self.detail.take();
        if text.is_some() {
            self.detail = Some("null".into());
        }
        (self.into_event(), text)
    }
}

/// The stored fields of a row back as an event; an error names the first undecodable field.
fn decode_event(row: &AnyRow) -> Result<AuditEvent, String> {
    decode_fields(row)?.into_event()
}

/// The columns of [`SELECT`], in order: rows are read by position (looking a column up by name
/// was a tenth of reading a page).
const COLUMNS: [&str; 24] = [
    "id",
    "seq",
    "prev_hash",
    "hash",
    "time",
    "tenant_id",
    "kind",
    "outcome",
    "actor_type",
    "actor_id",
    "subject_type",
    "subject_id",
    "act_chain",
    "client_id",
    "mandate_id",
    "request_id",
    "reason",
    "detail",
    "personal_commitment",
    "salt",
    "ip",
    "user_agent",
    "username",
    "email",
];

/// Positions in [`COLUMNS`].
mod col {
    pub(super) const ID: usize = 0;
    pub(super) const SEQ: usize = 1;
    pub(super) const PREV_HASH: usize = 2;
    pub(super) const HASH: usize = 3;
    pub(super) const TIME: usize = 4;
    pub(super) const TENANT_ID: usize = 5;
    pub(super) const KIND: usize = 6;
    pub(super) const OUTCOME: usize = 7;
    pub(super) const ACTOR_TYPE: usize = 8;
    pub(super) const ACTOR_ID: usize = 9;
    pub(super) const SUBJECT_TYPE: usize = 10;
    pub(super) const SUBJECT_ID: usize = 11;
    pub(super) const ACT_CHAIN: usize = 12;
    pub(super) const CLIENT_ID: usize = 13;
    pub(super) const MANDATE_ID: usize = 14;
    pub(super) const REQUEST_ID: usize = 15;
    pub(super) const REASON: usize = 16;
    pub(super) const DETAIL: usize = 17;
    pub(super) const PERSONAL_COMMITMENT: usize = 18;
    pub(super) const SALT: usize = 19;
    pub(super) const IP: usize = 20;
    pub(super) const USER_AGENT: usize = 21;
    pub(super) const USERNAME: usize = 22;
    pub(super) const EMAIL: usize = 23;
}

/// The value of column `at` of [`SELECT`] in `row` (an error names the column).
fn column<'r, R: Row, T>(row: &'r R, at: usize) -> Result<T, String>
where
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    row.try_get(at).map_err(|e| format!("{}: {e}", COLUMNS[at]))
}

/// The stored fields of a row of [`SELECT`] (of either driver); an error names the first field
/// that is not what it should be.
fn decode_fields<R: Row>(row: &R) -> Result<Fields, String>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(Fields {
        time: column(row, col::TIME)?,
        tenant_id: column(row, col::TENANT_ID)?,
        kind: column(row, col::KIND)?,
        outcome: column(row, col::OUTCOME)?,
        actor_type: column(row, col::ACTOR_TYPE)?,
        actor_id: column(row, col::ACTOR_ID)?,
        subject_type: column(row, col::SUBJECT_TYPE)?,
        subject_id: column(row, col::SUBJECT_ID)?,
        act_chain: column(row, col::ACT_CHAIN)?,
        client_id: column(row, col::CLIENT_ID)?,
        mandate_id: column(row, col::MANDATE_ID)?,
        request_id: column(row, col::REQUEST_ID)?,
        reason: column(row, col::REASON)?,
        detail: column(row, col::DETAIL)?,
        ip: column(row, col::IP)?,
        user_agent: column(row, col::USER_AGENT)?,
        username: column(row, col::USERNAME)?,
        email: column(row, col::EMAIL)?,
    })
}

/// SQL that is true when column `col` contains the text of parameter `param`, case-sensitively
/// (LIKE is not, on SQLite).
fn contains(backend: Backend, col: &str, param: usize) -> String {
    match backend {
        Backend::Sqlite => format!("instr({col}, ${param}) > 0"),
        Backend::Postgres => format!("strpos({col}, ${param}) > 0"),
    }
}

/// SQLite: the records of one page of [`AuditLog::audit_chain`], packed by the database into
/// one JSON text: one flat JSON array per record ([`Packed`]'s fields in order, byte strings in
/// hex), one after the other (no enclosing array, which would copy the whole page once more).
/// One row per page instead of one per record: decoding rows column by column through the
/// `Any` driver cost more than hashing them. The records come in the subquery's order
/// ([`unpack_page`] sorts if they ever did not): an ORDER BY in `group_concat` would sort every
/// record's text again.
fn packed_page_sql(range: &str) -> String {
    // hex(NULL) is '' in SQLite; keep NULL apart from an empty value.
    let hex_opt = |c: &str| format!("iif({c} IS NULL, NULL, hex({c}))");
    format!(
        "SELECT group_concat(r, '') FROM (SELECT e.seq AS seq, e.id AS id, \
         json_array(e.id, e.seq, hex(e.prev_hash), hex(e.hash), {commitment}, {salt}, e.time, \
         e.tenant_id, e.kind, e.outcome, e.actor_type, e.actor_id, e.subject_type, \
         e.subject_id, e.act_chain, e.client_id, e.mandate_id, e.request_id, e.reason, \
         e.detail, e.ip, e.user_agent, e.username, e.email) AS r \
         FROM audit_events e \
         WHERE e.tenant_id = $1 AND {range} ORDER BY e.seq, e.id LIMIT $5) page",
        commitment = hex_opt("e.personal_commitment"),
        salt = hex_opt("e.salt"),
    )
}

/// One record as [`packed_page_sql`] packs it: a flat JSON array of these six values, then the
/// record's [`Fields`] in their order.
struct Packed {
    row_id: i64,
    seq: i64,
    prev_hash: String,
    hash: String,
    personal_commitment: Option<String>,
    personal_salt: Option<String>,
    fields: Fields,
}

impl<'de> serde::Deserialize<'de> for Packed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Packed;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a packed audit record")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Packed, A::Error> {
                use serde::de::Error;
                fn next<'de, T: serde::Deserialize<'de>, A: serde::de::SeqAccess<'de>>(
                    a: &mut A,
                ) -> Result<T, A::Error> {
                    a.next_element()?
                        .ok_or_else(|| A::Error::custom("packed audit record too short"))
                }
                Ok(Packed {
                    row_id: next(&mut a)?,
                    seq: next(&mut a)?,
                    prev_hash: next(&mut a)?,
                    hash: next(&mut a)?,
                    personal_commitment: next(&mut a)?,
                    personal_salt: next(&mut a)?,
                    // The rest of the same array.
                    fields: serde::Deserialize::deserialize(
                        serde::de::value::SeqAccessDeserializer::new(a),
                    )?,
                })
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// Decode a packed page; `None` when it is not what [`packed_page_sql`] produces.
fn unpack_page(text: &str) -> Option<Vec<ChainRecord>> {
    let rows = serde_json::Deserializer::from_str(text).into_iter::<Packed>();
    // About 700 bytes of text per record.
    let mut out = Vec::with_capacity(text.len() / 600 + 1);
    for row in rows {
        let p = row.ok()?;
        let opt_hex = |h: Option<String>| match h {
            None => Some(None),
            Some(h) => unhex(&h).map(Some),
        };
        let (event, stored_detail) = p.fields.into_chain_event();
        out.push(ChainRecord {
            row_id: p.row_id,
            seq: p.seq,
            prev_hash: unhex(&p.prev_hash)?,
            hash: unhex(&p.hash)?,
            personal_commitment: opt_hex(p.personal_commitment)?,
            personal_salt: opt_hex(p.personal_salt)?,
            event,
            stored_detail,
        });
    }
    if !out.is_sorted_by_key(|r| (r.seq, r.row_id)) {
        out.sort_by_key(|r| (r.seq, r.row_id));
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
    /// One page in chain order: on PostgreSQL binary rows ([`Self::postgres_chain`]); on
    /// SQLite packed by the database (see [`packed_page_sql`]), falling back to
    /// [`Self::audit_chain_rows`] when the packed form cannot carry what is stored.
    async fn chain_page(
        &self,
        tenant_id: &str,
        range: (&str, i64, i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<ChainRecord>> {
        if let Some(reads) = &self.chain_reads {
            return self.postgres_chain(reads, tenant_id, range, limit).await;
        }
        let sql = packed_page_sql(range.0);
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

    /// [`AuditLog::audit_chain`] on PostgreSQL: plain rows through the native pool, binary
    /// columns decoded on a blocking thread (see [`chain_page`](Self::chain_page)).
    async fn postgres_chain(
        &self,
        reads: &sqlx::PgPool,
        tenant_id: &str,
        (range, a, b, c): (&str, i64, i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<ChainRecord>> {
        // A span is read in `seq` order alone, which the unique (tenant_id, seq) index gives
        // without a sort (sorting by id too was half the server's time); records sharing a
        // number (only if that constraint was dropped) are put in id order here. Paging after
        // a position needs both keys.
        let order = if range == SPAN {
            "e.seq"
        } else {
            "e.seq, e.id"
        };
        let sql = format!("{SELECT} WHERE e.tenant_id = $1 AND {range} ORDER BY {order} LIMIT $5");
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(a)
            .bind(b)
            .bind(c)
            .bind(i64::from(limit))
            .fetch_all(reads)
            .await
            .map_err(backend)?;
        tokio::task::spawn_blocking(move || {
            let mut records = rows
                .iter()
                .map(chain_record)
                .collect::<StoreResult<Vec<_>>>()?;
            if !records.is_sorted_by_key(|r| (r.seq, r.row_id)) {
                records.sort_by_key(|r| (r.seq, r.row_id));
            }
            Ok(records)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("decoding audit records: {e}")))?
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
        rows.iter().map(chain_record).collect()
    }
}

/// A row of [`SELECT`] (of either driver) as a record to verify.
fn chain_record<R: Row>(row: &R) -> StoreResult<ChainRecord>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let (event, stored_detail) = match decode_fields(row) {
        Ok(fields) => fields.into_chain_event(),
        Err(why) => (Err(why), None),
    };
    let stored = StoreError::Backend;
    Ok(ChainRecord {
        row_id: column(row, col::ID).map_err(stored)?,
        seq: column(row, col::SEQ).map_err(stored)?,
        prev_hash: column(row, col::PREV_HASH).map_err(stored)?,
        hash: column(row, col::HASH).map_err(stored)?,
        event,
        stored_detail,
        personal_commitment: column(row, col::PERSONAL_COMMITMENT).map_err(stored)?,
        personal_salt: column(row, col::SALT).map_err(stored)?,
    })
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn audit_chain(
        &self,
        tenant_id: &str,
        after: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<ChainRecord>> {
        self.chain_page(tenant_id, (AFTER, after.0, after.0, after.1), limit)
            .await
    }

    async fn audit_chain_span(
        &self,
        tenant_id: &str,
        seqs: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<ChainRecord>> {
        self.chain_page(tenant_id, (SPAN, seqs.0, seqs.1, 0), limit)
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
                // Whatever a request supplied is cut to a bound before it is chained.
                event: e.clone().bounded(),
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
