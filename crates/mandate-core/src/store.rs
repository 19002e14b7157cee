//! The narrow storage traits the protocol rules need. The registry's (tenants, keys, clients,
//! users) are here; every other folder owns its port (`agents/store.rs`, `oauth/store.rs`,
//! `login/store.rs`, `login/webauthn/store.rs`, `login/totp/store.rs`, `access/store.rs`, `ciba/store.rs`, `audit/store.rs`, `ssf/store.rs`),
//! re-exported here with the combined [`Store`] the server holds. `mandate-store` implements
//! them for SQLite and PostgreSQL; every method is a single atomic step.

use async_trait::async_trait;

pub use crate::access::store::{RoleGrant, RoleStore};
pub use crate::agents::store::{AgentStore, ExchangeLookup, MandateSelector, MandateStore};
pub use crate::audit::store::{AuditLog, AuditQuery, AuditRecord, AuditSink};
pub use crate::ciba::store::CibaStore;
use crate::domain::model::{Client, Tenant, User};
pub use crate::login::recovery::store::AccountTokenStore;
pub use crate::login::store::{LoginCounter, LoginThrottleStore, SessionStore};
pub use crate::login::totp::store::TotpStore;
pub use crate::login::webauthn::store::PasskeyStore;
pub use crate::oauth::store::{ConsentStore, GrantStore, ReplayStore, Spend};
pub use crate::risk::store::RiskStore;
use mandate_token::jwk::KeyRecord;

pub use crate::error::StoreResult;

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Create a tenant together with its first keys, atomically.
    async fn create_tenant(&self, tenant: &Tenant, keys: &[KeyRecord]) -> StoreResult<()>;
    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>>;
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>>;
    /// Replace a tenant's settings; false when no such tenant.
    async fn set_tenant_settings(
        &self,
        tenant_id: &str,
        settings: &crate::domain::model::TenantSettings,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn keys(&self, tenant_id: &str) -> StoreResult<Vec<KeyRecord>>;
    /// Retire every current key of the tenant (published until `publish_until`) and add `new`.
    async fn rotate_keys(
        &self,
        tenant_id: &str,
        new: &[KeyRecord],
        now: i64,
        publish_until: i64,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn create_client(&self, client: &Client) -> StoreResult<()>;
    async fn client(&self, tenant_id: &str, client_id: &str) -> StoreResult<Option<Client>>;
    /// Every client of a tenant, oldest first.
    async fn list_clients(&self, tenant_id: &str) -> StoreResult<Vec<Client>>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    async fn user_by_username(&self, tenant_id: &str, username: &str) -> StoreResult<Option<User>>;
    async fn user(&self, tenant_id: &str, id: &str) -> StoreResult<Option<User>>;
    /// Set or remove (`None`: a passkey-only account) a user's password hash; false when no
    /// such user.
    async fn set_password_hash(
        &self,
        tenant_id: &str,
        user_id: &str,
        hash: Option<&str>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Erase a user (GDPR Art. 17) in one transaction: the user, their sessions, consents,
    /// grants with every code and token of them, and the personal data of their audit records
    /// (those whose data subject they are, or that name their username or e-mail). The audit
    /// records themselves stay and still verify. Grants are marked revoked at `now` (so their
    /// access tokens stay refused until they expire). Returns whether the user existed.
    async fn erase_user(&self, tenant_id: &str, user: &User, now: i64) -> StoreResult<bool>;
    /// The users with this e-mail address (compared exactly), at most two: enough to tell
    /// whether it names one account.
    async fn users_by_email(&self, tenant_id: &str, email: &str) -> StoreResult<Vec<User>>;
    /// Mark a user's address verified if it is still `email`; false otherwise.
    async fn set_email_verified(
        &self,
        tenant_id: &str,
        user_id: &str,
        email: &str,
        now: i64,
    ) -> StoreResult<bool>;
}

/// Everything a Mandate server needs from storage.
#[async_trait]
pub trait Store:
    TenantStore
    + KeyStore
    + ClientStore
    + UserStore
    + LoginThrottleStore
    + SessionStore
    + PasskeyStore
    + TotpStore
    + AccountTokenStore
    + ConsentStore
    + GrantStore
    + ReplayStore
    + AuditSink
    + AuditLog
    + AgentStore
    + MandateStore
    + CibaStore
    + RoleStore
    + RiskStore
    + crate::ssf::store::SsfStore
{
    /// Delete expired codes, sessions, replay entries and revocation records.
    async fn purge_expired(&self, now: i64) -> StoreResult<u64>;
}
