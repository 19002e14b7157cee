//! Login methods: the ways a person proves who they are, each one implementation of
//! [`LoginMethod`]. A session records the methods used (`amr`, RFC 8176) and the assurance they
//! reach (`acr`), from the method rather than from the page that ran it. Password is the first;
//! passkeys, one-time codes and upstream identity providers each become one more.

use crate::settings::ACR_PASSWORD;

/// One way to sign in.
pub trait LoginMethod: Send + Sync {
    /// The RFC 8176 `amr` value a sign-in with it records.
    fn amr(&self) -> &'static str;
    /// The `acr` a session reaches with this method alone.
    fn acr(&self) -> &'static str;
}

/// Password sign-in: Argon2id within the hashing bound and the guessing limits
/// ([`super::password_login`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Password;

impl LoginMethod for Password {
    fn amr(&self) -> &'static str {
        "pwd"
    }

    fn acr(&self) -> &'static str {
        ACR_PASSWORD
    }
}
