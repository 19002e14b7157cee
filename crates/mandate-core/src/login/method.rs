//! Login methods: the ways a person proves who they are, each one implementation of
//! [`LoginMethod`]. A session records the methods used (`amr`, RFC 8176) and the assurance they
//! reach (`acr`), from the method rather than from the page that ran it. Password is the first;
//! passkeys, TOTP, recovery codes and upstream identity providers each are one more, listed in
//! [`super::offered`].

use crate::settings::{ACR_MFA, ACR_PASSWORD, ACR_PHR};

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
    /// The RFC 8176 `amr` value a sign-in with it records, by which a session shows it was
    /// used (a method may record more: see [`Proof`]).
    fn amr(&self) -> &'static str;
    /// The `acr` a session reaches with this method (a second factor: after a first one).
    fn acr(&self) -> &'static str;
    /// The factor it proves.
    fn factor(&self) -> Factor;
}

/// The `acr` values Mandate issues, weakest first: a session at one of them satisfies a request
/// for any value before it. One factor, two factors, phishing-resistant.
pub const ACR_LEVELS: [&str; 3] = [ACR_PASSWORD, ACR_MFA, ACR_PHR];

/// The stronger of two `acr` values by [`ACR_LEVELS`] (`a` when neither ranks above the other).
pub fn stronger_acr<'a>(a: &'a str, b: &'a str) -> &'a str {
    if acr_satisfies(a, b) || !acr_satisfies(b, a) {
        a
    } else {
        b
    }
}

/// What one successful use of a login method proved: the method, and the `amr` values it
/// earns (a passkey earns `hwk` or `swk` by how its key is kept, and `user`).
#[derive(Debug, Clone)]
pub struct Proof {
    pub method: &'static dyn LoginMethod,
    pub amr: Vec<&'static str>,
}

impl Proof {
    /// A method that earns its one `amr` value.
    pub fn of(method: &'static dyn LoginMethod) -> Self {
        Proof {
            method,
            amr: vec![method.amr()],
        }
    }
}

/// Whether a session at `have` satisfies a request for `want` (the same value, or one later in
/// [`ACR_LEVELS`]); an `acr` Mandate does not issue is satisfied only by itself.
pub fn acr_satisfies(have: &str, want: &str) -> bool {
    let rank = |a: &str| ACR_LEVELS.iter().position(|l| *l == a);
    have == want || matches!((rank(have), rank(want)), (Some(h), Some(w)) if h >= w)
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

/// What a session still needs when a second factor is required of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactorStep {
    /// Prove one of these (ids of the person's methods that can follow a first factor).
    Verify(Vec<&'static str>),
    /// The person has none: enrol one of these right away.
    Enrol(Vec<&'static str>),
    /// The person has none and none can be enrolled here.
    Unavailable,
}

/// Whether a session that used `amr` proved a second factor among `methods` (the person's:
/// a method other than a first factor whose `amr` the session records), and if not, what it
/// must do: verify one of the person's, or enrol one of `enrol`. `None`: proven.
pub fn second_factor_step(
    amr: &[String],
    methods: &[&dyn LoginMethod],
    enrol: &[&dyn LoginMethod],
) -> Option<SecondFactorStep> {
    let proven = methods
        .iter()
        .any(|m| m.factor() != Factor::First && amr.iter().any(|a| a == m.amr()));
    if proven {
        return None;
    }
    let verify = second_factor_ids(methods);
    let enrol = ids(enrol, |f| f != Factor::First);
    Some(if !verify.is_empty() {
        SecondFactorStep::Verify(verify)
    } else if !enrol.is_empty() {
        SecondFactorStep::Enrol(enrol)
    } else {
        SecondFactorStep::Unavailable
    })
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
        assert_eq!(acr_values(&[&Password]), [ACR_PASSWORD]);
        assert!(acr_satisfies(ACR_PHR, ACR_MFA) && acr_satisfies(ACR_MFA, ACR_PASSWORD));
        assert!(!acr_satisfies(ACR_MFA, ACR_PHR));
        assert_eq!(stronger_acr(ACR_PASSWORD, ACR_PHR), ACR_PHR);
        assert_eq!(stronger_acr(ACR_PHR, ACR_MFA), ACR_PHR);
        assert_eq!(stronger_acr(ACR_MFA, "urn:other"), ACR_MFA);
    }
}
