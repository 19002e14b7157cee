//! Login methods: the ways a person proves who they are, each one implementation of
//! [`LoginMethod`]. A session records the methods used (`amr`, RFC 8176) and the assurance they
//! reach (`acr`), from the method rather than from the page that ran it. Password is the first;
//! passkeys, one-time codes and upstream identity providers each become one more.

use crate::settings::ACR_PASSWORD;

/// Which factor a method proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// Something the person knows or holds, enough to sign in alone (a password).
    First,
    /// Only after a first factor (a one-time code, TOTP, a recovery code).
    Second,
    /// Both at once (a passkey with user verification).
    Both,
}

/// One way to sign in.
pub trait LoginMethod: std::fmt::Debug + Send + Sync {
    /// Its name in the interaction (`Next::Login { methods }`) and on the sign-in page.
    fn id(&self) -> &'static str;
    /// The RFC 8176 `amr` value a sign-in with it records.
    fn amr(&self) -> &'static str;
    /// The `acr` a session reaches with this method alone.
    fn acr(&self) -> &'static str;
    /// The factor it proves.
    fn factor(&self) -> Factor;
}

/// The `acr` values Mandate issues, weakest first: a session at one of them satisfies a request
/// for any value before it.
pub const ACR_LEVELS: [&str; 1] = [ACR_PASSWORD];

/// Whether a session at `have` satisfies a request for `want` (the same value, or one later in
/// [`ACR_LEVELS`]); an `acr` Mandate does not issue is satisfied only by itself.
pub fn acr_satisfies(have: &str, want: &str) -> bool {
    let rank = |a: &str| ACR_LEVELS.iter().position(|l| *l == a);
    have == want || matches!((rank(have), rank(want)), (Some(h), Some(w)) if h >= w)
}

/// The methods a tenant offers, in the order the sign-in page shows them. Password is the only
/// one so far; passkeys and second factors join here.
pub fn offered() -> &'static [&'static dyn LoginMethod] {
    &[&Password]
}

/// Password sign-in: Argon2id within the hashing bound and the guessing limits
/// ([`super::password_login`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Password;

impl LoginMethod for Password {
    fn id(&self) -> &'static str {
        "password"
    }

    fn amr(&self) -> &'static str {
        "pwd"
    }

    fn acr(&self) -> &'static str {
        ACR_PASSWORD
    }

    fn factor(&self) -> Factor {
        Factor::First
    }
}

/// The `acr` values the methods reach, each once, weakest first (discovery's
/// `acr_values_supported`).
pub fn acr_values(methods: &[&dyn LoginMethod]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for m in methods {
        if !out.contains(&m.acr()) {
            out.push(m.acr());
        }
    }
    out
}

/// The ids of `methods` that sign a person in (first factors and passkeys), as a sign-in page
/// offers them.
pub fn sign_in_ids(methods: &[&dyn LoginMethod]) -> Vec<&'static str> {
    ids(methods, |f| f != Factor::Second)
}

/// The ids of `methods` that can follow a first factor (second factors and passkeys).
pub fn second_factor_ids(methods: &[&dyn LoginMethod]) -> Vec<&'static str> {
    ids(methods, |f| f != Factor::First)
}

fn ids(methods: &[&dyn LoginMethod], keep: impl Fn(Factor) -> bool) -> Vec<&'static str> {
    methods
        .iter()
        .filter(|m| keep(m.factor()))
        .map(|m| m.id())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_levels_order_assurance() {
        assert!(acr_satisfies(ACR_PASSWORD, ACR_PASSWORD));
        assert!(acr_satisfies("urn:other", "urn:other"));
        assert!(!acr_satisfies(ACR_PASSWORD, "urn:other"));
        assert!(!acr_satisfies("urn:other", ACR_PASSWORD));
        assert_eq!(
            offered().iter().map(|m| m.id()).collect::<Vec<_>>(),
            ["password"]
        );
        assert_eq!(acr_values(offered()), [ACR_PASSWORD]);
    }
}
