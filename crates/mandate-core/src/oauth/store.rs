//! The storage the OAuth rules need: grants with their codes, refresh and access tokens, remembered consent, and one-time values (assertion and proof `jti`s).
//! Implemented by mandate-store for SQLite and PostgreSQL; every method is a single atomic
//! step.

use async_trait::async_trait;

use crate::domain::model::{AuthCode, Consent, Grant, RefreshToken};
use crate::error::StoreResult;

/// Outcome of trying to spend a single-use artefact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spend<T> {
    /// It was unused; it is now spent and this call owns it.
    Fresh(T),
    /// It had been spent before (or its grant is revoked): a replay.
    Replayed(T),
    /// No such artefact.
    Unknown,
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn consent(
        &self,
        tenant_id: &str,
        user_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<Consent>>;
    /// Insert or replace.
    /// Every consent a user has given, by client.
    async fn consents(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<Consent>>;
    async fn put_consent(&self, consent: &Consent) -> StoreResult<()>;
    async fn delete_consent(
        &self,
        tenant_id: &str,
        user_id: &str,
        client_id: &str,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn create_grant(&self, grant: &Grant) -> StoreResult<()>;
    async fn grant(&self, tenant_id: &str, grant_id: &str) -> StoreResult<Option<Grant>>;
    /// Revoke a grant: its refresh tokens and recorded access tokens become invalid.
    async fn revoke_grant(&self, tenant_id: &str, grant_id: &str, now: i64) -> StoreResult<bool>;
    /// Revoke every grant made in a browser session (logout).
    async fn revoke_session_grants(&self, tenant_id: &str, sid: &str, now: i64)
    -> StoreResult<u64>;
    /// Revoke every live grant a user gave one client (consent withdrawn); returns their ids.
    async fn revoke_client_grants(
        &self,
        tenant_id: &str,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<Vec<String>>;

    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()>;
    /// Look a code up without spending it, whatever its state; `consumed` tells if it was used.
    async fn code(&self, tenant_id: &str, digest: &[u8]) -> StoreResult<Option<(AuthCode, bool)>>;
    /// Atomically mark a code used; only one caller ever gets `Fresh`.
    async fn consume_code(
        &self,
        tenant_id: &str,
        digest: &[u8],
        now: i64,
    ) -> StoreResult<Spend<AuthCode>>;

    async fn insert_refresh(&self, token: &RefreshToken) -> StoreResult<()>;
    async fn refresh(&self, tenant_id: &str, digest: &[u8]) -> StoreResult<Option<RefreshToken>>;
    /// Atomically mark a refresh token spent; `Replayed` when spent before or its grant is revoked.
    async fn spend_refresh(
        &self,
        tenant_id: &str,
        digest: &[u8],
        now: i64,
    ) -> StoreResult<Spend<RefreshToken>>;

    /// The opt-in rotation grace period: accept the family's most recently spent token once more
    /// if it was spent at or after `spent_since`; `None` otherwise.
    async fn spend_refresh_in_grace(
        &self,
        tenant_id: &str,
        digest: &[u8],
        spent_since: i64,
        now: i64,
    ) -> StoreResult<Option<RefreshToken>>;

    /// Remember which grant an access token came from, so revoking the grant reaches it.
    async fn record_access_token(
        &self,
        tenant_id: &str,
        jti: &str,
        grant_id: &str,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// Revoke one access token until it expires.
    async fn revoke_access_token(
        &self,
        tenant_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// Revoked directly, or its grant was revoked?
    async fn access_token_revoked(&self, tenant_id: &str, jti: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Record a one-time value (e.g. an assertion `jti`) until `expires_at`; false if seen before.
    async fn first_use(&self, tenant_id: &str, key: &str, expires_at: i64) -> StoreResult<bool>;
}
