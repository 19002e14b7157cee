//! Password login and browser sessions. Failures look and take the same whether or not the
//! account exists; session ids are stored only as digests and are new at every login.

pub mod email_code;
pub mod method;
pub mod notice;
pub mod recovery;
pub mod second_factor;
pub mod store;
pub mod throttle;
pub mod totp;
pub mod webauthn;

use serde_json::json;

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::{keyed_digest, password, random_token};
use crate::domain::model::{Session, User};
use crate::error::StoreError;
use crate::provider::{Provider, TenantCtx};
use crate::risk;
use crate::store::{AuditSink, GrantStore, LoginThrottleStore, RiskStore, SessionStore, UserStore};
use method::{LoginMethod, Password, Proof, stronger_acr};
use webauthn::PasskeyMethod;

/// The methods a tenant offers, in the order pages show them: sign-in methods first (passkeys
/// only where WebAuthn works: the issuer on a domain name), then second factors (TOTP, recovery
/// codes, and a code by e-mail when the tenant turned it on and mail is configured). A sign-in
/// page shows the first ([`method::sign_in_ids`]); discovery's `acr_values_supported` reads
/// them all.
pub fn offered<S: ?Sized>(p: &Provider<S>, t: &TenantCtx) -> Vec<&'static dyn LoginMethod> {
    let mut out: Vec<&'static dyn LoginMethod> = vec![&Password];
    if webauthn::available(t) {
        out.push(&PasskeyMethod);
    }
    out.push(&totp::TotpMethod);
    out.push(&totp::recovery::RecoveryCodeMethod);
    if t.tenant.settings.email_code && p.mailer().is_some() {
        out.push(&email_code::EmailCodeMethod);
    }
    out
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong password: never say which.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failures for this account name or address: try again after `retry_after`
    /// seconds. Answered the same whether or not the account exists, without checking the
    /// password (so the right one does not get in either).
    #[error("too many failed sign-in attempts; try again in {retry_after} s")]
    Throttled { retry_after: i64 },
    /// Password checking is at capacity: try again after `retry_after` seconds.
    #[error("busy; try again in {retry_after} s")]
    Busy { retry_after: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Record a failed attempt (with the name typed, erasable, when it is plausible).
async fn record_failure<S: AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    username: &str,
    actor: Principal,
    reason: &str,
    detail: serde_json::Value,
    meta: &RequestMeta,
) -> Result<(), StoreError> {
    let ev = AuditEvent::new(
        t.id(),
        EventKind::LoginFailed,
        Outcome::Failure,
        actor,
        meta,
    )
    .reason(reason)
    .detail(detail);
    let ev = if username.is_empty() || username.len() > 256 {
        ev
    } else {
        ev.username(username)
    };
    p.store.record(&ev).await
}

/// How long an attempt refused for lack of hashing capacity waits before it is answered.
pub const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// A person whose password checked out, with what the risk decision asks of the session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    /// The `acr` the session must reach before it is used (`risk::owed_acr`).
    pub owed_acr: Option<&'static str>,
}

/// Refuse an attempt the risk policy blocks: its address (and, after a right password, its
/// account name) waits `block_seconds`, and it is answered as too many attempts.
#[allow(clippy::too_many_arguments)]
async fn risk_block<S: LoginThrottleStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    username: &str,
    actor: Principal,
    hold: &[&throttle::Key],
    reasons: Vec<&'static str>,
    now: i64,
    meta: &RequestMeta,
) -> Result<LoginError, StoreError> {
    let retry_after = t.tenant.settings.risk.block_seconds;
    for k in hold {
        throttle::hold(p.store.as_ref(), t.id(), k, now, now + retry_after).await?;
    }
    record_failure(
        p,
        t,
        username,
        actor,
        "throttled",
        json!({"method": "pwd", "throttle": "risk", "risk": reasons, "retry_after": retry_after}),
        meta,
    )
    .await?;
    Ok(LoginError::Throttled { retry_after })
}

