//! CORS for the endpoints a browser app calls directly (token, userinfo, revocation): allowed
//! only for the web origins registered on the tenant's public clients.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

const CORS_ENDPOINTS: [&str; 3] = ["token", "userinfo", "revoke"];

/// Tenant name if the path is a CORS-enabled endpoint.
fn cors_tenant(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/t/")?;
    let (tenant, endpoint) = rest.split_once('/')?;
    CORS_ENDPOINTS.contains(&endpoint).then_some(tenant)
}

/// Middleware adding CORS headers for allowed origins.
pub async fn cors(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let tenant = cors_tenant(req.uri().path()).map(str::to_string);
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = next.run(req).await;
    let (Some(origin), Some(tenant)) = (origin, tenant) else {
        return resp;
    };
    let allowed = match (state.provider.tenant(&tenant).await, origin.to_str()) {
        (Ok(Some(t)), Ok(o)) => state
            .provider
            .web_origin_allowed(&t, o)
            .await
            .unwrap_or(false),
        _ => false,
    };
    let h = resp.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate, DPoP-Nonce"),
        );
        if preflight {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type, DPoP"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
    }
    resp
}

/// Answer a CORS preflight; the middleware adds the headers when the origin is allowed.
pub async fn preflight() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
