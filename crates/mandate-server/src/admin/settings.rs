//! Admin API for a tenant's settings (policy switches, branding, scope descriptions):
//! `GET …/settings` answers them as JSON; `PATCH …/settings` with an RFC 7396 JSON merge patch
//! changes the members given (`null` resets one). Rules and the audit record
//! (`tenant_settings_changed`) are in `mandate_core::registry::patch_tenant_settings`, the same
//! checks the CLI's `mandate tenant set` passes. Refusals are RFC 9457 problem details that
//! also carry the OAuth-style `error` and `error_description` the rest of the admin API uses.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_core::OAuthError;
use mandate_core::error::AdminError;
use mandate_core::registry;
use serde_json::{Value, json};

use super::Admin;
use crate::state::AppState;

/// An RFC 9457 problem (`application/problem+json`), with `error`/`error_description` too.
fn problem(status: StatusCode, error: &str, detail: &str) -> Response {
    let detail = mandate_core::untrusted::clip(detail, 512);
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "error": error,
        "error_description": detail,
    });
    let mut r = (status, Json(body)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn refused(e: AdminError) -> Response {
    match e {
        AdminError::Invalid(why) => problem(StatusCode::BAD_REQUEST, "invalid_request", &why),
        AdminError::NotFound(what) => problem(
            StatusCode::NOT_FOUND,
            "invalid_request",
            &format!("{what} not found"),
        ),
        AdminError::Conflict(what) => problem(
            StatusCode::CONFLICT,
            "invalid_request",
            &format!("{what} already exists"),
        ),
        AdminError::Busy(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again shortly",
        ),
        AdminError::Store(e) => {
            let e = OAuthError::from(e);
            crate::error::log(&e);
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            )
        }
        AdminError::Crypto(why) => {
            crate::error::log(&OAuthError::server_error(why));
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            )
        }
    }
}

/// `GET …/settings`: the tenant's settings.
pub async fn show(admin: Admin) -> Response {
    Json(json!(admin.tenant.0.tenant.settings)).into_response()
}

/// `PATCH …/settings` (`application/merge-patch+json` or `application/json`): change the
/// members given; answers the settings now in force.
pub async fn change(
    State(s): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(
        kind.as_deref(),
        Some("application/merge-patch+json" | "application/json")
    ) {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "Content-Type must be application/merge-patch+json or application/json",
        );
    }
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("invalid JSON: {e}"),
            );
        }
    };
    let actor = admin
        .caller
        .principal
        .parts()
        .1
        .unwrap_or_default()
        .to_string();
    let name = admin.tenant.0.tenant.name.clone();
    let t = match registry::patch_tenant_settings(s.provider.store.as_ref(), &name, &patch, &actor)
        .await
    {
        Ok(t) => t,
        Err(e) => return refused(e),
    };
    // This node shows the change at once; others within their tenant cache lifetime.
    if let Err(e) = s.provider.reload_tenant(&name).await {
        tracing::warn!(error = %e, "reloading a tenant after a settings change");
    }
    Json(json!(t.settings)).into_response()
}
