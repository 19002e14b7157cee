//! Getting back into an account and keeping its address true, by mail: "forgot password"
//! (a reset link), e-mail verification (a confirmation link), one-time sign-in codes, and the
//! person's own password change.
//!
//! Every mailed secret is random (links: 256 bits; codes: 6 digits, guarded by the guessing
//! limits), stored only as a keyed digest under the tenant's key, short-lived, taken once, and
//! replaced by a newer one of the same purpose; a password change also voids a pending reset.
//! Asking for a reset answers the same whether or not the account exists, and both requests
//! and code guesses are limited per account name and per address with the login throttle's
//! counters, under their own keys ([`throttle::Key::within`]).

pub mod store;

use serde_json::json;

use super::notice;
use super::throttle::{self, Charge, Key};
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::{keyed_digest, password, random_bytes, random_token};
use crate::domain::model::{Session, User};
use crate::domain::password_policy::{self, PasswordRejected};
use crate::error::StoreError;
use crate::mail::{Content, Mailer, Message, check_address};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AuditSink, GrantStore, LoginThrottleStore, SessionStore, UserStore};
use store::{AccountToken, AccountTokenStore, Purpose};

/// How long a reset link works (seconds).
pub const RESET_TTL: i64 = 30 * 60;
/// How long a verification link works (seconds).
pub const VERIFY_TTL: i64 = 24 * 3600;
/// How long a sign-in code works (seconds).
pub const CODE_TTL: i64 = 10 * 60;
/// Digits of a sign-in code.
pub const CODE_DIGITS: usize = 6;
/// Longest link token accepted (characters); ours have 43.
pub const MAX_TOKEN: usize = 128;
/// How recent a sign-in must be to set a first password without a current one (seconds).
pub const FRESH_SIGN_IN: i64 = 300;

/// The page a reset link opens.
pub const RESET_PATH: &str = "/account/password/reset";
/// The page a verification link opens.
pub const VERIFY_PATH: &str = "/account/email/verify";

/// Why a recovery step failed.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// No mail is configured: the feature is not offered.
    #[error("e-mail is not configured")]
    Unavailable,
    /// The link is unknown, used, replaced, or expired.
    #[error("the link is invalid or has expired")]
    InvalidToken,
    /// The code is wrong, used, replaced, or expired.
    #[error("the code is wrong or has expired")]
    InvalidCode,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error(transparent)]
    Rejected(#[from] PasswordRejected),
    /// Setting a first password needs a recent sign-in.
    #[error("sign in again first")]
    StaleSession,
    #[error("the account has no usable e-mail address")]
    NoAddress,
    #[error("too many attempts; try again in {retry_after} s")]
    Throttled { retry_after: i64 },
    #[error("busy; try again in {retry_after} s")]
    Busy { retry_after: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn digest(t: &TenantCtx, purpose: Purpose, secret: &str) -> Vec<u8> {
    keyed_digest(
        &t.tenant.secret_key,
        &format!("{}:{secret}", purpose.as_str()),
    )
}

fn mailer<S: ?Sized>(p: &Provider<S>) -> Result<&dyn Mailer, RecoveryError> {
    p.mailer().ok_or(RecoveryError::Unavailable)
}

/// Charge an attempt to each counter, unless one of them waits (then nothing stays charged).
async fn charge<S: LoginThrottleStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    keys: &[Key],
) -> Result<Vec<Charge>, RecoveryError> {
    let now = p.now();
    let mut charges = Vec::with_capacity(keys.len());
    for k in keys {
        match throttle::charge(p.store.as_ref(), &p.settings.login_throttle, t.id(), k, now).await?
        {
            Charge::Wait { until } => {
                for (k, c) in keys.iter().zip(&charges) {
                    throttle::refund(p.store.as_ref(), &p.settings.login_throttle, t.id(), k, c)
                        .await?;
                }
                return Err(RecoveryError::Throttled {
                    retry_after: (until - now).max(1),
                });
            }
            c => charges.push(c),
        }
    }
    Ok(charges)
}

fn message(t: &TenantCtx, user: &User, to: &str, lang: Option<&str>, content: Content) -> Message {
    Message {
        tenant_id: t.id().to_string(),
        tenant_name: t.tenant.name.clone(),
        user_id: Some(user.id.clone()),
        to: to.to_string(),
        lang: lang.map(str::to_string),
        content,
    }
}

/// The account a name typed on the "forgot password" page names: a username, else an
/// address that exactly one account has.
async fn find_account<S: UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    name: &str,
) -> Result<Option<User>, StoreError> {
    if let Some(u) = p.store.user_by_username(t.id(), name).await? {
        return Ok(Some(u));
    }
    if name.contains('@') {
        let mut found = p.store.users_by_email(t.id(), name).await?;
        if found.len() == 1 {
            return Ok(found.pop());
        }
    }
    Ok(None)
}

