//! The narrow storage traits the protocol rules need. `mandate-store` implements them for
//! SQLite and PostgreSQL; every method is a single atomic step.

use async_trait::async_trait;

pub use crate::audit::store::{AuditLog, AuditQuery, AuditRecord, AuditSink};
use crate::ciba::model::{CibaApproval, CibaRegistration, CibaRequest};
use crate::domain::agents::{Agent, AgentStatus, Mandate};
use crate::domain::model::{AuthCode, Client, Consent, Grant, RefreshToken, Session, Tenant, User};
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
    /// Erase a user (GDPR Art. 17) in one transaction: the user, their sessions, consents,
    /// grants with every code and token of them, and the personal data of their audit records
    /// (those whose data subject they are, or that name their username or e-mail). The audit
    /// records themselves stay and still verify. Grants are marked revoked at `now` (so their
    /// access tokens stay refused until they expire). Returns whether the user existed.
    async fn erase_user(&self, tenant_id: &str, user: &User, now: i64) -> StoreResult<bool>;
}

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
    async fn delete_session(&self, tenant_id: &str, digest: &[u8]) -> StoreResult<bool>;
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

/// A role a person holds in a tenant (the role's name, as the admin module's `Role` spells it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub tenant_id: String,
    pub user_id: String,
    pub role: String,
    pub granted_at: i64,
    /// Who granted it, as the audit trail names them.
    pub granted_by: String,
}

/// Roles of people: what a person's own token may do at the admin API (never a client's scope
/// alone).
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Grant a role; false when the person already held it.
    async fn grant_role(&self, grant: &RoleGrant) -> StoreResult<bool>;
    /// Revoke a role; false when the person did not hold it.
    async fn revoke_role(&self, tenant_id: &str, user_id: &str, role: &str) -> StoreResult<bool>;
    /// The roles a person holds.
    async fn user_roles(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<String>>;
    /// Every role held in a tenant, oldest first.
    async fn role_grants(&self, tenant_id: &str) -> StoreResult<Vec<RoleGrant>>;
}

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

/// The agent registry.
#[async_trait]
pub trait AgentStore: Send + Sync {
    async fn create_agent(&self, agent: &Agent) -> StoreResult<()>;
    async fn agent(&self, tenant_id: &str, id: &str) -> StoreResult<Option<Agent>>;
    async fn list_agents(&self, tenant_id: &str) -> StoreResult<Vec<Agent>>;
    /// Set the status (and `updated_at`); false when no such agent or it is deleted.
    async fn set_agent_status(
        &self,
        tenant_id: &str,
        id: &str,
        status: AgentStatus,
        now: i64,
    ) -> StoreResult<bool>;
}

/// Which mandates to revoke.
#[derive(Debug, Clone, Copy)]
pub enum MandateSelector<'a> {
    One(&'a str),
    /// Every mandate given to this agent.
    Agent(&'a str),
    /// Every mandate this user gave (all their agents).
    User(&'a str),
}

/// What [`MandateStore::exchange_context`] looks up.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeLookup<'a> {
    /// The subject token's `jti`.
    pub jti: &'a str,
    /// Its act chain plus the exchanging agent.
    pub agents: &'a [String],
    /// Its `mandate` claim (a further hop).
    pub subject_mandate: Option<&'a str>,
    /// The person (`sub`).
    pub user_id: &'a str,
    /// The exchanging agent.
    pub agent_id: &'a str,
}

/// Mandates (user → agent delegations).
#[async_trait]
pub trait MandateStore: Send + Sync {
    async fn create_mandate(&self, mandate: &Mandate) -> StoreResult<()>;
    async fn mandate(&self, tenant_id: &str, id: &str) -> StoreResult<Option<Mandate>>;
    /// Every mandate a user gave, newest first (including revoked and expired).
    async fn user_mandates(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<Mandate>>;
    /// Revoke the selected mandates still in force; returns their ids.
    async fn revoke_mandates(
        &self,
        tenant_id: &str,
        which: MandateSelector<'_>,
        now: i64,
    ) -> StoreResult<Vec<String>>;
    /// Is a token that names these agents (its client and act chain) and this mandate dead:
    /// an agent suspended or deleted, or the mandate revoked or expired at `now`? One query.
    async fn delegation_inactive(
        &self,
        tenant_id: &str,
        agents: &[String],
        mandate: Option<&str>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Everything a token exchange needs from storage, in one round trip: whether the subject
    /// token is dead (as [`MandateStore::access_token_inactive`], with `agents` = its chain and
    /// the exchanging agent, so a suspended agent counts), and the mandates that could cover
    /// the exchange: the subject token's own mandate (further hop, whatever its state), or the
    /// mandates in force from `user_id` to `agent_id`, newest first (none once the user is gone).
    async fn exchange_context(
        &self,
        tenant_id: &str,
        q: ExchangeLookup<'_>,
        now: i64,
    ) -> StoreResult<(bool, Vec<Mandate>)>;
    /// Is this access token dead for any reason, in one round trip: the token or its grant
    /// revoked ([`GrantStore::access_token_revoked`]), or, for a delegated token, its mandate
    /// or an agent of its chain ([`MandateStore::delegation_inactive`]). Every use of a token
    /// asks this, so it is one query.
    async fn access_token_inactive(
        &self,
        tenant_id: &str,
        jti: &str,
        agents: &[String],
        mandate: Option<&str>,
        now: i64,
    ) -> StoreResult<bool>;
}

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

/// Everything a Mandate server needs from storage.
#[async_trait]
pub trait Store:
    TenantStore
    + KeyStore
    + ClientStore
    + UserStore
    + LoginThrottleStore
    + SessionStore
    + ConsentStore
    + GrantStore
    + ReplayStore
    + AuditSink
    + AuditLog
    + AgentStore
    + MandateStore
    + CibaStore
    + RoleStore
    + crate::ssf::store::SsfStore
{
    /// Delete expired codes, sessions, replay entries and revocation records.
    async fn purge_expired(&self, now: i64) -> StoreResult<u64>;
}
