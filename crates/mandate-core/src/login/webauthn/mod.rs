//! Passkeys (W3C WebAuthn Level 3, through `webauthn-rs`): registration from the account page or
//! right after a password sign-in, usernameless (discoverable) sign-in and autofill
//! (conditional mediation), removal. User verification is required, so a passkey is both
//! factors; a sign-in with one reaches the phishing-resistant `acr`
//! ([`crate::settings::ACR_PHR`]) and records `hwk` or `swk` (device-bound or synced key) and
//! `user` (RFC 8176).
//!
//! The relying party is the public URL's host: passkeys work on a domain name (`localhost`
//! included), never on an IP address (WebAuthn forbids it), and are shared by every tenant of
//! a deployment, each holding its own credentials.

pub mod store;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

use super::method::{Factor, LoginMethod, Proof};
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::random_token;
use crate::domain::model::User;
use crate::error::StoreError;
use crate::provider::{Provider, TenantCtx};
use crate::settings::ACR_PHR;
use crate::store::{AccountTokenStore, AuditSink, RiskStore, UserStore};
use store::{Ceremony, CeremonyKind, PasskeyStore, StoredPasskey};

/// How long a browser has to answer a ceremony (the WebAuthn timeout the options carry is
/// shorter).
pub const CEREMONY_TTL: i64 = 300;

/// Longest name a person may give a passkey (characters).
pub const MAX_NAME: usize = 64;

/// Most passkeys one person may register.
pub const MAX_PER_PERSON: usize = 20;

/// Most ceremonies in flight started from one client address, and in one tenant: a
/// ceremony is a row in the store, so the requests that start them (which need no account)
/// cannot fill it.
pub const MAX_LIVE_PER_ADDRESS: u64 = 30;
pub const MAX_LIVE_PER_TENANT: u64 = 10_000;

/// Largest credential a browser may send back (bytes of JSON).
pub const MAX_CREDENTIAL_JSON: usize = 16 * 1024;

/// The passkey login method.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasskeyMethod;

impl LoginMethod for PasskeyMethod {
    fn id(&self) -> &'static str {
        "passkey"
    }

    /// `user`: the person was verified by the authenticator (PIN or biometrics); with it
    /// comes `hwk` or `swk` ([`Proof`]).
    fn amr(&self) -> &'static str {
        "user"
    }

    fn acr(&self) -> &'static str {
        ACR_PHR
    }

    fn factor(&self) -> Factor {
        Factor::Both
    }
}

/// Why a passkey ceremony failed.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The public URL is not on a domain name (an IP address): WebAuthn cannot be used.
    #[error("passkeys need the server on a domain name: {0}")]
    Unavailable(String),
    /// The ceremony is unknown, was answered already, or expired.
    #[error("the passkey request expired; try again")]
    Expired,
    /// The browser's answer did not verify (wrong challenge, origin, signature, user not
    /// verified, malformed).
    #[error("the passkey could not be verified: {0}")]
    Rejected(String),
    /// No account has this passkey (removed, or registered elsewhere).
    #[error("this passkey is not registered here")]
    UnknownCredential,
    /// The passkey is registered already, or the person has as many as allowed.
    #[error("{0}")]
    Refused(&'static str),
    /// Too many ceremonies in flight from this address (or in the tenant): try again later.
    #[error("too many passkey requests; try again shortly")]
    Busy,
    /// Removing it would leave the person no way to sign in.
    #[error("this is the only way to sign in to the account")]
    LastMethod,
    /// The risk policy blocked this sign-in: try again after `retry_after` seconds.
    #[error("too many sign-in attempts; try again in {retry_after} s")]
    Blocked { retry_after: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The relying party for a tenant: its id is the public URL's host, its origin the public
/// URL's origin.
pub fn relying_party(t: &TenantCtx) -> Result<Webauthn, PasskeyError> {
    let url = Url::parse(&t.issuer).map_err(|e| PasskeyError::Unavailable(e.to_string()))?;
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        _ => return Err(PasskeyError::Unavailable(t.issuer.clone())),
    };
    let mut origin = url.clone();
    origin.set_path("");
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name(&t.tenant.name).build())
        .map_err(|e| PasskeyError::Unavailable(e.to_string()))
}

/// Whether passkeys can be used on this tenant's issuer (a domain name, not an IP address).
pub fn available(t: &TenantCtx) -> bool {
    relying_party(t).is_ok()
}

