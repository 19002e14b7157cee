//! Resolving the tenant named in the path.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use mandate_core::{OAuthError, TenantCtx};

use crate::error::ApiError;
use crate::state::AppState;

/// The tenant of `/t/{tenant}/…`; unknown tenants are 404.
pub struct Tenant(pub Arc<TenantCtx>);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        // A map, so that routes with more path parameters than `{tenant}` can use it too.
        let Path(params): Path<std::collections::HashMap<String, String>> =
            Path::from_request_parts(parts, state)
                .await
                .map_err(|e| e.into_response())?;
        let Some(name) = params.get("tenant") else {
            return Err(crate::error::not_found().await);
        };
        match state.provider.tenant(name).await {
            Ok(Some(t)) => Ok(Tenant(t)),
            Ok(None) => Err(crate::error::not_found().await),
            Err(e) => Err(ApiError::from(OAuthError::from(e)).into_response()),
        }
    }
}
