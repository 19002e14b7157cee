//! Mandate's protocol and domain rules: OAuth 2.1 / OpenID Connect grants, tokens, sessions,
//! consent and audit events, over narrow storage traits. No HTTP, SQL or template code here.

pub mod access;
pub mod account;
pub mod agents;
pub mod audit;
pub mod ciba;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod geo;
pub mod login;
pub mod mail;
pub mod oauth;
pub mod oidc;
pub mod outbound;
pub mod provider;
pub mod registry;
pub mod risk;
pub mod settings;
pub mod ssf;
pub mod store;
#[cfg(test)]
mod testing;
pub mod time;
pub mod untrusted;

pub use error::{ErrorCode, OAuthError, StoreError};
pub use provider::{Provider, TenantCtx};