/// Keep a new ceremony, within the bounds on ceremonies in flight.
async fn keep<S: PasskeyStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    kind: CeremonyKind,
    user_id: Option<String>,
    state: String,
    meta: &RequestMeta,
) -> Result<String, PasskeyError> {
    let now = p.now();
    let address = super::throttle::address_key(meta.ip.as_deref()).map(|k| k.key);
    let (all, here) = p
        .store
        .live_ceremonies(t.id(), address.as_deref(), now)
        .await?;
    if all >= MAX_LIVE_PER_TENANT || (address.is_some() && here >= MAX_LIVE_PER_ADDRESS) {
        return Err(PasskeyError::Busy);
    }
    let id = random_token(24);
    p.store
        .put_ceremony(&Ceremony {
            tenant_id: t.id().to_string(),
            id: id.clone(),
            kind,
            user_id,
            address,
            state,
            expires_at: now + CEREMONY_TTL,
        })
        .await?;
    Ok(id)
}

fn cred_id_text(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn corrupt(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Store(StoreError::Corrupt(format!("passkey: {e}")))
}

/// Begin adding a passkey to `user`'s account: the options for
/// `navigator.credentials.create()` and the ceremony id the answer must carry. The passkey is
/// discoverable (a resident key) and needs user verification.
pub async fn start_registration<S: PasskeyStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    meta: &RequestMeta,
) -> Result<(String, serde_json::Value), PasskeyError> {
    let rp = relying_party(t)?;
    let existing = p.store.passkeys(t.id(), &user.id).await?;
    if existing.len() >= MAX_PER_PERSON {
        return Err(PasskeyError::Refused(
            "this account has as many passkeys as allowed",
        ));
    }
    let handle = match existing.first() {
        Some(k) => Uuid::parse_str(&k.user_handle).map_err(corrupt)?,
        None => Uuid::new_v4(),
    };
    let exclude = existing
        .iter()
        .map(|k| URL_SAFE_NO_PAD.decode(&k.id).map(Into::into))
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)?;
    let display = user.name.as_deref().unwrap_or(&user.username);
    let (options, state) = rp
        .start_passkey_registration(handle, &user.username, display, Some(exclude))
        .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
    // A discoverable credential, so the person signs in without typing a name (the
    // verification of the answer does not depend on it).
    let mut options = serde_json::to_value(&options).map_err(corrupt)?;
    if let Some(sel) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(serde_json::Value::as_object_mut)
    {
        sel.insert("residentKey".into(), "required".into());
        sel.insert("requireResidentKey".into(), true.into());
    }
    let state = serde_json::to_string(&(handle, state)).map_err(corrupt)?;
    let id = keep(
        p,
        t,
        CeremonyKind::Register,
        Some(user.id.clone()),
        state,
        meta,
    )
    .await?;
    Ok((id, options))
}

/// Finish adding a passkey: verify the browser's answer against the ceremony `user` started
/// and keep the credential under `name`. Recorded in the audit trail.
pub async fn finish_registration<S: PasskeyStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    ceremony_id: &str,
    credential_json: &str,
    name: &str,
    meta: &RequestMeta,
) -> Result<StoredPasskey, PasskeyError> {
    let rp = relying_party(t)?;
    let now = p.now();
    let ceremony = p
        .store
        .take_ceremony(t.id(), ceremony_id, now)
        .await?
        .filter(|c| c.kind == CeremonyKind::Register && c.user_id.as_deref() == Some(&user.id))
        .ok_or(PasskeyError::Expired)?;
    let (handle, state): (Uuid, PasskeyRegistration) =
        serde_json::from_str(&ceremony.state).map_err(corrupt)?;
    if credential_json.len() > MAX_CREDENTIAL_JSON {
        return Err(PasskeyError::Rejected("the answer is too large".into()));
    }
    let answer: RegisterPublicKeyCredential = serde_json::from_str(credential_json)
        .map_err(|_| PasskeyError::Rejected("malformed answer".into()))?;
    let passkey = rp
        .finish_passkey_registration(&answer, &state)
        .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
    let cred: Credential = passkey.clone().into();
    if !cred.user_verified {
        return Err(PasskeyError::Rejected("the user was not verified".into()));
    }
    let name: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    let stored = StoredPasskey {
        tenant_id: t.id().to_string(),
        id: cred_id_text(passkey.cred_id()),
        user_id: user.id.clone(),
        user_handle: handle.to_string(),
        name: if name.is_empty() {
            "Passkey".into()
        } else {
            name
        },
        credential: serde_json::to_string(&passkey).map_err(corrupt)?,
        backup_eligible: cred.backup_eligible,
        backup_state: cred.backup_state,
        counter: cred.counter,
        created_at: now,
        last_used_at: None,
    };
    match p.store.add_passkey(&stored).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(PasskeyError::Refused("this passkey is registered already"));
        }
        Err(e) => return Err(e.into()),
    }
    let ev = AuditEvent::new(
        t.id(),
        EventKind::PasskeyRegistered,
        Outcome::Success,
        Principal::User {
            id: user.id.clone(),
        },
        meta,
    )
    .subject(Principal::User {
        id: user.id.clone(),
    })
    .detail(json!({
        "passkey": stored.id,
        "name": stored.name,
        "backup_eligible": stored.backup_eligible,
    }));
    p.store.record(&ev).await?;
    super::notice::after(p, t, user, &ev);
    Ok(stored)
}

