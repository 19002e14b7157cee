//! The storage of the agent registry and of mandates, with the one-query liveness checks every delegated token needs.
//! Implemented by mandate-store for SQLite and PostgreSQL; every method is a single atomic
//! step.

use async_trait::async_trait;

use crate::domain::agents::{Agent, AgentStatus, Mandate};
use crate::error::StoreResult;

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
