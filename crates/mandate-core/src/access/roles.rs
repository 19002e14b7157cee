//! Roles people hold in a tenant, and who may do what at the admin API.
//!
//! A client registered with `mandate:admin` (or `mandate:authz`, `mandate:ssf`) gets those
//! rights for its own `client_credentials` tokens. A person's token gets them only when the
//! person holds a role too: the scope says what the app may ask for, the role what the person
//! may do. Roles are granted and revoked with `mandate user grant-role|revoke-role` or the admin
//! API (`…/roles/{role}/users/{username}`); every change is recorded.

use serde_json::{Value, json};

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::error::AdminError;
use crate::store::{AuditSink, RoleGrant, RoleStore, UserStore};
use crate::time::now;

/// A role a person can hold in a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything the admin API offers (agents, mandates, authorization, roles, audit), and
    /// the AuthZEN and SSF management APIs.
    Admin,
    /// Reading the audit log only.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 2] = [Role::Admin, Role::Auditor];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    /// Parse a name; unknown names are `None`.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Does holding this role give `right`?
    pub fn allows(self, right: Right) -> bool {
        match self {
            Role::Admin => true,
            Role::Auditor => right == Right::ReadAudit,
        }
    }
}

/// What a privileged request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Change or read anything the admin API offers (and AuthZEN / SSF management).
    Manage,
    /// Read the audit log.
    ReadAudit,
}

/// Does a person holding `roles` (names as stored) have `right`?
pub fn roles_allow(roles: &[String], right: Right) -> bool {
    roles
        .iter()
        .filter_map(|r| Role::parse(r))
        .any(|r| r.allows(right))
}

/// Parse a role name for the CLI and the API.
pub fn parse_role(s: &str) -> Result<Role, AdminError> {
    Role::parse(s).ok_or_else(|| {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        AdminError::Invalid(format!(
            "unknown role {:?}: use one of {}",
            s.chars().take(64).collect::<String>(),
            known.join(", ")
        ))
    })
}

/// Who changes a role and from where (recorded).
#[derive(Debug, Clone)]
pub struct RoleActor<'a> {
    pub principal: Principal,
    /// The client whose token made the change, through the API.
    pub client_id: Option<&'a str>,
    pub meta: &'a RequestMeta,
}

impl RoleActor<'_> {
    fn name(&self) -> String {
        self.principal.parts().1.unwrap_or_default().to_string()
    }
}

async fn person<S>(
    store: &S,
    tenant_id: &str,
    username: &str,
) -> Result<crate::domain::model::User, AdminError>
where
    S: UserStore + ?Sized,
{
    if username.is_empty() || username.len() > 256 {
        return Err(AdminError::NotFound("user".into()));
    }
    store
        .user_by_username(tenant_id, username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("user {username}")))
}

async fn record<S>(
    store: &S,
    tenant_id: &str,
    kind: EventKind,
    actor: &RoleActor<'_>,
    user: &crate::domain::model::User,
    role: Role,
) -> Result<(), AdminError>
where
    S: AuditSink + ?Sized,
{
    let mut ev = AuditEvent::new(
        tenant_id,
        kind,
        Outcome::Success,
        actor.principal.clone(),
        actor.meta,
    )
    .subject(Principal::User {
        id: user.id.clone(),
    })
    .username(user.username.clone())
    .detail(json!({"role": role.as_str()}));
    ev.client_id = actor.client_id.map(str::to_string);
    store.record(&ev).await?;
    Ok(())
}

/// Grant `role` to the person `username` of the tenant with id `tenant_id`; false when they
/// already held it (nothing recorded then).
pub async fn grant<S>(
    store: &S,
    tenant_id: &str,
    username: &str,
    role: Role,
    actor: &RoleActor<'_>,
) -> Result<bool, AdminError>
where
    S: AuditSink + RoleStore + UserStore + ?Sized,
{
    let user = person(store, tenant_id, username).await?;
    let g = RoleGrant {
        tenant_id: tenant_id.to_string(),
        user_id: user.id.clone(),
        role: role.as_str().to_string(),
        granted_at: now(),
        granted_by: actor.name(),
    };
    let new = store.grant_role(&g).await?;
    if new {
        record(store, tenant_id, EventKind::RoleGranted, actor, &user, role).await?;
    }
    Ok(new)
}

/// Revoke `role` from `username`; `NotFound` when they did not hold it. Takes effect at the
/// person's next request: roles are read at every admin API call.
pub async fn revoke<S>(
    store: &S,
    tenant_id: &str,
    username: &str,
    role: Role,
    actor: &RoleActor<'_>,
) -> Result<(), AdminError>
where
    S: AuditSink + RoleStore + UserStore + ?Sized,
{
    let user = person(store, tenant_id, username).await?;
    if !store
        .revoke_role(tenant_id, &user.id, role.as_str())
        .await?
    {
        return Err(AdminError::NotFound(format!(
            "role {} of user {username}",
            role.as_str()
        )));
    }
    record(store, tenant_id, EventKind::RoleRevoked, actor, &user, role).await
}

/// Every role held in the tenant, as JSON objects (`user_id`, `username`, `role`,
/// `granted_at`, `granted_by`), oldest first.
pub async fn list<S>(store: &S, tenant_id: &str) -> Result<Vec<Value>, AdminError>
where
    S: RoleStore + UserStore + ?Sized,
{
    let mut out = Vec::new();
    for g in store.role_grants(tenant_id).await? {
        let username = store.user(tenant_id, &g.user_id).await?.map(|u| u.username);
        out.push(json!({
            "user_id": g.user_id,
            "username": username,
            "role": g.role,
            "granted_at": g.granted_at,
            "granted_by": g.granted_by,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditor_reads_only() {
        let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(roles_allow(&r(&["admin"]), Right::Manage));
        assert!(roles_allow(&r(&["auditor"]), Right::ReadAudit));
        assert!(!roles_allow(&r(&["auditor"]), Right::Manage));
        assert!(!roles_allow(&r(&["Admin", "root"]), Right::ReadAudit));
        assert!(!roles_allow(&[], Right::ReadAudit));
        assert!(parse_role("superuser").is_err());
    }
}