/// Check a username and password, within the password-guessing limits
/// ([`crate::login::throttle`]), the process-wide bound on password hashing, and the tenant's
/// risk policy ([`crate::risk`]): blocked before the password is checked (credential
/// stuffing from the address), or after it; a sign-in the policy asks more of comes back
/// with the `acr` its session owes.
pub async fn password_login<S: UserStore + LoginThrottleStore + RiskStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    username: &str,
    pw: &str,
    meta: &RequestMeta,
) -> Result<SignedIn, LoginError> {
    // A place among the password checks first: an attempt refused for lack of hashing
    // capacity costs nothing else and is not charged to any counter.
    let ticket = match password::admit() {
        Ok(t) => t,
        Err(busy) => {
            // Answered after a pause that costs the server nothing: a client that retries at
            // once cannot turn refusals into a flood of requests that starves the hashing.
            tokio::time::sleep(BUSY_PAUSE).await;
            return Err(LoginError::Busy {
                retry_after: busy.retry_after as i64,
            });
        }
    };
    let limits = &p.settings.login_throttle;
    let now = p.now();
    let account = throttle::account_key(&t.tenant.secret_key, username);
    let address = throttle::address_key(meta.ip.as_deref());
    let keys: Vec<throttle::Key> = address
        .clone()
        .into_iter()
        .chain([account.clone()])
        .collect();
    let risk_keys = risk::AttemptKeys {
        account: &account.key,
        address: address.as_ref().map(|k| k.key.as_str()),
    };
    // Refuse unchecked while any counter waits; else charge the attempt to each counter
    // before the password is checked, so parallel guesses are all counted.
    let mut charges: Vec<(&throttle::Key, throttle::Charge)> = Vec::with_capacity(keys.len());
    let mut wait_until = None;
    for k in &keys {
        if let Some(until) = throttle::waiting(p.store.as_ref(), t.id(), k, now).await? {
            wait_until = Some((until, k.scope.clone()));
            break;
        }
    }
    if wait_until.is_none() {
        for k in &keys {
            match throttle::charge(p.store.as_ref(), limits, t.id(), k, now).await? {
                throttle::Charge::Wait { until } => {
                    // Refused unchecked: the counters already charged get the attempt back.
                    for (k, c) in &charges {
                        throttle::refund(p.store.as_ref(), limits, t.id(), k, c).await?;
                    }
                    wait_until = Some((until, k.scope.clone()));
                    break;
                }
                c => charges.push((k, c)),
            }
        }
    }
    if let Some((until, scope)) = wait_until {
        let retry_after = (until - now).max(1);
        record_failure(
            p,
            t,
            username,
            Principal::Anonymous,
            "throttled",
            json!({"method": "pwd", "throttle": scope.as_str(), "retry_after": retry_after}),
            meta,
        )
        .await?;
        return Err(LoginError::Throttled { retry_after });
    }
    // Credential stuffing from this address: refused unchecked, like a lockout, and the
    // counters charged get the attempt back.
    if risk::before_password(p, t, risk_keys, meta).await?.action == risk::Action::Block {
        for (k, c) in &charges {
            throttle::refund(p.store.as_ref(), limits, t.id(), k, c).await?;
        }
        let hold: Vec<&throttle::Key> = address.iter().collect();
        let reasons = vec![risk::Signal::CredentialStuffing.as_str()];
        return Err(risk_block(
            p,
            t,
            username,
            Principal::Anonymous,
            &hold,
            reasons,
            now,
            meta,
        )
        .await?);
    }

    let user = if username.is_empty() || username.len() > 256 || pw.len() > 1024 {
        None
    } else {
        p.store.user_by_username(t.id(), username).await?
    };
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = match ticket.verify(pw.to_string(), hash.clone()).await {
        Ok(ok) => ok,
        Err(busy) => {
            // Not judged: give the attempt back.
            for (k, c) in &charges {
                throttle::refund(p.store.as_ref(), limits, t.id(), k, c).await?;
            }
            return Err(LoginError::Busy {
                retry_after: busy.retry_after as i64,
            });
        }
    };
    match user {
        Some(u) if ok && hash.is_some() => {
            for (k, c) in &charges {
                match k.scope {
                    throttle::Scope::Account | throttle::Scope::SecondFactor => {
                        throttle::clear(p.store.as_ref(), t.id(), k).await?
                    }
                    throttle::Scope::Address => {
                        throttle::refund(p.store.as_ref(), limits, t.id(), k, c).await?
                    }
                }
            }
            let proven = risk::Proven::Password {
                password: pw,
                keys: risk_keys,
            };
            let a = risk::after_sign_in(p, t, &u, proven, meta).await?;
            if a.action == risk::Action::Block {
                let who = Principal::User { id: u.id.clone() };
                let hold: Vec<&throttle::Key> = keys.iter().collect();
                return Err(risk_block(p, t, username, who, &hold, a.reasons(), now, meta).await?);
            }
            let owed_acr = risk::owed_acr(a.action);
            let ev = AuditEvent::new(
                t.id(),
                EventKind::LoginSucceeded,
                Outcome::Success,
                Principal::User { id: u.id.clone() },
                meta,
            )
            .subject(Principal::User { id: u.id.clone() })
            .username(username)
            .detail(json!({
                "method": "pwd",
                "risk": a.action.as_str(),
                "new_device": a.has(risk::Signal::NewDevice),
            }));
            p.store.record(&ev).await?;
            notice::after(p, t, &u, &ev);
            Ok(SignedIn { user: u, owed_acr })
        }
        other => {
            let reason = if other.is_some() {
                "wrong password"
            } else {
                "unknown user"
            };
            let user_id = other.as_ref().map(|u| u.id.clone());
            risk::failed(p, t, risk_keys, user_id.as_deref()).await?;
            let actor = other
                .as_ref()
                .map(|u| Principal::User { id: u.id.clone() })
                .unwrap_or(Principal::Anonymous);
            record_failure(
                p,
                t,
                username,
                actor.clone(),
                reason,
                json!({"method": "pwd"}),
                meta,
            )
            .await?;
            // A failure that reaches a lockout threshold is recorded as a lockout.
            for (k, c) in &charges {
                if let throttle::Charge::Counted { now: counter, .. } = c
                    && throttle::locked_out(limits, k, counter)
                {
                    let ev = AuditEvent::new(
                        t.id(),
                        EventKind::LoginLocked,
                        Outcome::Failure,
                        actor.clone(),
                        meta,
                    )
                    .reason(k.scope.as_str())
                    .detail(json!({
                        "failures": counter.failures,
                        "locked_until": counter.locked_until,
                    }));
                    let ev = match k.scope {
                        throttle::Scope::Account
                            if !username.is_empty() && username.len() <= 256 =>
                        {
                            ev.username(username)
                        }
                        _ => ev,
                    };
                    p.store.record(&ev).await?;
                    if let Some(u) = &other {
                        notice::after(p, t, u, &ev);
                    }
                }
            }
            Err(LoginError::InvalidCredentials)
        }
    }
}

