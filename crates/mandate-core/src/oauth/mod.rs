//! OAuth 2.x: the authorization endpoint, the token endpoint and its grants (`grants/`, RFC 8693
//! in `grants/token_exchange/`), client authentication (RFC 7523), token issuance (RFC 9068),
//! introspection (RFC 7662), revocation (RFC 7009), DPoP (RFC 9449).

pub mod authorize;
pub mod client_auth;
pub mod dpop;
pub mod grants;
pub mod introspect;
pub mod revoke;
pub mod store;
pub mod tokens;
