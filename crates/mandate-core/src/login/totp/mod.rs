//! TOTP (RFC 6238) as a second factor: the codes authenticator apps show (HMAC-SHA-1, 6 digits,
//! 30-second steps, what every app expects), accepted one step either side of now for clock
//! drift, and each at most once: the last accepted step is kept per person and only a later one
//! is accepted, with one compare-and-set in the store, so two nodes cannot both accept a code.
//!
//! The shared secret must be read back to check codes, so it cannot be hashed: it is encrypted
//! at rest ([`crate::crypto::at_rest`]) under a key derived from the tenant's secret key, bound
//! to the tenant and the person. Recovery codes ([`recovery`]) stand in when the phone is lost.

pub mod recovery;
pub mod store;

use serde_json::json;
use totp_rs::{Algorithm, Builder, Totp};

use super::method::{Factor, LoginMethod};
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::at_rest;
use crate::crypto::secret::random_bytes;
use crate::domain::model::User;
use crate::error::StoreError;
use crate::provider::{Provider, TenantCtx};
use crate::settings::ACR_MFA;
use crate::store::{AuditSink, UserStore};
use store::{TotpCredential, TotpStore};

/// Digits of a code.
pub const DIGITS: u8 = 6;
/// Seconds of one time step.
pub const STEP: u64 = 30;
/// Steps accepted either side of now (clock drift, a code typed as it changes).
pub const SKEW: u16 = 1;
/// Bytes of a new shared secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;
/// How long a person has to confirm an enrolment with a first code (seconds).
pub const ENROL_TTL: i64 = 900;
/// The key-derivation purpose of TOTP secrets.
const PURPOSE: &str = "totp-secret";
/// Longest code input looked at.
const MAX_CODE: usize = 32;

/// The TOTP login method: a second factor reaching [`ACR_MFA`], recorded as `otp`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TotpMethod;

impl LoginMethod for TotpMethod {
    fn id(&self) -> &'static str {
        "totp"
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

/// Why enrolling or checking TOTP failed.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// The person has an authenticator already: remove it first.
    #[error("an authenticator app is set up already")]
    AlreadyEnrolled,
    /// No enrolment is waiting for confirmation (never started, or expired).
    #[error("the set-up expired; start again")]
    NotPending,
    /// The code does not match (or was used already).
    #[error("the code is not right")]
    WrongCode,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an authenticator app needs to enrol: the secret as base32 text (typed by hand) and
/// the `otpauth://` URI (in the QR code).
#[derive(Debug, Clone)]
pub struct Enrolling {
    pub secret: String,
    pub uri: String,
}

fn owner(tenant_id: &str, user_id: &str) -> Vec<u8> {
    format!("{tenant_id}\0{user_id}").into_bytes()
}

fn generator(secret: Vec<u8>, issuer: &str, account: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW)
        .with_step_duration(STEP)
        .with_secret(secret)
        .with_issuer(Some(issuer.replace(':', "_")))
        .with_account_name(account.replace(':', "_"))
        .build()
        .ok()
}

/// The step a code is valid for at `now` (within [`SKEW`]), compared in constant time; `None`
/// when it matches none.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) || now < 0 {
        return None;
    }
    let totp = generator(secret.to_vec(), "m", "m")?;
    totp.check(&code, now as u64).map(|s| s as i64)
}

/// The code for a time (tests, and the documentation's examples).
pub fn code_at(secret: &[u8], digits: u8, time: u64) -> String {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(digits)
        .with_step_duration(STEP)
        .with_secret(secret.to_vec())
        .build_noncompliant()
        .generate(time)
        .to_string()
}

/// The 6-digit code an app shows at `time` for a key shown at enrolment (base32): what the
/// end-to-end tests and the documentation's examples type. `None` for a malformed key.
pub fn code_for_key(base32: &str, time: u64) -> Option<String> {
    let secret = totp_rs::Secret::try_from_base32(base32.trim()).ok()?;
    Some(code_at(secret.as_bytes(), DIGITS, time))
}

fn decrypt(t: &TenantCtx, cred: &TotpCredential) -> Result<Vec<u8>, StoreError> {
    at_rest::open(
        &t.tenant.secret_key,
        PURPOSE,
        &owner(&cred.tenant_id, &cred.user_id),
        &cred.secret,
    )
    .map_err(|e| StoreError::Corrupt(format!("totp secret: {e}")))
}