/// "Forgot password": mail a reset link to the account `name` (a username or an address)
/// names. Answers the same whether or not there is such an account (and sends nothing when
/// there is not); limited per name and per address. Recorded as `password_reset_requested`.
pub async fn request_password_reset<S>(
    p: &Provider<S>,
    t: &TenantCtx,
    name: &str,
    lang: Option<&str>,
    meta: &RequestMeta,
) -> Result<(), RecoveryError>
where
    S: UserStore + AccountTokenStore + LoginThrottleStore + AuditSink + ?Sized,
{
    let mailer = mailer(p)?;
    let name = name.trim();
    if name.is_empty() || name.len() > 320 {
        return Ok(());
    }
    let keys: Vec<Key> = throttle::address_key(meta.ip.as_deref())
        .into_iter()
        .chain([throttle::account_key(&t.tenant.secret_key, name)])
        .map(|k| k.within("reset"))
        .collect();
    charge(p, t, &keys).await?;
    let user = find_account(p, t, name).await?;
    let to = user
        .as_ref()
        .and_then(|u| u.email.clone())
        .filter(|e| check_address(e).is_ok());
    let (user, to) = match (user, to) {
        (Some(u), Some(to)) => (u, to),
        (user, _) => {
            let reason = if user.is_some() {
                "no address"
            } else {
                "unknown account"
            };
            let ev = AuditEvent::new(
                t.id(),
                EventKind::PasswordResetRequested,
                Outcome::Failure,
                Principal::Anonymous,
                meta,
            )
            .reason(reason)
            .username(name);
            let ev = match user {
                Some(u) => ev.subject(Principal::User { id: u.id }),
                None => ev,
            };
            p.store.record(&ev).await?;
            return Ok(());
        }
    };
    let secret = random_token(32);
    let now = p.now();
    p.store
        .put_account_token(&AccountToken {
            tenant_id: t.id().to_string(),
            user_id: user.id.clone(),
            purpose: Purpose::PasswordReset,
            digest: digest(t, Purpose::PasswordReset, &secret),
            email: to.clone(),
            created_at: now,
            expires_at: now + RESET_TTL,
        })
        .await?;
    let link = t.url(&format!("{RESET_PATH}?token={secret}"));
    let queued = mailer.send(message(
        t,
        &user,
        &to,
        lang,
        Content::PasswordReset {
            link,
            minutes: RESET_TTL / 60,
        },
    ));
    let ev = AuditEvent::new(
        t.id(),
        EventKind::PasswordResetRequested,
        if queued.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        Principal::Anonymous,
        meta,
    )
    .subject(Principal::User {
        id: user.id.clone(),
    })
    .username(name);
    let ev = match &queued {
        Ok(()) => ev,
        Err(e) => ev.reason(e.to_string()),
    };
    p.store.record(&ev).await?;
    Ok(())
}

fn plausible(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_TOKEN
}

