//! RFC 8693 token exchange: an agent's own assertion as `actor_token`, delegated refresh tokens.

mod actor_token;
mod delegated_refresh;
