//! Mandate's tokens as a pure library: compact JWS signing and verification with keys kept
//! parsed in memory ([`jws`], [`jwk`]), and the claims that make a token delegated, starting
//! with the RFC 8693 actor chain ([`act`]). No I/O, no async runtime, no store: mandate-core
//! issues and reads tokens through this crate, and a resource server can verify what the
//! server issues with the same code.

pub mod act;
pub mod b64;
pub mod claims;
pub mod jwk;
pub mod jws;
