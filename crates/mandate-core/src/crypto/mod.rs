//! Cryptography below every rule: secrets and password hashing, signing keys (JWK), JWS/JWT.

pub mod jwt;
pub mod keys;
pub mod secret;
