//! A one-time code by e-mail as a second factor: after their password, a person asks for a
//! 6-digit code mailed to their **verified** address and types it
//! ([`super::recovery::send_sign_in_code`], [`super::recovery::check_sign_in_code`]: single
//! use, hashed, short-lived, sending and guessing limited).
//!
//! It is a way to meet a requirement, never the person's own choice of a second factor (their
//! enrolment's `has_second_factor` stays about the authenticator app and recovery codes). A
//! tenant offers it only when it turns it on (`email_code`, off by default: with "forgot
//! password" by mail too, the mailbox alone would open the account) and mail is configured; a
//! sign-in the risk decision asks a second factor of may fall back to it even when the tenant
//! does not offer it (the second-factor step's `risk_fallback`).

use super::method::{Factor, LoginMethod};
use crate::domain::model::User;
use crate::mail::check_address;
use crate::provider::Provider;
use crate::settings::ACR_MFA;

/// The e-mailed one-time code.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmailCodeMethod;

impl LoginMethod for EmailCodeMethod {
    fn id(&self) -> &'static str {
        "email_code"
    }

    /// RFC 8176 has no value for a code by e-mail: `otp`, a one-time password.
    fn amr(&self) -> &'static str {
        "otp"
    }

    fn acr(&self) -> &'static str {
        ACR_MFA
    }

    fn factor(&self) -> Factor {
        Factor::Second
    }
}

/// Can a code be mailed to `user`: mail configured and a verified, well-formed address (an
/// unverified one may be anybody's, so it proves nothing).
pub fn reachable<S: ?Sized>(p: &Provider<S>, user: &User) -> bool {
    p.mailer().is_some()
        && user.email_verified
        && user
            .email
            .as_deref()
            .is_some_and(|e| check_address(e).is_ok())
}

/// An address as pages may show it, without revealing it: the first character of the local
/// part, then `•••`, then the domain (`k•••@example.com`).
pub fn mask_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        _ => "•••".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{MailError, Mailer, Message};
    use crate::testing::{Fake, provider, user};

    /// A mailer that sends nothing.
    struct Drop;

    impl Mailer for Drop {
        fn send(&self, _: Message) -> Result<(), MailError> {
            Ok(())
        }
    }

    #[test]
    fn addresses_are_masked() {
        assert_eq!(mask_address("kim@example.com"), "k•••@example.com");
        assert_eq!(mask_address("k@example.com"), "k•••@example.com");
        assert_eq!(mask_address("émile@exemple.fr"), "é•••@exemple.fr");
        assert_eq!(mask_address("@example.com"), "•••");
        assert_eq!(mask_address("nobody"), "•••");
    }

    #[test]
    fn only_a_verified_address_with_mail_is_reachable() {
        let (p, _) = provider(Fake::default());
        let mut u = user("u1", "kim");
        u.email = Some("kim@example.com".into());
        u.email_verified = true;
        assert!(!reachable(&p, &u), "no mail configured");
        let p = p.with_mailer(std::sync::Arc::new(Drop));
        assert!(reachable(&p, &u));
        u.email_verified = false;
        assert!(!reachable(&p, &u), "unverified");
        u.email_verified = true;
        u.email = None;
        assert!(!reachable(&p, &u), "no address");
    }
}
