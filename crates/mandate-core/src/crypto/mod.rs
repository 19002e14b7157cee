//! Cryptography below every rule: random secrets, keyed digests, bounded password hashing and
//! secrets encrypted at rest (`at_rest`).
//! Token signing and keys (JWS, JWK) are the `mandate-token` crate's (`mandate_token::jws`,
//! `mandate_token::jwk`), so a resource server verifies with the code the server signs with.

pub mod at_rest;
pub mod secret;
