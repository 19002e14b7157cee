//! The person's session, from the tenant's session cookie.

use axum::http::HeaderMap;
use mandate_core::domain::model::Session;
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
