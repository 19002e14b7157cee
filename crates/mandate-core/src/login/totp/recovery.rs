//! Recovery codes: ten one-time codes a person keeps on paper for when their authenticator is
//! lost. Each carries 60 random bits (12 characters of Crockford's base32, shown as
//! `xxxx-xxxx-xxxx`), is shown once (at enrolment and when regenerated), is stored only as a
//! keyed digest bound to its owner, and is spent by one atomic delete, so it works once.
//!
//! A recovery code is a method of its own (`recovery_code`), a second factor reaching the same
//! `acr` as TOTP. It records `otp` in `amr` (RFC 8176: a one-time password), like TOTP: a
//! relying party learns "two factors, the second a one-time code"; the audit trail says which.

use serde_json::json;

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::{keyed_digest, random_bytes};
use crate::error::StoreError;
use crate::login::method::{Factor, LoginMethod};
use crate::provider::{Provider, TenantCtx};
use crate::settings::ACR_MFA;
use crate::store::{AuditSink, UserStore};

use super::store::TotpStore;

/// How many codes a set has.
pub const COUNT: usize = 10;
/// Characters of a code (5 bits each: 60 bits).
pub const LENGTH: usize = 12;
/// Crockford's base32 alphabet, lower case: no i, l, o or u to misread.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The recovery-code login method.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecoveryCodeMethod;

impl LoginMethod for RecoveryCodeMethod {
    fn id(&self) -> &'static str {
        "recovery_code"
    }

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

/// A new code, `xxxx-xxxx-xxxx`.
fn new_code() -> String {
    // 256 is a multiple of 32: every symbol is equally likely.
    let chars: Vec<char> = random_bytes(LENGTH)
        .iter()
        .map(|b| ALPHABET[(*b & 31) as usize] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// A code as typed, in its canonical form: case, spaces and hyphens ignored, the letters
/// Crockford's base32 reads as digits (o, i, l) mapped to them. `None` when it cannot be one.
pub fn normalise(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect();
    (code.len() == LENGTH && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

fn digest(t: &TenantCtx, user_id: &str, code: &str) -> Vec<u8> {
    keyed_digest(
        &t.tenant.secret_key,
        &format!("recovery-code.{user_id}.{code}"),
    )
}

/// Make a new set of codes for a person, replacing all earlier ones; returns them (to be
/// shown once). Records `recovery_codes_generated` and tells the person by mail.
pub async fn generate<S: TotpStore + AuditSink + UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    actor: Principal,
    meta: &RequestMeta,
) -> Result<Vec<String>, StoreError> {
    let (codes, ev) = replace(p, t, user_id, actor, meta).await?;
    crate::login::notice::record(p, t, &ev).await?;
    Ok(codes)
}

/// The first codes, made with an authenticator app: recorded, without a notice of their own
/// (the app's enrolment notice tells the person).
pub(super) async fn first<S: TotpStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    actor: Principal,
    meta: &RequestMeta,
) -> Result<Vec<String>, StoreError> {
    let (codes, ev) = replace(p, t, user_id, actor, meta).await?;
    p.store.record(&ev).await?;
    Ok(codes)
}

/// New codes in place of the old; the record to write of it.
async fn replace<S: TotpStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    actor: Principal,
    meta: &RequestMeta,
) -> Result<(Vec<String>, AuditEvent), StoreError> {
    let codes: Vec<String> = (0..COUNT).map(|_| new_code()).collect();
    let digests: Vec<Vec<u8>> = codes
        .iter()
        .map(|c| {
            digest(
                t,
                user_id,
                &normalise(c).expect("a new code is well formed"),
            )
        })
        .collect();
    p.store
        .replace_recovery_codes(t.id(), user_id, &digests, p.now())
        .await?;
    let ev = AuditEvent::new(
        t.id(),
        EventKind::RecoveryCodesGenerated,
        Outcome::Success,
        actor,
        meta,
    )
    .subject(Principal::User {
        id: user_id.to_string(),
    })
    .detail(json!({"count": COUNT}));
    Ok((codes, ev))
}

/// Spend one of a person's codes: the codes left, or `None` when it is not one of theirs
/// (mistyped, or used already). No throttling here: see
/// the second-factor step's `verify` charges each attempt first.
pub async fn spend<S: TotpStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    typed: &str,
) -> Result<Option<i64>, StoreError> {
    let Some(code) = normalise(typed) else {
        return Ok(None);
    };
    if !p
        .store
        .spend_recovery_code(t.id(), user_id, &digest(t, user_id, &code))
        .await?
    {
        return Ok(None);
    }
    Ok(Some(p.store.recovery_codes_left(t.id(), user_id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_long_enough_and_read_back() {
        let c = new_code();
        assert_eq!(c.len(), LENGTH + 2);
        const { assert!(LENGTH * 5 >= 50, "at least 50 bits") };
        let n = normalise(&c).unwrap();
        assert_eq!(normalise(&c.to_uppercase().replace('-', " ")).unwrap(), n);
        assert_eq!(normalise("0O1I-L000-0000").unwrap(), "001110000000");
        assert!(normalise("uuuu-uuuu-uuuu").is_none());
        assert!(normalise("short").is_none());
        assert!(normalise(&"a".repeat(100)).is_none());
        assert_ne!(new_code(), new_code());
    }
}
