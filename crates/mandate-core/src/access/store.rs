//! The storage of admin roles: what a person's own token may do at the admin API.
//! Implemented by mandate-store for SQLite and PostgreSQL; every method is a single atomic
//! step.

use async_trait::async_trait;

use crate::error::StoreResult;

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
