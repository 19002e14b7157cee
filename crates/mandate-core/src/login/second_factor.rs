//! The second-factor step of signing in: what a person has enrolled and so may use, whether a
//! sign-in must prove a second factor (the tenant's policy, the client, or the person's own
//! choice to enrol one), checking a code within the guessing limits, and the administrator's
//! view and reset of a person's methods (one operation for the CLI and the admin API).
//!
//! A step the risk decision owes a session (`Session::risk_acr`) is never met by enrolling a
//! factor there and then (whoever typed a stolen password could enrol their own app): only by
//! the person's own second factors, else by a code mailed to their verified address
//! ([`risk_fallback`]).

use serde::Serialize;
use serde_json::json;

use super::email_code::{self, EmailCodeMethod};
use super::method::{LoginMethod, Proof, SecondFactorStep, second_factor_ids, second_factor_step};
use super::recovery::{self as mail_recovery, RecoveryError};
use super::throttle;
use super::totp::recovery::{self, RecoveryCodeMethod};
use super::totp::{self, TotpMethod};
use super::webauthn::{self, PasskeyError, PasskeyMethod};
use super::{offered, owes_risk_step};
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::domain::model::{Session, TenantSettings, User};
use crate::error::{AdminError, StoreError};
use crate::provider::{Provider, TenantCtx};
use crate::store::{
    AccountTokenStore, AuditSink, LoginThrottleStore, PasskeyStore, TotpStore, UserStore,
};

/// What a person can sign in with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrolment {
    pub password: bool,
    pub passkeys: usize,
    /// When their authenticator app was enrolled (confirmed).
    pub totp_enrolled_at: Option<i64>,
    pub recovery_codes_left: i64,
    /// A code can be mailed to them (a verified address, mail configured): not a factor they
    /// chose, a way to meet a requirement ([`email_code`]).
    pub email_code: bool,
}

/// What `user` has enrolled.
pub async fn enrolment<S: PasskeyStore + TotpStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
) -> Result<Enrolment, StoreError> {
    let totp = p.store.totp(t.id(), &user.id).await?;
    Ok(Enrolment {
        password: user.password_hash.is_some(),
        passkeys: p.store.passkeys(t.id(), &user.id).await?.len(),
        totp_enrolled_at: totp.and_then(|c| c.confirmed_at),
        recovery_codes_left: p.store.recovery_codes_left(t.id(), &user.id).await?,
        email_code: email_code::reachable(p, user),
    })
}

impl Enrolment {
    /// A second factor of their own (an authenticator app or recovery codes left; a code by
    /// e-mail is not one they chose).
    pub fn has_second_factor(&self) -> bool {
        self.totp_enrolled_at.is_some() || self.recovery_codes_left > 0
    }

    /// The methods the tenant offers that this person can use, in the tenant's order (a method
    /// this module does not know is kept).
    pub fn methods<S: ?Sized>(
        &self,
        p: &Provider<S>,
        t: &TenantCtx,
    ) -> Vec<&'static dyn LoginMethod> {
        offered(p, t)
            .into_iter()
            .filter(|m| match m.id() {
                "password" => self.password,
                id if id == PasskeyMethod.id() => self.passkeys > 0,
                id if id == TotpMethod.id() => self.totp_enrolled_at.is_some(),
                id if id == RecoveryCodeMethod.id() => self.recovery_codes_left > 0,
                id if id == EmailCodeMethod.id() => self.email_code,
                _ => true,
            })
            .collect()
    }
}

/// A person by id with what they enrolled; `None` when they are gone.
pub async fn enrolment_of<S: UserStore + PasskeyStore + TotpStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
) -> Result<Option<(User, Enrolment)>, StoreError> {
    let Some(user) = p.store.user(t.id(), user_id).await? else {
        return Ok(None);
    };
    let e = enrolment(p, t, &user).await?;
    Ok(Some((user, e)))
}

/// What `session` still lacks of a second factor required of it (signing in to `client_id`;
/// `None`: to the account pages), or `None` when nothing: the same rule as the authorization
/// decision's, for the pages that are not part of one.
pub async fn outstanding<S: UserStore + PasskeyStore + TotpStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    session: &Session,
    client_id: Option<&str>,
) -> Result<Option<(User, SecondFactorStep)>, StoreError> {
    let Some((user, e)) = enrolment_of(p, t, &session.user_id).await? else {
        return Ok(None);
    };
    if !required(&t.tenant.settings, client_id, &e) {
        return Ok(None);
    }
    // A session owing a risk step enrols nothing (its page asks for that step instead).
    let enrol = if owes_risk_step(session) {
        &[]
    } else {
        enrolable()
    };
    Ok(second_factor_step(&session.amr, &e.methods(p, t), enrol).map(|step| (user, step)))
}