/// The account a reset link is for, while the link works (the reset form shows it).
pub async fn reset_account<S>(
    p: &Provider<S>,
    t: &TenantCtx,
    token: &str,
) -> Result<User, RecoveryError>
where
    S: UserStore + AccountTokenStore + ?Sized,
{
    if !plausible(token) {
        return Err(RecoveryError::InvalidToken);
    }
    let stored = p
        .store
        .account_token(
            t.id(),
            Purpose::PasswordReset,
            &digest(t, Purpose::PasswordReset, token),
            p.now(),
        )
        .await?
        .ok_or(RecoveryError::InvalidToken)?;
    let user = p
        .store
        .user(t.id(), &stored.user_id)
        .await?
        .filter(|u| u.email.as_deref() == Some(stored.email.as_str()))
        .ok_or(RecoveryError::InvalidToken)?;
    Ok(user)
}

/// End every session of a person but `keep` (a cookie digest), revoking the grants made in
/// them; recorded as one `session_ended`. Returns how many ended.
async fn end_sessions<S>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    keep: Option<&[u8]>,
    reason: &str,
    meta: &RequestMeta,
) -> Result<usize, StoreError>
where
    S: SessionStore + GrantStore + AuditSink + ?Sized,
{
    let sids = p.store.delete_user_sessions(t.id(), &user.id, keep).await?;
    let mut revoked = 0;
    for sid in &sids {
        revoked += p.store.revoke_session_grants(t.id(), sid, p.now()).await?;
    }
    if !sids.is_empty() {
        let who = Principal::User {
            id: user.id.clone(),
        };
        let ev = AuditEvent::new(
            t.id(),
            EventKind::SessionEnded,
            Outcome::Success,
            who.clone(),
            meta,
        )
        .subject(who)
        .reason(reason)
        .detail(json!({"sids": sids, "grants_revoked": revoked}));
        p.store.record(&ev).await?;
    }
    Ok(sids.len())
}

/// Set a new password that passed the policy: hash it within the hashing bound.
async fn new_hash(pw: &str) -> Result<String, RecoveryError> {
    password::hash_bounded(pw.to_string())
        .await
        .map_err(|b| RecoveryError::Busy {
            retry_after: b.retry_after as i64,
        })
}

/// After a password was set: void pending resets and codes, end the sessions (but `keep`),
/// record `password_changed` and send the notice.
#[allow(clippy::too_many_arguments)]
async fn password_set<S>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    keep: Option<&[u8]>,
    how: &str,
    meta: &RequestMeta,
) -> Result<(), RecoveryError>
where
    S: UserStore + AccountTokenStore + SessionStore + GrantStore + AuditSink + ?Sized,
{
    p.store
        .delete_account_tokens(t.id(), &user.id, Some(Purpose::PasswordReset))
        .await?;
    p.store
        .delete_account_tokens(t.id(), &user.id, Some(Purpose::SignInCode))
        .await?;
    let ended = end_sessions(p, t, user, keep, "password_changed", meta).await?;
    let who = Principal::User {
        id: user.id.clone(),
    };
    let ev = AuditEvent::new(
        t.id(),
        EventKind::PasswordChanged,
        Outcome::Success,
        if how == "reset" {
            Principal::Anonymous
        } else {
            who.clone()
        },
        meta,
    )
    .subject(who)
    .detail(json!({"how": how, "sessions_ended": ended}));
    p.store.record(&ev).await?;
    notice::after(p, t, user, &ev);
    Ok(())
}

