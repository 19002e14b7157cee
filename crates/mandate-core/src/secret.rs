//! Random values, one-way digests of secrets and constant-time comparison.
//!
//! Codes, refresh tokens, session ids and client secrets are high-entropy random strings, so a
//! fast keyed digest (HMAC-SHA-256) is the right way to store them: a password hash would cap
//! the token endpoint at a few dozen requests per second for no gain in security.

use aws_lc_rs::{digest, hmac, rand::SecureRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq;

/// `n` random bytes from the system CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("system random source failed");
    buf
}

/// A random URL-safe string carrying `bytes * 8` bits of entropy.
pub fn random_token(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// Digest of a high-entropy secret under a key, used as its stored form and lookup key.
pub fn keyed_digest(key: &[u8], secret: &str) -> Vec<u8> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&k, secret.as_bytes()).as_ref().to_vec()
}

/// Unkeyed SHA-256, for values that are only lookup handles (e.g. assertion `jti`s).
pub fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// Compare two byte strings in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// base64url without padding.
pub fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decode base64url without padding.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// Password hashing with Argon2id (OWASP parameters: m=19 MiB, t=2, p=1).
pub mod password {
    use argon2::{
        Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
        password_hash::SaltString,
    };

    fn argon() -> Argon2<'static> {
        let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 params");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// Hash a password to a PHC string.
    pub fn hash(password: &str) -> String {
        let salt = SaltString::encode_b64(&super::random_bytes(16)).expect("salt");
        argon()
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2 hashing")
            .to_string()
    }

    /// Check a password against a PHC string; false on any malformed hash.
    pub fn verify(password: &str, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(h) => argon().verify_password(password.as_bytes(), &h).is_ok(),
            Err(_) => false,
        }
    }

    /// A hash of a random password, verified against when the account does not exist so that
    /// failures take similar time either way.
    pub fn dummy_hash() -> &'static str {
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        DUMMY.get_or_init(|| hash(&super::random_token(16)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_differ_by_key_and_compare_in_constant_time() {
        let a = keyed_digest(b"k1", "secret");
        let b = keyed_digest(b"k2", "secret");
        assert_ne!(a, b);
        assert!(ct_eq(&a, &keyed_digest(b"k1", "secret")));
        assert!(!ct_eq(&a, &b));
        assert_eq!(random_token(32).len(), 43);
    }

    #[test]
    fn password_round_trip() {
        let h = password::hash("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(password::verify("correct horse", &h));
        assert!(!password::verify("wrong", &h));
        assert!(!password::verify("x", "not a hash"));
    }
}