/// Begin a usernameless sign-in: options for `navigator.credentials.get()` (with no allowed
/// credentials, so the browser offers every passkey it holds for this site, in a dialog or
/// in the username field's autofill) and the ceremony id.
pub async fn start_sign_in<S: PasskeyStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    meta: &RequestMeta,
) -> Result<(String, RequestChallengeResponse), PasskeyError> {
    let rp = relying_party(t)?;
    let (options, state) = rp
        .start_discoverable_authentication()
        .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
    let state = serde_json::to_string(&state).map_err(corrupt)?;
    let id = keep(p, t, CeremonyKind::Authenticate, None, state, meta).await?;
    Ok((id, options))
}

/// Finish a usernameless sign-in: find the account by the credential the browser chose,
/// verify the signature and user verification, keep the new counter and backup state, and
/// record the attempt. Returns the person and what the sign-in proved.
pub async fn finish_sign_in<S: PasskeyStore + RiskStore + UserStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    ceremony_id: &str,
    credential_json: &str,
    meta: &RequestMeta,
) -> Result<(User, Proof), PasskeyError> {
    let outcome = verify_sign_in(p, t, ceremony_id, credential_json).await;
    match outcome {
        Ok((user, passkey)) => {
            // The risk policy sees passkey sign-ins too (history, travel, blocks); a passkey
            // already meets any second factor or passkey it could ask for.
            let address = super::throttle::address_key(meta.ip.as_deref());
            let proven = crate::risk::Proven::Passkey {
                address: address.as_ref().map(|k| k.key.as_str()),
            };
            let a = crate::risk::after_sign_in(p, t, &user, proven, meta).await?;
            if a.action == crate::risk::Action::Block {
                return Err(PasskeyError::Blocked {
                    retry_after: t.tenant.settings.risk.block_seconds,
                });
            }
            let ev = AuditEvent::new(
                t.id(),
                EventKind::LoginSucceeded,
                Outcome::Success,
                Principal::User {
                    id: user.id.clone(),
                },
                meta,
            )
            .subject(Principal::User {
                id: user.id.clone(),
            })
            .username(&user.username)
            .detail(json!({
                "method": "passkey",
                "passkey": passkey.id,
                "new_device": a.has(crate::risk::Signal::NewDevice),
            }));
            p.store.record(&ev).await?;
            super::notice::after(p, t, &user, &ev);
            let amr = vec![
                if passkey.backup_eligible {
                    "swk"
                } else {
                    "hwk"
                },
                "user",
            ];
            Ok((
                user,
                Proof {
                    method: &PasskeyMethod,
                    amr,
                },
            ))
        }
        Err(e) => {
            let (actor, reason) = match &e {
                Failed::Known(user_id, why) => (
                    Principal::User {
                        id: user_id.clone(),
                    },
                    why.to_string(),
                ),
                Failed::Other(err) => (Principal::Anonymous, err.to_string()),
            };
            if !matches!(&e, Failed::Other(PasskeyError::Store(_))) {
                let ev = AuditEvent::new(
                    t.id(),
                    EventKind::LoginFailed,
                    Outcome::Failure,
                    actor,
                    meta,
                )
                .reason(crate::untrusted::clip(&reason, 200).into_owned())
                .detail(json!({"method": "passkey"}));
                p.store.record(&ev).await?;
            }
            Err(e.into_error())
        }
    }
}

/// A failed sign-in, with the account when the credential named one.
enum Failed {
    Known(String, PasskeyError),
    Other(PasskeyError),
}

impl Failed {
    fn into_error(self) -> PasskeyError {
        match self {
            Failed::Known(_, e) | Failed::Other(e) => e,
        }
    }
}

impl From<PasskeyError> for Failed {
    fn from(e: PasskeyError) -> Self {
        Failed::Other(e)
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::Other(e.into())
    }
}

