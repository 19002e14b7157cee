//! The audit trail's storage port: appending an event to its tenant's chain, and reading the
//! chain back for queries and verification. Owned by the audit module; the store implements it.

use async_trait::async_trait;

use super::{AuditEvent, EventKind};
use crate::error::StoreResult;

#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Record an event durably before returning: append it to its tenant's hash chain (next
    /// `seq`, `prev_hash`, `hash`, see the chain module) and return once committed.
    async fn record(&self, event: &AuditEvent) -> StoreResult<()>;
}

/// Reading a tenant's hash-chained audit log back (see the chain module).
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Up to `limit` records of the tenant's log in chain order (by `seq`, then by storage row),
    /// strictly after the position `after` = (`seq`, `row_id`); `(i64::MIN, i64::MIN)` starts at
    /// the beginning. Every stored row is returned, including ones with impossible sequence
    /// numbers, so that verification sees what tampering left; fields that cannot be decoded
    /// are returned as the record's `event` error.
    async fn audit_chain(
        &self,
        tenant_id: &str,
        after: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<ChainRecord>>;
    /// Up to `limit` records with `seqs.0 < seq <= seqs.1`, in chain order, read like
    /// [`AuditLog::audit_chain`]. Spans need no previous page, so a verifier can read several
    /// at once.
    async fn audit_chain_span(
        &self,
        tenant_id: &str,
        seqs: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<ChainRecord>>;
    /// The tenant's stored head (`seq` and hash of its last record; seq 0 and zero bytes before
    /// the first record), or `None` when nothing was ever recorded for it.
    async fn audit_head(&self, tenant_id: &str) -> StoreResult<Option<Checkpoint>>;
    /// Records of a tenant matching `q`, in `seq` order (descending unless `q.ascending`).
    /// Undecodable records are skipped (verification reports them).
    async fn audit_query(&self, tenant_id: &str, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;
}

/// Filters of an audit query, combined with AND; `None`/empty matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// The principal that performed it (its id, any type).
    pub actor: Option<String>,
    /// On whose behalf (its id).
    pub subject: Option<String>,
    /// An agent anywhere in the act chain, or the acting agent.
    pub agent: Option<String>,
    pub mandate: Option<String>,
    /// Any of these kinds.
    pub kinds: Vec<EventKind>,
    /// `time >= since` (Unix seconds).
    pub since: Option<i64>,
    /// `time < until` (Unix seconds).
    pub until: Option<i64>,
    /// Continue after this sequence number (in the query's order).
    pub cursor: Option<i64>,
    /// Oldest first (export) instead of newest first.
    pub ascending: bool,
    /// At most this many records.
    pub limit: u32,
}

/// A record as a query returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub seq: i64,
    pub hash: Vec<u8>,
    /// With its personal data, where not erased.
    pub event: AuditEvent,
}

/// A chain position: a sequence number and the hash of the record there (seq 0: the chain's genesis hash).
/// Written `SEQ:HASHHEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: Vec<u8>,
}

/// One stored record as read back for verification.
#[derive(Debug, Clone)]
pub struct ChainRecord {
    /// The storage row id: orders rows with equal `seq` (which only tampering creates) and
    /// pages the scan. Not chained.
    pub row_id: i64,
    pub seq: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
    /// The stored fields, or why they could not be decoded (itself a break in the chain).
    /// `personal` holds the stored personal data, empty once erased.
    pub event: Result<AuditEvent, String>,
    /// The chained commitment to the personal data (`None`: the record had none).
    pub personal_commitment: Option<Vec<u8>>,
    /// The salt of the personal data; `None` once erased.
    pub personal_salt: Option<Vec<u8>>,
    /// The detail as stored (JSON text), when the store hands it over unparsed; `event.detail`
    /// is then `null` and not read ([`ChainRecord::full_event`] puts them together). The
    /// writer stores the detail's canonical JSON, which the chain's content check hashes as it is;
    /// only text that does not match (older records, or a changed one) is parsed. Parsing was
    /// most of the cost of decoding a record.
    pub stored_detail: Option<String>,
}
