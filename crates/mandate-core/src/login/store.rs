//! The storage the sign-in rules need: password-guessing counters shared by every node, and browser sessions.
//! Implemented by mandate-store for SQLite and PostgreSQL; every method is a single atomic
//! step.

use async_trait::async_trait;

use crate::domain::model::Session;
use crate::error::StoreResult;

/// A password-guessing counter of one account name or client address (the `throttle` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginCounter {
    /// Failed (or not yet judged) attempts since the counter was last reset.
    pub failures: i64,
    pub last_failure_at: i64,
    /// No attempt is checked before this time (0: none waits).
    pub locked_until: i64,
    /// The row may be deleted after this time.
    pub expires_at: i64,
}

/// Login throttling counters, shared by every node through the store.
#[async_trait]
pub trait LoginThrottleStore: Send + Sync {
    async fn login_counter(&self, tenant_id: &str, key: &str) -> StoreResult<Option<LoginCounter>>;
    /// Replace the counter `old` (`None`: no row) by `new` (`None`: delete it) if and only if
    /// it is still `old`, atomically; returns whether it was (compare-and-swap, so concurrent
    /// attempts on any node are each counted).
    async fn swap_login_counter(
        &self,
        tenant_id: &str,
        key: &str,
        old: Option<&LoginCounter>,
        new: Option<&LoginCounter>,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    async fn session(&self, tenant_id: &str, digest: &[u8]) -> StoreResult<Option<Session>>;
    /// A person's live sessions (their signed-in browsers), newest first, at most `limit`.
    async fn user_sessions(
        &self,
        tenant_id: &str,
        user_id: &str,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<Session>>;
    /// Replace a live session's `amr`, `acr`, `auth_time` (a factor was added) and `risk_acr`
    /// (a passkey step owed by a person with none became a second factor); false when it is
    /// gone.
    async fn update_session(&self, session: &Session) -> StoreResult<bool>;
    async fn delete_session(&self, tenant_id: &str, digest: &[u8]) -> StoreResult<bool>;
    /// Delete every session of a user but the one with digest `keep`; returns their `sid`s.
    async fn delete_user_sessions(
        &self,
        tenant_id: &str,
        user_id: &str,
        keep: Option<&[u8]>,
    ) -> StoreResult<Vec<String>>;
}