/// What may meet a second factor the risk decision owes a session when the person has none of
/// their own on offer: a code mailed to their verified address, even where the tenant does not
/// offer codes by e-mail generally (proving the mailbox beats refusing the person, and beats
/// letting whoever holds the password enrol an app); nothing when no code can reach them.
pub fn risk_fallback(e: &Enrolment) -> &'static [&'static dyn LoginMethod] {
    if e.email_code {
        &[&EmailCodeMethod]
    } else {
        &[]
    }
}

/// The second factors the second-factor page offers `session`: the person's own; for a
/// session owing a risk step with none of their own, [`risk_fallback`] (the same rule as the
/// authorization decision's).
pub fn page_methods<S: ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    session: &Session,
    e: &Enrolment,
) -> Vec<&'static str> {
    let own = second_factor_ids(&e.methods(p, t));
    if own.is_empty() && owes_risk_step(session) {
        second_factor_ids(risk_fallback(e))
    } else {
        own
    }
}

/// Mail `user` a sign-in code for the second-factor step of `session`, if it may use one (the
/// tenant offers codes by e-mail, or the session owes a risk step; and the person has a
/// verified address): the masked address it went to (`k•••@example.com`). Sending is limited
/// per account ([`mail_recovery::send_sign_in_code`]); a new code replaces the last one.
pub async fn send_email_code<S: AccountTokenStore + LoginThrottleStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    session: &Session,
    user: &User,
    e: &Enrolment,
    lang: Option<&str>,
) -> Result<String, RecoveryError> {
    if !page_methods(p, t, session, e).contains(&EmailCodeMethod.id()) {
        return Err(RecoveryError::Unavailable);
    }
    mail_recovery::send_sign_in_code(p, t, user, lang).await?;
    Ok(user
        .email
        .as_deref()
        .map(email_code::mask_address)
        .unwrap_or_default())
}

/// Must a sign-in (for `client_id`; `None`: the account pages) prove a second factor? When the
/// tenant requires one, the client is listed, or the person enrolled one.
pub fn required(settings: &TenantSettings, client_id: Option<&str>, e: &Enrolment) -> bool {
    client_id.map_or(
        settings.second_factor == crate::domain::model::SecondFactorPolicy::Required,
        |c| settings.second_factor_required(c),
    ) || e.has_second_factor()
}

/// The second factors a person may enrol while signing in, when one is required and they have
/// none.
pub fn enrolable() -> &'static [&'static dyn LoginMethod] {
    &[&TotpMethod]
}

/// Why a second factor was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    /// Wrong, used already, or not enrolled: never say which.
    #[error("the code is not right")]
    Invalid,
    /// Too many wrong codes: try again after `retry_after` seconds (checked or not, the
    /// answer is the same).
    #[error("too many wrong codes; try again in {retry_after} s")]
    Throttled { retry_after: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A second factor that verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub proof: Proof,
    /// After a recovery code: how many are left.
    pub recovery_codes_left: Option<i64>,
}