/// Choose a new password with a reset link: the password policy, then the link is taken
/// (once), the password set, every session of the person ended and a notice sent. A refused
/// password leaves the link working.
pub async fn reset_password<S>(
    p: &Provider<S>,
    t: &TenantCtx,
    token: &str,
    new_password: &str,
    meta: &RequestMeta,
) -> Result<User, RecoveryError>
where
    S: UserStore
        + AccountTokenStore
        + SessionStore
        + GrantStore
        + LoginThrottleStore
        + AuditSink
        + ?Sized,
{
    let user = reset_account(p, t, token).await?;
    password_policy::check(
        new_password,
        &user.username,
        user.email.as_deref(),
        t.tenant.settings.min_password_length,
    )?;
    let hash = new_hash(new_password).await?;
    let d = digest(t, Purpose::PasswordReset, token);
    let taken = p
        .store
        .take_account_token(t.id(), Purpose::PasswordReset, &d, p.now())
        .await?
        .filter(|k| k.user_id == user.id)
        .ok_or(RecoveryError::InvalidToken)?;
    if !p
        .store
        .set_password_hash(t.id(), &taken.user_id, Some(&hash), p.now())
        .await?
    {
        return Err(RecoveryError::InvalidToken);
    }
    // Whoever reset the password proved the mailbox: the name's lockout is lifted.
    throttle::clear(
        p.store.as_ref(),
        t.id(),
        &throttle::account_key(&t.tenant.secret_key, &user.username),
    )
    .await?;
    password_set(p, t, &user, None, "reset", meta).await?;
    Ok(user)
}

/// A signed-in person changes their password: the current one (within the guessing limits,
/// or, for an account without one, a sign-in in the last [`FRESH_SIGN_IN`] seconds), the
/// policy, then their other sessions end and a notice is sent.
pub async fn change_password<S>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    session: &Session,
    current: &str,
    new_password: &str,
    meta: &RequestMeta,
) -> Result<(), RecoveryError>
where
    S: UserStore
        + AccountTokenStore
        + SessionStore
        + GrantStore
        + LoginThrottleStore
        + AuditSink
        + ?Sized,
{
    match &user.password_hash {
        Some(hash) => {
            let key = throttle::account_key(&t.tenant.secret_key, &user.id).within("change");
            let charged = charge(p, t, std::slice::from_ref(&key)).await?;
            let ok = if current.is_empty() || current.len() > password_policy::MAX_PASSWORD_BYTES {
                false
            } else {
                match password::verify_bounded(current.to_string(), Some(hash.clone())).await {
                    Ok(ok) => ok,
                    Err(b) => {
                        for c in &charged {
                            throttle::refund(
                                p.store.as_ref(),
                                &p.settings.login_throttle,
                                t.id(),
                                &key,
                                c,
                            )
                            .await?;
                        }
                        return Err(RecoveryError::Busy {
                            retry_after: b.retry_after as i64,
                        });
                    }
                }
            };
            if !ok {
                return Err(RecoveryError::WrongPassword);
            }
            throttle::clear(p.store.as_ref(), t.id(), &key).await?;
        }
        None if session.auth_time + FRESH_SIGN_IN < p.now() => {
            return Err(RecoveryError::StaleSession);
        }
        None => {}
    }
    password_policy::check(
        new_password,
        &user.username,
        user.email.as_deref(),
        t.tenant.settings.min_password_length,
    )?;
    let hash = new_hash(new_password).await?;
    if !p
        .store
        .set_password_hash(t.id(), &user.id, Some(&hash), p.now())
        .await?
    {
        return Err(RecoveryError::Store(StoreError::NotFound));
    }
    password_set(p, t, user, Some(&session.digest), "changed", meta).await
}

