//! What the risk signals remember: people's successful sign-ins, failed sign-ins by address,
//! and agents' token requests; each row expires (purged with the rest), and a person's go
//! when the person is erased. Implemented by mandate-store for SQLite and PostgreSQL.

use async_trait::async_trait;

use crate::error::StoreResult;

/// A successful sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInRow {
    pub tenant_id: String,
    pub user_id: String,
    pub at: i64,
    pub address: Option<String>,
    /// Latitude and longitude in tenths of a degree.
    pub place: Option<(i64, i64)>,
    /// The keyed digest of the device cookie.
    pub device: Option<Vec<u8>>,
    pub expires_at: i64,
}

/// A failed sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRow {
    pub tenant_id: String,
    /// The guessing limits' address key (`ip:…`).
    pub address: String,
    /// The guessing limits' account key (a keyed digest of the name typed).
    pub account: String,
    /// The person, when the name was theirs (so erasing them erases it).
    pub user_id: Option<String>,
    pub at: i64,
    pub expires_at: i64,
}

/// Failed sign-ins from one address: how many, and how many account names they tried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressFailures {
    pub failures: i64,
    pub accounts: i64,
}

/// A token an agent asked for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRequestRow {
    pub tenant_id: String,
    pub agent_id: String,
    pub user_id: String,
    pub mandate_id: String,
    pub resources: Vec<String>,
    /// Issued (else refused by the policy: counted for velocity only).
    pub allowed: bool,
    /// The person approved the burst it was part of (a CIBA approval after it): it no longer
    /// counts for velocity.
    pub approved: bool,
    pub at: i64,
    pub expires_at: i64,
}

/// Most rows one read returns: every request's work is bounded.
pub const MAX_ROWS: i64 = crate::domain::risk_policy::MAX_COUNT as i64;

#[async_trait]
pub trait RiskStore: Send + Sync {
    async fn add_sign_in(&self, row: &SignInRow) -> StoreResult<()>;
    /// A person's sign-ins, newest first, at most `limit` (≤ [`MAX_ROWS`]).
    async fn sign_ins(
        &self,
        tenant_id: &str,
        user_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<SignInRow>>;
    async fn add_failure(&self, row: &FailureRow) -> StoreResult<()>;
    /// The latest failures from an address after `since` (at most [`MAX_ROWS`] of them),
    /// counted by the database: one row to read per attempt, however busy the address.
    async fn failures_from(
        &self,
        tenant_id: &str,
        address: &str,
        since: i64,
    ) -> StoreResult<AddressFailures>;
    /// How many failures of an account name after `since` (at most [`MAX_ROWS`]).
    async fn failures_of(&self, tenant_id: &str, account: &str, since: i64) -> StoreResult<i64>;
    async fn add_agent_request(&self, row: &AgentRequestRow) -> StoreResult<()>;
    /// Mark an agent's requests for a person up to `until` approved (the person approved one).
    async fn approve_agent_requests(
        &self,
        tenant_id: &str,
        agent_id: &str,
        user_id: &str,
        until: i64,
    ) -> StoreResult<()>;
    /// An agent's requests for a person, newest first, at most [`MAX_ROWS`].
    async fn agent_requests(
        &self,
        tenant_id: &str,
        agent_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<AgentRequestRow>>;
    /// Suspend an active agent with the reason its owner and people see; false when it is
    /// not active (already suspended, deleted or unknown).
    async fn suspend_agent_with_reason(
        &self,
        tenant_id: &str,
        agent_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<bool>;
}
