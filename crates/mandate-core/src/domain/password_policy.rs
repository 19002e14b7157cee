//! The minimum password policy applied wherever a password is set (NIST SP 800-63B
//! §5.1.1.2): a minimum length (a tenant setting, at least 8), no password that is the
//! account's name or e-mail address or contains them, and none of the most common breached
//! passwords (a bundled list of 10,000). No composition rules: they do not help.

use std::collections::HashSet;
use std::sync::OnceLock;

/// Longest password accepted, in bytes (Argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password was refused. The messages are shown to whoever chose it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    #[error("the password must have at least {0} characters")]
    TooShort(usize),
    #[error("the password must have at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("the password must not be or contain the username or e-mail address")]
    ContainsIdentity,
    #[error("the password is one of the most commonly used (breached) passwords; choose another")]
    Common,
}

/// The bundled list, lowercase, one a line (comment lines start with '#').
const COMMON: &str = include_str!("../../data/common-passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Is this one of the bundled most common passwords (case-insensitive)?
pub fn is_common(pw: &str) -> bool {
    common().contains(pw.to_lowercase().as_str())
}

/// Check a new password for an account.
pub fn check(
    pw: &str,
    username: &str,
    email: Option<&str>,
    min_length: usize,
) -> Result<(), PasswordRejected> {
    let min_length = min_length.max(crate::settings::MIN_PASSWORD_LENGTH);
    if pw.chars().count() < min_length {
        return Err(PasswordRejected::TooShort(min_length));
    }
    if pw.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordRejected::TooLong);
    }
    let lower = pw.to_lowercase();
    let mut names = vec![username.to_lowercase()];
    if let Some(e) = email {
        let e = e.to_lowercase();
        if let Some((local, _)) = e.split_once('@') {
            names.push(local.to_string());
        }
        names.push(e);
    }
    // Short names (under 4 characters) are only refused as the whole password: as a part
    // they would refuse too many good ones.
    if names
        .iter()
        .filter(|n| !n.is_empty())
        .any(|n| lower == *n || (n.chars().count() >= 4 && lower.contains(n.as_str())))
    {
        return Err(PasswordRejected::ContainsIdentity);
    }
    if is_common(pw) {
        return Err(PasswordRejected::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_short_common_and_identity_passwords() {
        assert_eq!(
            check("short", "ada", None, 8),
            Err(PasswordRejected::TooShort(8))
        );
        // A tenant can ask for more, never for less than 8.
        assert_eq!(
            check("abcdefghij", "ada", None, 12),
            Err(PasswordRejected::TooShort(12))
        );
        assert_eq!(
            check("seven77", "ada", None, 4),
            Err(PasswordRejected::TooShort(8))
        );
        for pw in [
            "password",
            "12345678",
            "Password1",
            "iloveyou",
            "qwertyuiop",
        ] {
            assert_eq!(
                check(pw, "ada", None, 8),
                Err(PasswordRejected::Common),
                "{pw}"
            );
        }
        assert_eq!(
            check("lovelace-ada", "lovelace", None, 8),
            Err(PasswordRejected::ContainsIdentity)
        );
        assert_eq!(
            check(
                "Ada.Lovelace@example.com",
                "ada",
                Some("ada.lovelace@example.com"),
                8
            ),
            Err(PasswordRejected::ContainsIdentity)
        );
        assert_eq!(
            check(&"x".repeat(1025), "ada", None, 8),
            Err(PasswordRejected::TooLong)
        );
        assert!(
            check(
                "correct horse battery staple",
                "ada",
                Some("ada@example.com"),
                8
            )
            .is_ok()
        );
        assert!(common().len() >= 9_900, "the bundled list is loaded");
    }
}