/// Start a new session for a user who just authenticated; returns the cookie value.
pub async fn start_session<S: SessionStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    proof: &Proof,
    meta: &RequestMeta,
) -> Result<(String, Session), StoreError> {
    start_session_owing(p, t, user, proof, None, meta).await
}

/// [`start_session`] for a sign-in whose risk decision asks the session to reach `owed_acr`
/// (a second factor, a passkey) before it is used.
pub async fn start_session_owing<S: SessionStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    proof: &Proof,
    owed_acr: Option<&str>,
    meta: &RequestMeta,
) -> Result<(String, Session), StoreError> {
    let now = p.now();
    let value = random_token(32);
    let session = Session {
        digest: keyed_digest(&t.tenant.secret_key, &value),
        tenant_id: t.id().to_string(),
        sid: random_token(16),
        user_id: user.id.clone(),
        auth_time: now,
        amr: proof.amr.iter().map(|a| a.to_string()).collect(),
        acr: proof.method.acr().to_string(),
        expires_at: now + p.settings.session_ttl,
        created_at: now,
        user_agent: meta
            .user_agent
            .as_deref()
            .map(|ua| crate::untrusted::clip(ua, 256).into_owned()),
        ip: meta.ip.clone(),
        risk_acr: owed_acr.map(str::to_string),
    };
    p.store.create_session(&session).await?;
    let ev = AuditEvent::new(
        t.id(),
        EventKind::SessionStarted,
        Outcome::Success,
        Principal::User {
            id: user.id.clone(),
        },
        meta,
    )
    .subject(Principal::User {
        id: user.id.clone(),
    })
    .detail(json!({"sid": session.sid, "amr": session.amr, "risk_acr": session.risk_acr}));
    p.store.record(&ev).await?;
    Ok((value, session))
}

