//! The storage of CIBA client registrations and backchannel authentication requests.
//! Implemented by mandate-store for SQLite and PostgreSQL; every method is a single atomic
//! step.

use async_trait::async_trait;

use crate::ciba::model::{CibaApproval, CibaRegistration, CibaRequest};
use crate::error::StoreResult;

/// CIBA client registrations and backchannel authentication requests.
#[async_trait]
pub trait CibaStore: Send + Sync {
    /// Insert or replace a client's CIBA registration.
    async fn put_ciba_registration(&self, reg: &CibaRegistration) -> StoreResult<()>;
    async fn ciba_registration(
        &self,
        tenant_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<CibaRegistration>>;
    async fn insert_ciba_request(&self, r: &CibaRequest) -> StoreResult<()>;
    /// By public id, whatever its state.
    async fn ciba_request(&self, tenant_id: &str, id: &str) -> StoreResult<Option<CibaRequest>>;
    /// By the digest of its `auth_req_id`, whatever its state.
    async fn ciba_request_by_digest(
        &self,
        tenant_id: &str,
        digest: &[u8],
    ) -> StoreResult<Option<CibaRequest>>;
    /// The requests still pending for a person at `now`, newest first.
    async fn pending_ciba_requests(
        &self,
        tenant_id: &str,
        user_id: &str,
        now: i64,
    ) -> StoreResult<Vec<CibaRequest>>;
    /// Record the person's decision (`Some`: approved) if the request is still pending and
    /// unexpired at `now`; only one caller ever gets `true`.
    async fn decide_ciba_request(
        &self,
        tenant_id: &str,
        id: &str,
        approval: Option<&CibaApproval>,
        now: i64,
    ) -> StoreResult<bool>;
    /// A poll of a pending request at `now`: `true` when it respects the interval (the poll is
    /// recorded); `false` when too early, and then the interval grows by `step` (`slow_down`).
    async fn poll_ciba_request(
        &self,
        tenant_id: &str,
        id: &str,
        now: i64,
        step: i64,
    ) -> StoreResult<bool>;
    /// Atomically mark an approved request consumed; only one caller ever gets `true`.
    async fn consume_ciba_request(&self, tenant_id: &str, id: &str, now: i64) -> StoreResult<bool>;
    /// Forget the `auth_req_id` kept for a ping.
    async fn clear_ciba_ping(&self, tenant_id: &str, id: &str) -> StoreResult<()>;
}
