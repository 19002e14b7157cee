//! Session and CSRF cookies. Names carry the `__Host-` prefix on https deployments.

use axum::http::{HeaderMap, header};

use crate::state::HttpConfig;

/// The value of a cookie from the request's `Cookie` headers.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn prefix(cfg: &HttpConfig) -> &'static str {
    if cfg.secure() { "__Host-" } else { "" }
}

/// Name of the session cookie of a tenant.
pub fn session_name(cfg: &HttpConfig, tenant: &str) -> String {
    format!("{}mandate-session-{tenant}", prefix(cfg))
}

/// Name of the CSRF cookie.
pub fn csrf_name(cfg: &HttpConfig) -> String {
    format!("{}mandate-csrf", prefix(cfg))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure on https.
pub fn set(cfg: &HttpConfig, name: &str, value: &str, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if cfg.secure() {
        c.push_str("; Secure");
    }
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    c
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear(cfg: &HttpConfig, name: &str) -> String {
    set(cfg, name, "", Some(0))
}

/// Name of the cookie that remembers "not now" to the offer of a passkey after a password
/// sign-in (per tenant; no personal data, only "1").
pub fn passkey_later_name(cfg: &HttpConfig, tenant: &str) -> String {
    format!("{}mandate-passkey-later-{tenant}", prefix(cfg))
}

/// Name of the device cookie (risk: a browser's long-lived random id; one for every tenant,
/// each keeps only its own keyed digest of it).
pub fn device_name(cfg: &HttpConfig) -> String {
    format!("{}{}", prefix(cfg), crate::client_ip::DEVICE_COOKIE)
}