/// Add what a further login method proved to a live session (a second factor, or a step-up to
/// a stronger method): its `amr` values join the session's, its `acr` is the stronger of the
/// two, and `auth_time` is now. The session keeps its id and cookie.
pub async fn add_factor<S: SessionStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    session: &Session,
    proof: &Proof,
    meta: &RequestMeta,
) -> Result<Session, StoreError> {
    let mut s = session.clone();
    for a in &proof.amr {
        if !s.amr.iter().any(|x| x == a) {
            s.amr.push(a.to_string());
        }
    }
    s.acr = stronger_acr(&s.acr, proof.method.acr()).to_string();
    s.auth_time = p.now();
    if !p.store.update_session(&s).await? {
        return Err(StoreError::NotFound);
    }
    let ev = AuditEvent::new(
        t.id(),
        EventKind::SessionFactorAdded,
        Outcome::Success,
        Principal::User {
            id: s.user_id.clone(),
        },
        meta,
    )
    .subject(Principal::User {
        id: s.user_id.clone(),
    })
    .detail(json!({"sid": s.sid, "method": proof.method.id(), "amr": s.amr, "acr": s.acr}));
    p.store.record(&ev).await?;
    Ok(s)
}

/// Whether the person signed in recently enough to change how they sign in
/// ([`crate::settings::Settings::recent_sign_in`]).
pub fn signed_in_recently<S: ?Sized>(p: &Provider<S>, session: &Session) -> bool {
    p.now() - session.auth_time <= p.settings.recent_sign_in
}

/// How a step the risk decision owed a session turned out when the person lacked what it
/// asked for (`oauth::authorize::Next::RiskFallback`, `Next::RiskRefused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskStep {
    /// A passkey was owed and the person has none: a second factor is owed instead.
    SecondFactor,
    /// Nothing the person has can meet it: the sign-in is refused.
    Refused,
}

impl RiskStep {
    fn as_str(self) -> &'static str {
        match self {
            RiskStep::SecondFactor => "second_factor",
            RiskStep::Refused => "refused",
        }
    }
}

/// Record how a risk-owed step turned out (`risk_decision`, stage `step`, with `because`:
/// `no_passkey`, `no_second_factor`), so the operator sees a passkey step met by a second
/// factor, or a sign-in refused for want of one; for [`RiskStep::SecondFactor`] the session
/// owes `mfa` from now on (returned). Only for a session that owes a risk step.
pub async fn risk_step<S: SessionStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    session: &Session,
    client_id: Option<&str>,
    step: RiskStep,
    because: &'static str,
    meta: &RequestMeta,
) -> Result<Session, StoreError> {
    let mut s = session.clone();
    let owed = s.risk_acr.clone();
    if step == RiskStep::SecondFactor {
        s.risk_acr = Some(crate::settings::ACR_MFA.to_string());
        if !p.store.update_session(&s).await? {
            return Err(StoreError::NotFound);
        }
    }
    let who = Principal::User {
        id: s.user_id.clone(),
    };
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::RiskDecision,
        Outcome::Failure,
        who.clone(),
        meta,
    )
    .subject(who)
    .reason(format!("{}: {because}", step.as_str()))
    .detail(json!({
        "stage": "step",
        "decision": step.as_str(),
        "because": because,
        "owed": owed,
        "sid": s.sid,
    }));
    ev.client_id = client_id.map(str::to_string);
    p.store.record(&ev).await?;
    Ok(s)
}

