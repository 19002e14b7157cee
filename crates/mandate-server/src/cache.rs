//! `Cache-Control: no-store` for responses that carry secrets or tokens: the token,
//! introspection and revocation endpoints, userinfo (OIDC Core §5.3.2 claims), and the admin
//! API (a new agent's `client_secret`, audit records). `Pragma: no-cache` for HTTP/1.0 caches.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

/// Mark a response as not to be stored, unless the handler already chose its caching.
pub fn set_no_store(h: &mut HeaderMap) {
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.entry(header::PRAGMA)
        .or_insert(HeaderValue::from_static("no-cache"));
}

/// Middleware form of [`set_no_store`] (`axum::middleware::map_response`).
pub async fn no_store(mut r: Response) -> Response {
    set_no_store(r.headers_mut());
    r
}
