//! Mandate's protocol and domain rules: OAuth 2.1 / OpenID Connect grants, tokens, sessions,
//! consent and audit events, over narrow storage traits. No HTTP, SQL or template code here.

pub mod admin;
pub mod admin_api;
pub mod agent_admin;
pub mod agents;
pub mod audit;
pub mod authorize;
pub mod ciba;
pub mod client_auth;
pub mod dpop;
pub mod dpop_use;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod jwt;
pub mod keys;
pub mod login;
pub mod logout;
pub mod model;
pub mod outbound;
pub mod password_policy;
pub mod pkce;
pub mod provider;
pub mod redirect;
pub mod revoke;
pub mod roles;
pub mod scope;
pub mod secret;
pub mod self_service;
pub mod settings;
pub mod ssf;
pub mod store;
pub mod throttle;
pub mod time;
pub mod tokens;
pub mod untrusted;
pub mod userinfo;

pub use error::{ErrorCode, OAuthError, StoreError};
pub use provider::{Provider, TenantCtx};