/// Begin enrolling an authenticator app for `user`: a new secret, kept pending (encrypted)
/// until a first code confirms it, or the pending one while it lasts (a page shown again
/// shows the secret already scanned). Refused when the person has one enrolled.
pub async fn start_enrolment<S: TotpStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
) -> Result<Enrolling, TotpError> {
    let now = p.now();
    let existing = p.store.totp(t.id(), &user.id).await?;
    if let Some(c) = &existing {
        if c.enrolled() {
            return Err(TotpError::AlreadyEnrolled);
        }
        // Still pending for a while: keep it, so a code typed late still confirms it.
        if c.pending_until.is_some_and(|u| u > now + 60) {
            return enrolling(t, user, decrypt(t, c)?);
        }
    }
    let raw = random_bytes(SECRET_BYTES);
    let cred = TotpCredential {
        tenant_id: t.id().to_string(),
        user_id: user.id.clone(),
        secret: at_rest::seal(
            &t.tenant.secret_key,
            PURPOSE,
            &owner(t.id(), &user.id),
            &raw,
        ),
        created_at: now,
        confirmed_at: None,
        pending_until: Some(now + ENROL_TTL),
        last_step: 0,
    };
    if !p.store.put_pending_totp(&cred).await? {
        return Err(TotpError::AlreadyEnrolled);
    }
    enrolling(t, user, raw)
}

fn enrolling(t: &TenantCtx, user: &User, raw: Vec<u8>) -> Result<Enrolling, TotpError> {
    let totp = generator(raw, &issuer_label(t), &user.username)
        .ok_or_else(|| StoreError::Corrupt("totp parameters".into()))?;
    let uri = totp
        .to_url()
        .map_err(|e| StoreError::Corrupt(format!("otpauth uri: {e}")))?;
    Ok(Enrolling {
        secret: totp.secret().to_base32(),
        uri,
    })
}

/// The name an authenticator app shows for this tenant's entries (the default tenant's is
/// plain "Mandate").
fn issuer_label(t: &TenantCtx) -> String {
    if t.tenant.name == "default" {
        "Mandate".to_string()
    } else {
        format!("Mandate {}", t.tenant.name)
    }
}

/// Confirm a pending enrolment with a code from the app: the authenticator is enrolled (its
/// step spent) and a first set of recovery codes is made. Returns the recovery codes, shown
/// once. Records `second_factor_enrolled` and `recovery_codes_generated`.
pub async fn confirm_enrolment<S: TotpStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    code: &str,
    meta: &RequestMeta,
) -> Result<Vec<String>, TotpError> {
    let now = p.now();
    let cred = p
        .store
        .totp(t.id(), &user.id)
        .await?
        .filter(|c| !c.enrolled() && c.pending_until.is_some_and(|u| u > now))
        .ok_or(TotpError::NotPending)?;
    let secret = decrypt(t, &cred)?;
    let step = matching_step(&secret, &clip(code), now).ok_or(TotpError::WrongCode)?;
    if !p.store.confirm_totp(t.id(), &user.id, step, now).await? {
        return Err(TotpError::NotPending);
    }
    let me = Principal::User {
        id: user.id.clone(),
    };
    let ev = AuditEvent::new(
        t.id(),
        EventKind::SecondFactorEnrolled,
        Outcome::Success,
        me.clone(),
        meta,
    )
    .subject(me.clone())
    .detail(json!({"method": TotpMethod.id()}));
    p.store.record(&ev).await?;
    super::notice::after(p, t, user, &ev);
    Ok(recovery::first(p, t, &user.id, me, meta).await?)
}

fn clip(code: &str) -> String {
    code.chars().take(MAX_CODE).collect()
}

/// Check a code of a person's enrolled authenticator and spend its step: true only when it
/// matches a step later than the last accepted (a code is accepted once). No throttling here:
/// the second-factor step's `verify` charges each attempt first.
pub async fn check<S: TotpStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    code: &str,
) -> Result<bool, StoreError> {
    let now = p.now();
    let Some(cred) = p
        .store
        .totp(t.id(), user_id)
        .await?
        .filter(TotpCredential::enrolled)
    else {
        return Ok(false);
    };
    let secret = decrypt(t, &cred)?;
    match matching_step(&secret, &clip(code), now) {
        Some(step) if step > cred.last_step => p.store.spend_totp_step(t.id(), user_id, step).await,
        _ => Ok(false),
    }
}