/// Does this session still owe the `acr` its sign-in's risk decision asked for? Such a
/// session serves only the interaction that signed it in (which asks for the step-up); for
/// everything else it is no session ([`current_session`]), so the account pages cannot be
/// used to add a passkey with it.
pub fn owes_risk_step(session: &Session) -> bool {
    session
        .risk_acr
        .as_deref()
        .is_some_and(|owed| !method::acr_satisfies(&session.acr, owed))
}

/// The live session behind a cookie value, if any (not one that owes a risk step).
pub async fn current_session<S: SessionStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    cookie: &str,
) -> Result<Option<Session>, StoreError> {
    if cookie.is_empty() || cookie.len() > 128 {
        return Ok(None);
    }
    let s = p
        .store
        .session(t.id(), &keyed_digest(&t.tenant.secret_key, cookie))
        .await?;
    Ok(s.filter(|s| s.expires_at > p.now() && !owes_risk_step(s)))
}

/// The live session behind a cookie value, even one that owes a risk step: only for the forms
/// of the sign-in that made it (bound to its `sid`), which ask for that step.
pub async fn signing_in_session<S: SessionStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    cookie: &str,
) -> Result<Option<Session>, StoreError> {
    if cookie.is_empty() || cookie.len() > 128 {
        return Ok(None);
    }
    let s = p
        .store
        .session(t.id(), &keyed_digest(&t.tenant.secret_key, cookie))
        .await?;
    Ok(s.filter(|s| s.expires_at > p.now()))
}

/// Most sessions the account page lists (and one "sign out everywhere else" ends in a round).
pub const MAX_LISTED_SESSIONS: u32 = 50;

/// End one of `user_id`'s sessions by its `sid` (signing a device out from the account page):
/// as a logout there. False when they have no such live session.
pub async fn sign_out_session<S: SessionStore + GrantStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    sid: &str,
    meta: &RequestMeta,
) -> Result<bool, StoreError> {
    let sessions = p
        .store
        .user_sessions(t.id(), user_id, p.now(), MAX_LISTED_SESSIONS)
        .await?;
    match sessions.iter().find(|s| s.sid == sid) {
        Some(s) => {
            end_session(p, t, s, meta).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// End every session of the person but `current` ("sign out everywhere else"); returns how
/// many ended.
pub async fn sign_out_others<S: SessionStore + GrantStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    current: &Session,
    meta: &RequestMeta,
) -> Result<u64, StoreError> {
    let mut ended = 0;
    // Rounds of at most MAX_LISTED_SESSIONS: bounded work per round, and a person cannot hold
    // more than the session lifetime lets accumulate.
    for _ in 0..100 {
        let others: Vec<Session> = p
            .store
            .user_sessions(t.id(), &current.user_id, p.now(), MAX_LISTED_SESSIONS)
            .await?
            .into_iter()
            .filter(|s| s.sid != current.sid)
            .collect();
        if others.is_empty() {
            break;
        }
        for s in &others {
            end_session(p, t, s, meta).await?;
            ended += 1;
        }
    }
    Ok(ended)
}

/// End a session (logout): delete it and revoke the grants made in it.
pub async fn end_session<S: SessionStore + GrantStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    session: &Session,
    meta: &RequestMeta,
) -> Result<(), StoreError> {
    p.store.delete_session(t.id(), &session.digest).await?;
    let revoked = p
        .store
        .revoke_session_grants(t.id(), &session.sid, p.now())
        .await?;
    let ev = AuditEvent::new(
        t.id(),
        EventKind::SessionEnded,
        Outcome::Success,
        Principal::User {
            id: session.user_id.clone(),
        },
        meta,
    )
    .subject(Principal::User {
        id: session.user_id.clone(),
    })
    .reason("logout")
    .detail(json!({"sid": session.sid, "grants_revoked": revoked}));
    p.store.record(&ev).await?;
    Ok(())
}