/// Mail the signed-in person a link that confirms their address. Nothing is sent when it is
/// verified already; limited per account.
pub async fn request_email_verification<S>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    lang: Option<&str>,
) -> Result<(), RecoveryError>
where
    S: AccountTokenStore + LoginThrottleStore + ?Sized,
{
    let mailer = mailer(p)?;
    let to = user
        .email
        .clone()
        .filter(|e| check_address(e).is_ok())
        .ok_or(RecoveryError::NoAddress)?;
    if user.email_verified {
        return Ok(());
    }
    let key = throttle::account_key(&t.tenant.secret_key, &user.id).within("verify");
    charge(p, t, &[key]).await?;
    let secret = random_token(32);
    let now = p.now();
    p.store
        .put_account_token(&AccountToken {
            tenant_id: t.id().to_string(),
            user_id: user.id.clone(),
            purpose: Purpose::VerifyEmail,
            digest: digest(t, Purpose::VerifyEmail, &secret),
            email: to.clone(),
            created_at: now,
            expires_at: now + VERIFY_TTL,
        })
        .await?;
    let link = t.url(&format!("{VERIFY_PATH}?token={secret}"));
    mailer
        .send(message(
            t,
            user,
            &to,
            lang,
            Content::VerifyEmail {
                link,
                minutes: VERIFY_TTL / 60,
            },
        ))
        .map_err(|_| RecoveryError::Unavailable)
}

/// Confirm an address with the link mailed to it: the link is taken (once) and the account's
/// address marked verified, if it is still the one the link was sent to. Recorded as
/// `email_verified`.
pub async fn verify_email<S>(
    p: &Provider<S>,
    t: &TenantCtx,
    token: &str,
    meta: &RequestMeta,
) -> Result<User, RecoveryError>
where
    S: UserStore + AccountTokenStore + AuditSink + ?Sized,
{
    if !plausible(token) {
        return Err(RecoveryError::InvalidToken);
    }
    let taken = p
        .store
        .take_account_token(
            t.id(),
            Purpose::VerifyEmail,
            &digest(t, Purpose::VerifyEmail, token),
            p.now(),
        )
        .await?
        .ok_or(RecoveryError::InvalidToken)?;
    if !p
        .store
        .set_email_verified(t.id(), &taken.user_id, &taken.email, p.now())
        .await?
    {
        return Err(RecoveryError::InvalidToken);
    }
    let user = p
        .store
        .user(t.id(), &taken.user_id)
        .await?
        .ok_or(RecoveryError::InvalidToken)?;
    let who = Principal::User {
        id: user.id.clone(),
    };
    let ev = AuditEvent::new(
        t.id(),
        EventKind::EmailVerified,
        Outcome::Success,
        who.clone(),
        meta,
    )
    .subject(who)
    .email(Some(&taken.email));
    p.store.record(&ev).await?;
    Ok(user)
}

/// A random code of [`CODE_DIGITS`] decimal digits, uniformly drawn.
fn random_code() -> String {
    let bound = 10u32.pow(CODE_DIGITS as u32);
    // Reject the top partial range so every code is equally likely.
    let limit = u32::MAX - u32::MAX % bound;
    loop {
        let b = random_bytes(4);
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if n < limit {
            return format!("{:0width$}", n % bound, width = CODE_DIGITS);
        }
    }
}

/// Mail `user` a one-time sign-in code (replacing an earlier one); limited per account.
pub async fn send_sign_in_code<S>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    lang: Option<&str>,
) -> Result<(), RecoveryError>
where
    S: AccountTokenStore + LoginThrottleStore + ?Sized,
{
    let mailer = mailer(p)?;
    let to = user
        .email
        .clone()
        .filter(|e| check_address(e).is_ok())
        .ok_or(RecoveryError::NoAddress)?;
    let key = throttle::account_key(&t.tenant.secret_key, &user.id).within("code-send");
    charge(p, t, &[key]).await?;
    let code = random_code();
    let now = p.now();
    p.store
        .put_account_token(&AccountToken {
            tenant_id: t.id().to_string(),
            user_id: user.id.clone(),
            purpose: Purpose::SignInCode,
            digest: digest(t, Purpose::SignInCode, &format!("{}:{code}", user.id)),
            email: to.clone(),
            created_at: now,
            expires_at: now + CODE_TTL,
        })
        .await?;
    mailer
        .send(message(
            t,
            user,
            &to,
            lang,
            Content::SignInCode {
                code,
                minutes: CODE_TTL / 60,
            },
        ))
        .map_err(|_| RecoveryError::Unavailable)
}