/// Remove a person's authenticator and recovery codes (the person on the account page, or an
/// administrator resetting it). Records `second_factor_removed` when there was one.
pub async fn remove<S: TotpStore + AuditSink + UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    actor: Principal,
    meta: &RequestMeta,
) -> Result<bool, StoreError> {
    let removed = p.store.remove_totp(t.id(), user_id).await?;
    if removed {
        let ev = AuditEvent::new(
            t.id(),
            EventKind::SecondFactorRemoved,
            Outcome::Success,
            actor,
            meta,
        )
        .subject(Principal::User {
            id: user_id.to_string(),
        })
        .detail(json!({"method": TotpMethod.id(), "recovery_codes": "removed"}));
        super::notice::record(p, t, &ev).await?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (8 digits, the ASCII secret "12345678901234567890").
    #[test]
    fn rfc6238_appendix_b_sha1() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(code_at(secret, 8, time), code, "T = {time}");
        }
        // Six digits are the last six of the eight.
        assert_eq!(code_at(secret, 6, 59), "287082");
    }

    #[test]
    fn one_step_either_side() {
        let secret = random_bytes(SECRET_BYTES);
        let now = 1_700_000_015; // step 56_666_667
        let step = now / STEP as i64;
        for (delta, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_at(&secret, DIGITS, ((step + delta) * STEP as i64) as u64);
            assert_eq!(
                matching_step(&secret, &code, now),
                accepted.then_some(step + delta),
                "step {delta}"
            );
        }
        let code = code_at(&secret, DIGITS, now as u64);
        assert_eq!(
            matching_step(&secret, &format!(" {} {} ", &code[..3], &code[3..]), now),
            Some(step)
        );
        for bad in ["", "12345", "1234567", "abcdef", "12345x"] {
            assert_eq!(matching_step(&secret, bad, now), None, "{bad:?}");
        }
    }

    /// The secret shown at enrolment (base32), as bytes.
    fn shown(e: &Enrolling) -> Vec<u8> {
        totp_rs::Secret::try_from_base32(&e.secret)
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn enrol_then_each_code_once_and_recovery_codes_once() {
        use crate::testing::{Fake, provider, user};
        let (p, t) = provider(Fake::default());
        let ada = user("u1", "ada");
        let meta = RequestMeta::default();
        let e = start_enrolment(&p, &t, &ada).await.unwrap();
        assert!(e.uri.starts_with("otpauth://totp/"), "{}", e.uri);
        assert!(e.uri.contains(&format!("secret={}", e.secret)));
        // Shown again while pending: the same secret; stored only encrypted.
        assert_eq!(
            start_enrolment(&p, &t, &ada).await.unwrap().secret,
            e.secret
        );
        let stored = p.store.totp.lock().unwrap()["u1"].secret.clone();
        let secret = shown(&e);
        assert!(!stored.windows(secret.len()).any(|w| w == secret.as_slice()));
        let now = p.now() as u64;
        assert!(matches!(
            confirm_enrolment(&p, &t, &ada, "000000x", &meta).await,
            Err(TotpError::WrongCode)
        ));
        let codes = confirm_enrolment(&p, &t, &ada, &code_at(&secret, DIGITS, now), &meta)
            .await
            .unwrap();
        assert_eq!(codes.len(), recovery::COUNT);
        assert!(matches!(
            start_enrolment(&p, &t, &ada).await,
            Err(TotpError::AlreadyEnrolled)
        ));
        // The code that confirmed is spent; the next step's code works once.
        assert!(
            !check(&p, &t, "u1", &code_at(&secret, DIGITS, now))
                .await
                .unwrap()
        );
        let next = code_at(&secret, DIGITS, now + STEP);
        assert!(check(&p, &t, "u1", &next).await.unwrap());
        assert!(!check(&p, &t, "u1", &next).await.unwrap(), "replay refused");
        assert!(!check(&p, &t, "u2", &next).await.unwrap(), "not enrolled");
        // Recovery codes: each once, in any case or spacing, the count going down.
        let typed = codes[3].to_uppercase().replace('-', " ");
        assert_eq!(
            recovery::spend(&p, &t, "u1", &typed).await.unwrap(),
            Some(9)
        );
        assert_eq!(
            recovery::spend(&p, &t, "u1", &codes[3]).await.unwrap(),
            None
        );
        assert_eq!(
            recovery::spend(&p, &t, "u2", &codes[4]).await.unwrap(),
            None
        );
        // New codes replace the old; removal takes everything.
        let fresh = recovery::generate(&p, &t, "u1", Principal::Anonymous, &meta)
            .await
            .unwrap();
        assert_eq!(
            recovery::spend(&p, &t, "u1", &codes[4]).await.unwrap(),
            None
        );
        assert_eq!(
            recovery::spend(&p, &t, "u1", &fresh[0]).await.unwrap(),
            Some(9)
        );
        assert!(
            remove(&p, &t, "u1", Principal::Anonymous, &meta)
                .await
                .unwrap()
        );
        assert!(
            !check(&p, &t, "u1", &code_at(&secret, DIGITS, now + 2 * STEP))
                .await
                .unwrap()
        );
        for kind in [
            EventKind::SecondFactorEnrolled,
            EventKind::SecondFactorRemoved,
        ] {
            assert_eq!(p.store.recorded(kind).len(), 1, "{kind:?}");
        }
        assert_eq!(p.store.recorded(EventKind::RecoveryCodesGenerated).len(), 2);
    }
}
