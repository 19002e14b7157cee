//! The storage the SSF transmitter needs: streams, a per-tenant cursor over the audit log, and
//! an outbox of signed SETs per stream. `mandate-store` implements it for SQLite and PostgreSQL.

use async_trait::async_trait;

use super::model::Stream;
use crate::error::StoreResult;

/// A signed SET waiting for its stream's receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedSet {
    pub tenant_id: String,
    pub stream_id: String,
    pub jti: String,
    /// The compact JWS.
    pub set: String,
    pub created_at: i64,
}

/// A push SET claimed for one delivery attempt, with where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedSet {
    /// The outbox row, for [`SsfStore::ssf_delivered`] and [`SsfStore::ssf_retry`].
    pub id: i64,
    pub tenant_id: String,
    pub stream_id: String,
    pub jti: String,
    pub set: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub endpoint_url: String,
    pub authorization_header: Option<String>,
}

/// A tenant whose audit log has records its SSF cursor has not passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub tenant_id: String,
    pub tenant_name: String,
    /// The last audit `seq` turned into SETs.
    pub cursor: i64,
    /// The tenant's audit head `seq`.
    pub head: i64,
}

/// Streams, the audit cursor and the outbox.
#[async_trait]
pub trait SsfStore: Send + Sync {
    /// Notified (`notify_one`) each time this process has durably recorded an audit event of
    /// a kind that can become a SET, so that the transmitter need not wait for its next tick.
    /// Records written by other processes (the CLI, other nodes) are found by the tick.
    fn signals(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// Store a new stream, and start the tenant's cursor at the stream's `start_seq` if the
    /// tenant has none yet.
    async fn create_stream(&self, stream: &Stream) -> StoreResult<()>;
    async fn stream(&self, tenant_id: &str, id: &str) -> StoreResult<Option<Stream>>;
    /// Every stream of a tenant, oldest first.
    async fn streams(&self, tenant_id: &str) -> StoreResult<Vec<Stream>>;
    /// Replace a stream's configuration and status; false when it no longer exists.
    async fn update_stream(&self, stream: &Stream) -> StoreResult<bool>;
    /// Delete a stream and everything queued for it; false when there was none.
    async fn delete_stream(&self, tenant_id: &str, id: &str) -> StoreResult<bool>;
    /// Tenants with streams whose audit head is past their cursor.
    async fn ssf_backlog(&self) -> StoreResult<Vec<Backlog>>;
    /// Queue `sets`, and when `cursor` = `(from, to)` is given move the tenant's cursor from
    /// `from` to `to` in the same transaction. False, with nothing written, when the cursor is
    /// no longer at `from` (another node got there first).
    async fn ssf_enqueue(
        &self,
        tenant_id: &str,
        cursor: Option<(i64, i64)>,
        sets: &[QueuedSet],
    ) -> StoreResult<bool>;
    /// Claim up to `limit` SETs of enabled push streams that are due at `now`, each for one
    /// attempt: it is not due again before `lease_until`.
    async fn ssf_claim(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedSet>>;
    /// A claimed SET reached its receiver (or was refused for good): forget it.
    async fn ssf_delivered(&self, id: i64) -> StoreResult<()>;
    /// A claimed SET could not be delivered: try again at `at`.
    async fn ssf_retry(&self, id: i64, at: i64) -> StoreResult<()>;
    /// Up to `limit` SETs queued for a stream, oldest first.
    async fn ssf_queued(
        &self,
        tenant_id: &str,
        stream_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<QueuedSet>>;
    /// Forget the SETs a poll receiver acknowledged (or reported errors for); returns how many
    /// were queued.
    async fn ssf_ack(&self, tenant_id: &str, stream_id: &str, jtis: &[String]) -> StoreResult<u64>;
}
