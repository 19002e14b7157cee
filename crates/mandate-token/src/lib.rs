//! Mandate's tokens as a pure library: compact JWS signing and verification with keys kept
//! parsed in memory ([`jws`], [`jwk`]), and the claims that make a token delegated, starting
//! with the RFC 8693 actor chain ([`act`]); the claims of access tokens ([`claims`]), ID tokens
//! ([`id_token`]) and Security Event Tokens ([`set`]) as types. No I/O, no async runtime, no store: mandate-core
//! issues and reads tokens through this crate, and a resource server can verify what the
//! server issues with the same code.

pub mod act;
pub mod b64;
pub mod claims;
pub mod id_token;
pub mod jwk;
pub mod jws;
pub mod set;
