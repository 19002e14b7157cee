//! The caller of the account (self-service) API: the person behind a valid, non-delegated
//! access token of the tenant named in the path.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, OriginalUri, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mandate_core::account::{self, Caller};
use mandate_core::{OAuthError, TenantCtx};

use crate::bearer::{PresentedToken, public_uri};
use crate::client_ip::Meta;
use crate::error::{ApiError, resource_error};
use crate::state::AppState;

/// A self-service API caller: the person behind a valid, non-delegated access token of the
/// tenant named in the path.
pub struct Person {
    pub(crate) tenant: std::sync::Arc<TenantCtx>,
    pub(crate) caller: Caller,
    pub(crate) meta: Meta,
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let Path(path): Path<HashMap<String, String>> = Path::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        let name = path.get("tenant").map(String::as_str).unwrap_or_default();
        let tenant = match s.provider.tenant(name).await {
            Ok(Some(t)) => t,
            Ok(None) => return Err(crate::error::not_found().await),
            Err(e) => return Err(ApiError::from(OAuthError::from(e)).into_response()),
        };
        let Ok(meta) = Meta::from_request_parts(parts, s).await;
        let token =
            PresentedToken::from_headers(&parts.headers).map_err(IntoResponse::into_response)?;
        let Ok(OriginalUri(original)) = OriginalUri::from_request_parts(parts, s).await;
        let uri = public_uri(&s.config.public_url, &original);
        let method = parts.method.as_str().to_string();
        let presented = token.as_ref().map(|t| t.presented(&method, &uri));
        let caller = account::authenticate(&s.provider, &tenant, presented.as_ref(), &meta.0)
            .await
            .map_err(|e| {
                let mut err = resource_error(e, token.as_ref().map(|t| t.scheme));
                if token.is_none() {
                    // RFC 6750 §3.1: no error code when no credentials were sent.
                    err.challenge = Some("Bearer".into());
                }
                err.into_response()
            })?;
        Ok(Person {
            tenant,
            caller,
            meta,
        })
    }
}
