//! The admin API, `/admin/v1/tenants/{tenant}/…`: bearer tokens of that tenant's issuer with the
//! `mandate:admin` scope, and for a person's token a role the person holds (rules in
//! `mandate_core::access` and `mandate_core::access::roles`).

pub mod agents;
pub mod audit;
pub mod authz;
pub mod roles;
pub mod settings;
pub mod users;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mandate_core::access::roles::Right;
use mandate_core::access::{self, AdminCaller};

use crate::bearer::{PresentedToken, public_uri};
use crate::client_ip::Meta;
use crate::error::{ApiError, resource_error};
use crate::state::AppState;
use crate::tenant::Tenant;

/// An authenticated admin caller with its tenant and request context.
pub struct Admin {
    pub tenant: Tenant,
    pub caller: AdminCaller,
    pub meta: Meta,
}

impl Admin {
    /// Authenticate the request's token for `scope` (admin API, AuthZEN callers, SSF
    /// receivers); a person's token needs a role that allows managing.
    pub async fn for_scope(parts: &mut Parts, s: &AppState, scope: &str) -> Result<Self, Response> {
        Admin::for_right(parts, s, scope, Right::Manage).await
    }

    /// [`Admin::for_scope`] for a route that needs only `right`.
    pub async fn for_right(
        parts: &mut Parts,
        s: &AppState,
        scope: &str,
        right: Right,
    ) -> Result<Self, Response> {
        let tenant = Tenant::from_request_parts(parts, s).await?;
        let Ok(meta) = Meta::from_request_parts(parts, s).await;
        let token =
            PresentedToken::from_headers(&parts.headers).map_err(IntoResponse::into_response)?;
        let Ok(OriginalUri(original)) = OriginalUri::from_request_parts(parts, s).await;
        let uri = public_uri(&s.config.public_url, &original);
        let method = parts.method.as_str().to_string();
        let presented = token.as_ref().map(|t| t.presented(&method, &uri));
        let caller = access::authorize(
            &s.provider,
            &tenant.0,
            presented.as_ref(),
            &meta.0,
            scope,
            right,
        )
        .await
        .map_err(|e| {
            let mut err = resource_error(e, token.as_ref().map(|t| t.scheme));
            if token.is_none() {
                // RFC 6750 §3.1: no error code when no credentials were sent.
                err.challenge = Some("Bearer".into());
            }
            ApiError::into_response(err)
        })?;
        Ok(Admin {
            tenant,
            caller,
            meta,
        })
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        Admin::for_scope(parts, s, access::ADMIN_SCOPE).await
    }
}

/// An admin API caller allowed to read the audit log (the `auditor` role suffices).
pub struct AuditReader(pub Admin);

impl FromRequestParts<AppState> for AuditReader {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        Admin::for_right(parts, s, access::ADMIN_SCOPE, Right::ReadAudit)
            .await
            .map(AuditReader)
    }
}