/// Check a sign-in code `user` typed: each guess is counted (per account and per address,
/// as password guesses are), the right code is taken once and clears the account's count.
pub async fn check_sign_in_code<S>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    code: &str,
    meta: &RequestMeta,
) -> Result<(), RecoveryError>
where
    S: AccountTokenStore + LoginThrottleStore + ?Sized,
{
    let account = throttle::account_key(&t.tenant.secret_key, &user.id).within("code");
    let keys: Vec<Key> = throttle::address_key(meta.ip.as_deref())
        .map(|k| k.within("code"))
        .into_iter()
        .chain([account.clone()])
        .collect();
    let charges = charge(p, t, &keys).await?;
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RecoveryError::InvalidCode);
    }
    let d = digest(t, Purpose::SignInCode, &format!("{}:{code}", user.id));
    p.store
        .take_account_token(t.id(), Purpose::SignInCode, &d, p.now())
        .await?
        .filter(|k| k.user_id == user.id)
        .ok_or(RecoveryError::InvalidCode)?;
    throttle::clear(p.store.as_ref(), t.id(), &account).await?;
    for (k, c) in keys.iter().zip(&charges) {
        if k.scope == throttle::Scope::Address {
            throttle::refund(p.store.as_ref(), &p.settings.login_throttle, t.id(), k, c).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The recovery rules over the in-memory store, with a mailer that keeps what it is given.

    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::audit::EventKind;
    use crate::mail::{MailError, Notice};
    use crate::testing::{Fake, provider, user};

    #[derive(Default)]
    struct Outbox(Mutex<Vec<Message>>);

    impl Mailer for Outbox {
        fn send(&self, m: Message) -> Result<(), MailError> {
            self.0.lock().unwrap().push(m);
            Ok(())
        }
    }

    impl Outbox {
        fn last(&self) -> Message {
            self.0.lock().unwrap().last().cloned().expect("a mail")
        }
        fn count(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    fn alice() -> User {
        let mut u = user("u1", "alice");
        u.email = Some("alice@example.com".into());
        u.password_hash = Some(password::hash("correct horse battery"));
        u
    }

    fn setup() -> (Provider<Fake>, TenantCtx, Arc<Outbox>) {
        let fake = Fake {
            users: vec![alice()],
            ..Fake::default()
        };
        let (p, t) = provider(fake);
        let outbox = Arc::new(Outbox::default());
        (p.with_mailer(outbox.clone()), t, outbox)
    }

    fn meta() -> RequestMeta {
        RequestMeta {
            ip: Some("192.0.2.1".into()),
            ..RequestMeta::default()
        }
    }

    fn token_of(link: &str) -> String {
        link.split_once("token=").unwrap().1.to_string()
    }

    fn reset_link(m: &Message) -> String {
        match &m.content {
            Content::PasswordReset { link, minutes } => {
                assert_eq!(*minutes, 30);
                link.clone()
            }
            other => panic!("not a reset mail: {other:?}"),
        }
    }

    #[tokio::test]
    async fn reset_link_works_once_and_ends_sessions() {
        let (p, t, outbox) = setup();
        let s = Session {
            digest: vec![1],
            tenant_id: t.id().into(),
            sid: "sid1".into(),
            user_id: "u1".into(),
            auth_time: 0,
            amr: vec![],
            acr: String::new(),
            expires_at: i64::MAX,
            created_at: 0,
            user_agent: None,
            ip: None,
            risk_acr: None,
        };
        p.store.create_session(&s).await.unwrap();
        request_password_reset(&p, &t, "alice", Some("de"), &meta())
            .await
            .unwrap();
        let m = outbox.last();
        assert_eq!(m.to, "alice@example.com");
        assert_eq!(m.lang.as_deref(), Some("de"));
        let link = reset_link(&m);
        assert!(link.starts_with("https://id.example/t/acme/account/password/reset?token="));
        let token = token_of(&link);
        assert!(token.len() >= 43, "at least 256 bits");
        // Only a digest is stored.
        let stored = p.store.account_tokens.lock().unwrap()[0].clone();
        assert!(
            !stored
                .digest
                .windows(token.len())
                .any(|w| w == token.as_bytes())
        );

        // A refused password leaves the link working.
        assert!(matches!(
            reset_password(&p, &t, &token, "password", &meta()).await,
            Err(RecoveryError::Rejected(_))
        ));
        reset_password(&p, &t, &token, "a new long passphrase", &meta())
            .await
            .unwrap();
        let u = p.store.user(t.id(), "u1").await.unwrap().unwrap();
        assert!(password::verify(
            "a new long passphrase",
            u.password_hash.as_deref().unwrap()
        ));
        assert!(
            p.store.sessions.lock().unwrap().is_empty(),
            "sessions ended"
        );
        // Once only.
        assert!(matches!(
            reset_password(&p, &t, &token, "another long passphrase", &meta()).await,
            Err(RecoveryError::InvalidToken)
        ));
        assert_eq!(p.store.recorded(EventKind::PasswordChanged).len(), 1);
        assert_eq!(p.store.recorded(EventKind::PasswordResetRequested).len(), 1);
        assert_eq!(
            outbox.last().content,
            Content::Notice(Notice::PasswordChanged)
        );
    }

    #[tokio::test]
    async fn expired_and_replaced_links_are_refused() {
        let (p, t, outbox) = setup();
        request_password_reset(&p, &t, "alice@example.com", None, &meta())
            .await
            .unwrap();
        let first = token_of(&reset_link(&outbox.last()));
        request_password_reset(&p, &t, "alice", None, &meta())
            .await
            .unwrap();
        let second = token_of(&reset_link(&outbox.last()));
        assert!(matches!(
            reset_account(&p, &t, &first).await,
            Err(RecoveryError::InvalidToken)
        ));
        assert!(reset_account(&p, &t, &second).await.is_ok());
        // Expired: move the stored expiry into the past.
        p.store.account_tokens.lock().unwrap()[0].expires_at = p.now() - 1;
        assert!(matches!(
            reset_password(&p, &t, &second, "a new long passphrase", &meta()).await,
            Err(RecoveryError::InvalidToken)
        ));
        for junk in ["", "x", &"a".repeat(500)] {
            assert!(matches!(
                reset_account(&p, &t, junk).await,
                Err(RecoveryError::InvalidToken)
            ));
        }
    }

    #[tokio::test]
    async fn unknown_accounts_get_the_same_answer_and_no_mail() {
        let (p, t, outbox) = setup();
        request_password_reset(&p, &t, "mallory", None, &meta())
            .await
            .unwrap();
        request_password_reset(&p, &t, "nobody@example.com", None, &meta())
            .await
            .unwrap();
        assert_eq!(outbox.count(), 0);
        let recorded = p.store.recorded(EventKind::PasswordResetRequested);
        assert_eq!(recorded.len(), 2);
        assert!(recorded.iter().all(|e| e.outcome == Outcome::Failure));
    }

    #[tokio::test]
    async fn reset_requests_are_limited_per_name() {
        let (p, t, _outbox) = setup();
        let mut throttled = false;
        for _ in 0..6 {
            if let Err(RecoveryError::Throttled { .. }) =
                request_password_reset(&p, &t, "alice", None, &meta()).await
            {
                throttled = true;
            }
        }
        assert!(throttled);
    }

    #[tokio::test]
    async fn nothing_is_offered_without_mail() {
        let (p, t) = provider(Fake {
            users: vec![alice()],
            ..Fake::default()
        });
        assert!(matches!(
            request_password_reset(&p, &t, "alice", None, &meta()).await,
            Err(RecoveryError::Unavailable)
        ));
    }

    #[tokio::test]
    async fn verification_link_confirms_the_address_it_was_sent_to() {
        let (p, t, outbox) = setup();
        let u = alice();
        request_email_verification(&p, &t, &u, None).await.unwrap();
        let link = match outbox.last().content {
            Content::VerifyEmail { link, .. } => link,
            other => panic!("{other:?}"),
        };
        assert!(link.contains(VERIFY_PATH));
        let token = token_of(&link);
        let verified = verify_email(&p, &t, &token, &meta()).await.unwrap();
        assert!(verified.email_verified);
        assert!(matches!(
            verify_email(&p, &t, &token, &meta()).await,
            Err(RecoveryError::InvalidToken)
        ));
        assert_eq!(p.store.recorded(EventKind::EmailVerified).len(), 1);
    }

    #[tokio::test]
    async fn sign_in_codes_are_single_use_and_guesses_are_limited() {
        let (p, t, outbox) = setup();
        let u = alice();
        send_sign_in_code(&p, &t, &u, None).await.unwrap();
        let code = match outbox.last().content {
            Content::SignInCode { code, minutes } => {
                assert_eq!(minutes, 10);
                code
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(code.len(), CODE_DIGITS);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let wrong = if code == "000000" { "000001" } else { "000000" };
        assert!(matches!(
            check_sign_in_code(&p, &t, &u, wrong, &meta()).await,
            Err(RecoveryError::InvalidCode)
        ));
        check_sign_in_code(&p, &t, &u, &code, &meta())
            .await
            .unwrap();
        assert!(matches!(
            check_sign_in_code(&p, &t, &u, &code, &meta()).await,
            Err(RecoveryError::InvalidCode)
        ));
        // Guessing runs into the limits.
        send_sign_in_code(&p, &t, &u, None).await.unwrap();
        let mut throttled = false;
        for _ in 0..12 {
            if let Err(RecoveryError::Throttled { .. }) =
                check_sign_in_code(&p, &t, &u, "12345x", &meta()).await
            {
                throttled = true;
                break;
            }
        }
        assert!(throttled);
    }

    #[tokio::test]
    async fn expired_codes_are_refused() {
        let (p, t, outbox) = setup();
        let u = alice();
        send_sign_in_code(&p, &t, &u, None).await.unwrap();
        let Content::SignInCode { code, .. } = outbox.last().content else {
            panic!()
        };
        p.store.account_tokens.lock().unwrap()[0].expires_at = p.now() - 1;
        assert!(matches!(
            check_sign_in_code(&p, &t, &u, &code, &meta()).await,
            Err(RecoveryError::InvalidCode)
        ));
    }

    #[tokio::test]
    async fn password_change_needs_the_current_one_and_keeps_this_session() {
        let (p, t, outbox) = setup();
        let mk = |d: u8, sid: &str| Session {
            digest: vec![d],
            tenant_id: t.id().into(),
            sid: sid.into(),
            user_id: "u1".into(),
            auth_time: p.now(),
            amr: vec![],
            acr: String::new(),
            expires_at: i64::MAX,
            created_at: 0,
            user_agent: None,
            ip: None,
            risk_acr: None,
        };
        let (here, other) = (mk(1, "here"), mk(2, "other"));
        p.store.create_session(&here).await.unwrap();
        p.store.create_session(&other).await.unwrap();
        let u = alice();
        assert!(matches!(
            change_password(&p, &t, &u, &here, "wrong", "a new long passphrase", &meta()).await,
            Err(RecoveryError::WrongPassword)
        ));
        change_password(
            &p,
            &t,
            &u,
            &here,
            "correct horse battery",
            "a new long passphrase",
            &meta(),
        )
        .await
        .unwrap();
        let left = p.store.sessions.lock().unwrap().clone();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].sid, "here");
        assert_eq!(
            outbox.last().content,
            Content::Notice(Notice::PasswordChanged)
        );
    }

    #[test]
    fn codes_are_uniform_digits() {
        for _ in 0..200 {
            let c = random_code();
            assert_eq!(c.len(), CODE_DIGITS);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