async fn verify_sign_in<S: PasskeyStore + UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    ceremony_id: &str,
    credential_json: &str,
) -> Result<(User, StoredPasskey), Failed> {
    let rp = relying_party(t)?;
    let now = p.now();
    let ceremony = p
        .store
        .take_ceremony(t.id(), ceremony_id, now)
        .await?
        .filter(|c| c.kind == CeremonyKind::Authenticate)
        .ok_or(PasskeyError::Expired)?;
    let state: DiscoverableAuthentication =
        serde_json::from_str(&ceremony.state).map_err(corrupt)?;
    if credential_json.len() > MAX_CREDENTIAL_JSON {
        return Err(PasskeyError::Rejected("the answer is too large".into()).into());
    }
    let answer: PublicKeyCredential = serde_json::from_str(credential_json)
        .map_err(|_| PasskeyError::Rejected("malformed answer".into()))?;
    let (handle, cred_id) = rp
        .identify_discoverable_authentication(&answer)
        .map_err(|_| PasskeyError::UnknownCredential)?;
    let mut stored = p
        .store
        .passkey(t.id(), &cred_id_text(cred_id))
        .await?
        .filter(|k| k.user_handle == handle.to_string())
        .ok_or(PasskeyError::UnknownCredential)?;
    let user_id = stored.user_id.clone();
    let known = |e: PasskeyError| Failed::Known(user_id.clone(), e);
    let mut passkey: Passkey = serde_json::from_str(&stored.credential).map_err(corrupt)?;
    let result = rp
        .finish_discoverable_authentication(&answer, state, &[DiscoverableKey::from(&passkey)])
        .map_err(|e| known(PasskeyError::Rejected(e.to_string())))?;
    if !result.user_verified() {
        return Err(known(PasskeyError::Rejected(
            "the user was not verified".into(),
        )));
    }
    passkey.update_credential(&result);
    stored.credential = serde_json::to_string(&passkey).map_err(corrupt)?;
    stored.counter = result.counter();
    stored.backup_state = result.backup_state();
    stored.backup_eligible = result.backup_eligible();
    stored.last_used_at = Some(now);
    p.store.passkey_used(&stored).await?;
    let user = p
        .store
        .user(t.id(), &stored.user_id)
        .await?
        .ok_or(PasskeyError::UnknownCredential)?;
    Ok((user, stored))
}

/// Remove one of `user`'s passkeys, unless it is their only way to sign in (no password and
/// no other passkey). Recorded in the audit trail; `actor` is who removed it (the person, or
/// an administrator).
pub async fn remove<S: PasskeyStore + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    id: &str,
    actor: Principal,
    meta: &RequestMeta,
) -> Result<bool, PasskeyError> {
    let keys = p.store.passkeys(t.id(), &user.id).await?;
    let Some(key) = keys.iter().find(|k| k.id == id) else {
        return Ok(false);
    };
    if user.password_hash.is_none() && keys.len() == 1 {
        return Err(PasskeyError::LastMethod);
    }
    let removed = p.store.remove_passkey(t.id(), &user.id, id).await?;
    if removed {
        let ev = AuditEvent::new(
            t.id(),
            EventKind::PasskeyRemoved,
            Outcome::Success,
            actor,
            meta,
        )
        .subject(Principal::User {
            id: user.id.clone(),
        })
        .detail(json!({"passkey": key.id, "name": key.name}));
        p.store.record(&ev).await?;
        super::notice::after(p, t, user, &ev);
    }
    Ok(removed)
}

/// Remove `user`'s password, leaving a passkey-only account: allowed only while they have a
/// passkey (the sign-in that cannot be phished becomes the only one). Recorded as
/// `password_changed` with `removed: true`; the throttling of password guesses no longer
/// matters for the account, as no password is checked.
pub async fn remove_password<
    S: PasskeyStore + UserStore + AccountTokenStore + AuditSink + ?Sized,
>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    meta: &RequestMeta,
) -> Result<(), PasskeyError> {
    if p.store.passkeys(t.id(), &user.id).await?.is_empty() {
        return Err(PasskeyError::LastMethod);
    }
    if user.password_hash.is_none() {
        return Ok(());
    }
    if !p
        .store
        .set_password_hash(t.id(), &user.id, None, p.now())
        .await?
    {
        return Err(PasskeyError::Store(StoreError::NotFound));
    }
    let who = Principal::User {
        id: user.id.clone(),
    };
    let ev = AuditEvent::new(
        t.id(),
        EventKind::PasswordChanged,
        Outcome::Success,
        who.clone(),
        meta,
    )
    .subject(who)
    .detail(json!({"removed": true}));
    p.store.record(&ev).await?;
    super::notice::after(p, t, user, &ev);
    // No password, nothing to reset.
    p.store
        .delete_account_tokens(
            t.id(),
            &user.id,
            Some(super::recovery::store::Purpose::PasswordReset),
        )
        .await?;
    Ok(())
}