/// Check a second factor of `user` (`method`: `totp`, `recovery_code` or `email_code`) within
/// the guessing limits: every attempt is charged to the person's second-factor counter before
/// it is checked (so parallel guesses on any node all count, and every method shares one
/// budget), a success clears it, a failure that reaches the lockout threshold is recorded as
/// `login_locked`. Failures are recorded as `login_failed`, a recovery code used as
/// `recovery_code_used`. An e-mailed code is also held to its own limits (per account and per
/// address) and exists only once [`send_email_code`] sent it.
pub async fn verify<S: TotpStore + AccountTokenStore + LoginThrottleStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    method: &str,
    code: &str,
    meta: &RequestMeta,
) -> Result<Verified, SecondFactorError> {
    let limits = &p.settings.login_throttle;
    let now = p.now();
    let key = throttle::second_factor_key(&t.tenant.secret_key, &user.id);
    let me = Principal::User {
        id: user.id.clone(),
    };
    let throttled = |scope: &str, retry_after: i64| {
        AuditEvent::new(
            t.id(),
            EventKind::LoginFailed,
            Outcome::Failure,
            me.clone(),
            meta,
        )
        .subject(me.clone())
        .reason("throttled")
        .detail(
            json!({"method": method_label(method), "throttle": scope, "retry_after": retry_after}),
        )
    };
    let charge = match throttle::charge(p.store.as_ref(), limits, t.id(), &key, now).await? {
        throttle::Charge::Wait { until } => {
            let retry_after = (until - now).max(1);
            p.store
                .record(&throttled(key.scope.as_str(), retry_after))
                .await?;
            return Err(SecondFactorError::Throttled { retry_after });
        }
        c => c,
    };
    let outcome = match method {
        "totp" => totp::check(p, t, &user.id, code)
            .await?
            .then(|| (Proof::of(&TotpMethod), None)),
        "recovery_code" => recovery::spend(p, t, &user.id, code)
            .await?
            .map(|left| (Proof::of(&RecoveryCodeMethod), Some(left))),
        "email_code" => match mail_recovery::check_sign_in_code(p, t, user, code, meta).await {
            Ok(()) => Some((Proof::of(&EmailCodeMethod), None)),
            Err(RecoveryError::Throttled { retry_after }) => {
                p.store
                    .record(&throttled("email_code", retry_after))
                    .await?;
                return Err(SecondFactorError::Throttled { retry_after });
            }
            Err(RecoveryError::Store(e)) => return Err(e.into()),
            Err(_) => None,
        },
        _ => None,
    };
    match outcome {
        Some((proof, left)) => {
            throttle::clear(p.store.as_ref(), t.id(), &key).await?;
            if let Some(left) = left {
                let ev = AuditEvent::new(
                    t.id(),
                    EventKind::RecoveryCodeUsed,
                    Outcome::Success,
                    me.clone(),
                    meta,
                )
                .subject(me)
                .detail(json!({"remaining": left}));
                p.store.record(&ev).await?;
            }
            Ok(Verified {
                proof,
                recovery_codes_left: left,
            })
        }
        None => {
            let ev = AuditEvent::new(
                t.id(),
                EventKind::LoginFailed,
                Outcome::Failure,
                me.clone(),
                meta,
            )
            .subject(me.clone())
            .reason("wrong code")
            .detail(json!({"method": method_label(method)}));
            p.store.record(&ev).await?;
            if let throttle::Charge::Counted { now: counter, .. } = &charge
                && throttle::locked_out(limits, &key, counter)
            {
                let ev = AuditEvent::new(
                    t.id(),
                    EventKind::LoginLocked,
                    Outcome::Failure,
                    me.clone(),
                    meta,
                )
                .subject(me)
                .reason(key.scope.as_str())
                .detail(json!({
                    "failures": counter.failures,
                    "locked_until": counter.locked_until,
                }));
                p.store.record(&ev).await?;
                super::notice::after(p, t, user, &ev);
            }
            Err(SecondFactorError::Invalid)
        }
    }
}

/// A method name as sent, safe to record (known ids only).
fn method_label(method: &str) -> &'static str {
    match method {
        "totp" => "totp",
        "recovery_code" => "recovery_code",
        "email_code" => "email_code",
        _ => "unknown",
    }
}

/// A passkey as an administrator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A person's sign-in methods as an administrator sees them (`mandate user methods`,
/// `GET …/users/{username}/methods`): never a secret.
#[derive(Debug, Clone, Serialize)]
pub struct MethodsView {
    pub username: String,
    pub password: bool,
    pub passkeys: Vec<PasskeyView>,
    /// When the authenticator app was enrolled; `null`: none.
    pub totp_enrolled_at: Option<i64>,
    pub recovery_codes_left: i64,
}

async fn person<S: UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    username: &str,
) -> Result<User, AdminError> {
    if username.is_empty() || username.len() > 256 {
        return Err(AdminError::NotFound("user".into()));
    }
    p.store
        .user_by_username(t.id(), username)
        .await
        .map_err(AdminError::Store)?
        .ok_or_else(|| AdminError::NotFound("user".into()))
}

/// A person's sign-in methods.
pub async fn methods_of<S: UserStore + PasskeyStore + TotpStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    username: &str,
) -> Result<MethodsView, AdminError> {
    let user = person(p, t, username).await?;
    let e = enrolment(p, t, &user).await.map_err(AdminError::Store)?;
    let passkeys = p
        .store
        .passkeys(t.id(), &user.id)
        .await
        .map_err(AdminError::Store)?
        .into_iter()
        .map(|k| PasskeyView {
            id: k.id,
            name: k.name,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        })
        .collect();
    Ok(MethodsView {
        username: user.username,
        password: e.password,
        passkeys,
        totp_enrolled_at: e.totp_enrolled_at,
        recovery_codes_left: e.recovery_codes_left,
    })
}

/// Reset a person's second factor (a lost phone): their authenticator app and recovery codes
/// are removed (`second_factor_removed`, by `actor`); under a `required` policy they enrol
/// anew at their next sign-in. `NotFound` when they had none.
pub async fn reset<S: UserStore + TotpStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    username: &str,
    actor: Principal,
    meta: &RequestMeta,
) -> Result<(), AdminError> {
    let user = person(p, t, username).await?;
    if totp::remove(p, t, &user.id, actor, meta)
        .await
        .map_err(AdminError::Store)?
    {
        Ok(())
    } else {
        Err(AdminError::NotFound("second factor".into()))
    }
}

