//! The person's session, from the tenant's session cookie; for the account pages, only one
//! that has every factor required of it.

use axum::http::HeaderMap;
use mandate_core::audit::RequestMeta;
use mandate_core::domain::model::{Session, User};
use mandate_core::login::method::Proof;
use mandate_core::{OAuthError, TenantCtx, login};

use crate::state::AppState;

/// The session behind the tenant's session cookie.
pub async fn current_session(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
) -> Result<Option<Session>, OAuthError> {
    match crate::cookies::get(
        headers,
        &crate::cookies::session_name(&s.config, &t.tenant.name),
    ) {
        Some(v) => Ok(login::current_session(&s.provider, t, &v).await?),
        None => Ok(None),
    }
}

/// The session behind the tenant's session cookie, even one that owes a risk step: only for
/// the forms of the sign-in that made it (the caller checks the interaction's `sid`).
pub async fn signing_in_session(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
) -> Result<Option<Session>, OAuthError> {
    match crate::cookies::get(
        headers,
        &crate::cookies::session_name(&s.config, &t.tenant.name),
    ) {
        Some(v) => Ok(login::signing_in_session(&s.provider, t, &v).await?),
        None => Ok(None),
    }
}

/// The session behind the cookie, if it may use the account pages (the person's own, CIBA
/// approvals): one that still owes a second factor required of it is not, and the account
/// sign-in page asks for that factor (`ui::signin`).
pub async fn account_session(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
) -> Result<Option<Session>, OAuthError> {
    let Some(session) = current_session(s, t, headers).await? else {
        return Ok(None);
    };
    match login::second_factor::outstanding(&s.provider, t, &session, None).await? {
        None => Ok(Some(session)),
        Some(_) => Ok(None),
    }
}

/// Sign a person in after a login method succeeded: a new session (and session id: no
/// fixation), the old one of this browser ended. Returns the new session and its
/// `Set-Cookie`.
pub async fn begin(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    user: &User,
    proof: &Proof,
    meta: &RequestMeta,
) -> Result<(Session, String), OAuthError> {
    begin_owing(s, t, headers, user, proof, None, meta).await
}

/// [`begin`] for a sign-in whose risk decision owes the session a stronger `acr`
/// (`mandate_core::risk::owed_acr`): the pipeline asks for it before the session is used.
pub async fn begin_owing(
    s: &AppState,
    t: &TenantCtx,
    headers: &HeaderMap,
    user: &User,
    proof: &Proof,
    owed_acr: Option<&str>,
    meta: &RequestMeta,
) -> Result<(Session, String), OAuthError> {
    if let Ok(Some(old)) = current_session(s, t, headers).await {
        let _ = s.provider.store.delete_session(t.id(), &old.digest).await;
    }
    let (cookie, session) =
        login::start_session_owing(&s.provider, t, user, proof, owed_acr, meta).await?;
    let set = crate::cookies::set(
        &s.config,
        &crate::cookies::session_name(&s.config, &t.tenant.name),
        &cookie,
        Some(s.provider.settings.session_ttl),
    );
    Ok((session, set))
}

/// How long a browser's device cookie lives (seconds): about as long as browsers keep one.
const DEVICE_TTL: i64 = 400 * 86_400;

/// Give a browser that has no device cookie one (risk: "new device"), before it signs in: the
/// value goes into `meta`, so the sign-in is remembered with the device it will present next
/// time; the answer is the `Set-Cookie` to send. The value is random and stays in the browser;
/// the server keeps only its keyed digest, with each sign-in.
pub fn mint_device(s: &AppState, meta: &mut RequestMeta) -> Option<String> {
    if meta.device.is_some() {
        return None;
    }
    let value = mandate_core::crypto::secret::random_token(24);
    let set = crate::cookies::set(
        &s.config,
        &crate::cookies::device_name(&s.config),
        &value,
        Some(DEVICE_TTL),
    );
    meta.device = Some(value);
    Some(set)
}
