//! Static files the pages use (the stylesheet, the WebAuthn script), embedded in the binary
//! and served from `{public_url}/assets/`, so pages can forbid inline scripts
//! (`script-src 'self'`). Their URLs carry a digest of the content: a new release is never
//! served an old cached file.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An embedded file: name, content type, bytes.
type Asset = (&'static str, &'static str, &'static str);

const FILES: [Asset; 2] = [
    (
        "mandate.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/mandate.css"),
    ),
    (
        "webauthn.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/webauthn.js"),
    ),
];

/// A short digest of all the files: the `v` query of their URLs.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    use std::hash::{Hash, Hasher};
    // Not a security digest: only tells one release's files from another's.
    let mut h = std::hash::DefaultHasher::new();
    FILES.hash(&mut h);
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
});

/// The base URL of the assets for templates (`{{ assets }}/mandate.css`), versioned.
pub fn base(public_url: &str) -> String {
    format!("{public_url}/assets/{}", VERSION.as_str())
}

/// `GET /assets/{version}/{name}`: any version is served the current file (a page rendered
/// just before an upgrade still gets a stylesheet).
pub async fn asset(Path((_version, name)): Path<(String, String)>) -> Response {
    let Some((_, kind, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return crate::error::not_found().await.into_response();
    };
    let mut r = (StatusCode::OK, *body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
