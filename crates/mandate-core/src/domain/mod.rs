//! Data and pure rules: tenants, clients, users, sessions, grants (`model`), agents and what
//! a mandate covers, scopes, PKCE (RFC 7636), redirect URI rules, the password policy, a tenant's
//! branding and scope descriptions, the risk policy.

pub mod agents;
pub mod branding;
pub mod model;
pub mod password_policy;
pub mod pkce;
pub mod redirect;
pub mod risk_policy;
pub mod scope;
