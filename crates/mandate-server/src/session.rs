//! The person's session, from the tenant's session cookie.

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
    if let Ok(Some(old)) = current_session(s, t, headers).await {
        let _ = s.provider.store.delete_session(t.id(), &old.digest).await;
    }
    let (cookie, session) = login::start_session(&s.provider, t, user, proof, meta).await?;
    let set = crate::cookies::set(
        &s.config,
        &crate::cookies::session_name(&s.config, &t.tenant.name),
        &cookie,
        Some(s.provider.settings.session_ttl),
    );
    Ok((session, set))
}
