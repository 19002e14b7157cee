//! E-mail to people: what the rules send ([`Message`]: a recipient, a locale and its
//! [`Content`]), and the port that delivers it ([`Mailer`]). The core decides what a mail says
//! (a link, a code, a security notice); the edge renders it from templates and hands it to SMTP
//! or a file outbox, off the request. Without a mailer, the features that need mail are not
//! offered.

pub mod notice;

pub use notice::Notice;

/// Longest e-mail address accepted (RFC 5321 §4.5.3.1: a path of 256 octets, less the
/// angle brackets).
pub const MAX_ADDRESS: usize = 254;

/// One mail to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub tenant_id: String,
    /// The tenant's name, shown in the mail (the subject says who writes).
    pub tenant_name: String,
    /// The person it is about, for the audit record of its delivery.
    pub user_id: Option<String>,
    /// The recipient's address, checked by [`check_address`].
    pub to: String,
    /// The locale to write in (`None`: the default).
    pub lang: Option<String>,
    pub content: Content,
}

/// What a mail says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Confirm that the address is the person's: a link that sets `email_verified`.
    VerifyEmail { link: String, minutes: i64 },
    /// A link to choose a new password.
    PasswordReset { link: String, minutes: i64 },
    /// A one-time sign-in code.
    SignInCode { code: String, minutes: i64 },
    /// Something happened to the account that the person should know about.
    Notice(Notice),
}

impl Content {
    /// The template's name (and the message keys' prefix): `mail/{name}.txt`, `.html`.
    pub fn template(&self) -> &'static str {
        match self {
            Content::VerifyEmail { .. } => "verify_email",
            Content::PasswordReset { .. } => "password_reset",
            Content::SignInCode { .. } => "sign_in_code",
            Content::Notice(n) => n.template(),
        }
    }
}

/// Why a mail was not accepted for delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// No mail transport is configured.
    #[error("e-mail is not configured")]
    NotConfigured,
    /// The address cannot be written into a mail header safely.
    #[error("invalid e-mail address")]
    InvalidAddress,
    /// The outgoing queue is full (the transport is slow or down).
    #[error("too many mails waiting to be sent")]
    QueueFull,
}

/// Hands mails over for delivery. Implementations queue and send in the background with
/// timeouts, so a slow mail server never holds a request; `send` only refuses what cannot be
/// queued. Delivery is recorded (`email_sent`) by the implementation.
pub trait Mailer: Send + Sync {
    fn send(&self, message: Message) -> Result<(), MailError>;
}

/// A mail address that can go into a header as it is: one `@` between a non-empty local part
/// and a domain with a dot or a single label, printable ASCII or non-ASCII letters, none of
/// the characters that separate, quote or comment in an address list, no whitespace and no
/// control characters (so no CR/LF: a recipient cannot add headers).
pub fn check_address(a: &str) -> Result<(), MailError> {
    let bad = || MailError::InvalidAddress;
    if a.is_empty() || a.len() > MAX_ADDRESS {
        return Err(bad());
    }
    if a.chars().any(|c| {
        c.is_control()
            || c.is_whitespace()
            || matches!(
                c,
                '<' | '>'
                    | '('
                    | ')'
                    | '['
                    | ']'
                    | ','
                    | ';'
                    | ':'
                    | '\\'
                    | '"'
                    | '\u{2028}'
                    | '\u{2029}'
            )
    }) {
        return Err(bad());
    }
    let (local, domain) = a.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || local.contains('@')
        || domain.is_empty()
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || local.starts_with('.')
        || local.ends_with('.')
    {
        return Err(bad());
    }
    Ok(())
}

/// Text from an untrusted source made fit for one header line (a subject with a tenant's
/// name): control characters, line and paragraph separators become spaces, clipped to `max`
/// bytes.
pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect();
    crate::untrusted::clip(flat.trim(), max).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_could_inject_headers_are_refused() {
        assert!(check_address("alice@example.com").is_ok());
        assert!(check_address("a.b+tag@sub.example.org").is_ok());
        assert!(check_address("jörg@exämple.de").is_ok());
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example.com\r\nBcc: eve@evil.test",
            "alice@example.com\nBcc: eve@evil.test",
            "alice@example.com, eve@evil.test",
            "Alice <alice@example.com>",
            "alice@exa mple.com",
            "alice@example..com",
            "a@b@c",
            "alice@example.com\u{2028}Bcc: x",
            "\"a\"@example.com",
        ] {
            assert_eq!(
                check_address(bad),
                Err(MailError::InvalidAddress),
                "{bad:?}"
            );
        }
        assert!(check_address(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn one_line_flattens_breaks() {
        assert_eq!(one_line("Acme\r\nBcc: x", 100), "Acme  Bcc: x");
        assert_eq!(one_line("x\u{2028}y", 100), "x y");
        assert!(one_line(&"a".repeat(500), 100).len() <= 100);
    }
}
