//! `GET {issuer}/jwks.json`: current keys and retired keys that still cover live tokens.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::tenant::Tenant;

pub async fn jwks(Tenant(t): Tenant) -> Response {
    let mut r = Json(t.keys.jwks(mandate_core::time::now())).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    r
}
