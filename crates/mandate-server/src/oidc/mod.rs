//! OpenID Connect endpoints: discovery, JWKS, userinfo, logout.

pub mod discovery;
pub mod jwks;
pub mod logout;
pub mod userinfo;