/// Remove one of a person's passkeys for them ([`webauthn::remove`]: not their only way to
/// sign in). `NotFound` when they have no such passkey.
pub async fn remove_passkey<S: UserStore + PasskeyStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    username: &str,
    id: &str,
    actor: Principal,
    meta: &RequestMeta,
) -> Result<(), AdminError> {
    let user = person(p, t, username).await?;
    match webauthn::remove(p, t, &user, id, actor, meta).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(AdminError::NotFound("passkey".into())),
        Err(PasskeyError::Store(e)) => Err(AdminError::Store(e)),
        Err(e) => Err(AdminError::Invalid(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::SecondFactorPolicy;
    use crate::login::method::{acr_values, second_factor_ids, sign_in_ids};
    use crate::settings::{ACR_MFA, ACR_PASSWORD, ACR_PHR};
    use crate::testing::{Fake, provider};

    /// A mailer that sends nothing.
    struct NoMail;

    impl crate::mail::Mailer for NoMail {
        fn send(&self, _: crate::mail::Message) -> Result<(), crate::mail::MailError> {
            Ok(())
        }
    }

    #[test]
    fn what_is_offered_and_to_whom() {
        let (p, t) = provider(Fake::default());
        // The test tenant's issuer is on a domain name: passkeys too.
        assert_eq!(sign_in_ids(&offered(&p, &t)), ["password", "passkey"]);
        assert_eq!(
            second_factor_ids(&offered(&p, &t)),
            ["passkey", "totp", "recovery_code"]
        );
        assert_eq!(
            acr_values(&offered(&p, &t)),
            [ACR_PASSWORD, ACR_PHR, ACR_MFA]
        );
        let ids = |e: &Enrolment| e.methods(&p, &t).iter().map(|m| m.id()).collect::<Vec<_>>();
        let pwd = Enrolment {
            password: true,
            ..Enrolment::default()
        };
        assert_eq!(ids(&pwd), ["password"]);
        let both = Enrolment {
            totp_enrolled_at: Some(1),
            recovery_codes_left: 0,
            ..pwd.clone()
        };
        assert_eq!(ids(&both), ["password", "totp"]);
        assert!(both.has_second_factor() && !pwd.has_second_factor());
        // A reachable address is not a second factor of their own.
        let mailed = Enrolment {
            email_code: true,
            ..pwd.clone()
        };
        assert!(!mailed.has_second_factor());
        assert_eq!(ids(&mailed), ["password"], "the tenant does not offer it");
        assert_eq!(risk_fallback(&mailed).len(), 1);
        assert!(risk_fallback(&pwd).is_empty());

        // Who must prove a second factor.
        let mut settings = TenantSettings::default();
        assert!(!required(&settings, Some("c"), &pwd));
        assert!(!required(&settings, None, &pwd));
        assert!(required(&settings, Some("c"), &both), "enrolled: asked");
        settings.second_factor_clients = vec!["c".into()];
        assert!(required(&settings, Some("c"), &pwd));
        assert!(!required(&settings, Some("d"), &pwd));
        assert!(
            !required(&settings, None, &pwd),
            "a client's rule is not the account's"
        );
        settings.second_factor = SecondFactorPolicy::Required;
        assert!(required(&settings, None, &pwd) && required(&settings, Some("d"), &pwd));
    }

    #[test]
    fn codes_by_mail_only_where_the_tenant_turns_them_on_and_mail_works() {
        let (p, mut t) = provider(Fake::default());
        t.tenant.settings.email_code = true;
        assert!(
            !second_factor_ids(&offered(&p, &t)).contains(&"email_code"),
            "no mail"
        );
        let p = p.with_mailer(std::sync::Arc::new(NoMail));
        assert_eq!(
            second_factor_ids(&offered(&p, &t)),
            ["passkey", "totp", "recovery_code", "email_code"]
        );
        assert_eq!(sign_in_ids(&offered(&p, &t)), ["password", "passkey"]);
        let ids = |e: &Enrolment| e.methods(&p, &t).iter().map(|m| m.id()).collect::<Vec<_>>();
        let unverified = Enrolment {
            password: true,
            ..Enrolment::default()
        };
        assert_eq!(ids(&unverified), ["password"]);
        let verified = Enrolment {
            email_code: true,
            ..unverified.clone()
        };
        assert_eq!(ids(&verified), ["password", "email_code"]);
    }
}
