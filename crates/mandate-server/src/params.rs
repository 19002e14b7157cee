//! Request parameters: form bodies and query strings parsed strictly. A parameter sent twice is
//! refused (RFC 6749 §3.1, §3.2) except those defined to repeat: RFC 8707 `resource` and
//! RFC 8693 `audience`.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, header};
use mandate_core::OAuthError;

/// Parameters that may appear more than once.
const REPEATABLE: [&str; 2] = ["resource", "audience"];

/// Parsed parameters: single values, plus the repeatable ones.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pub single: BTreeMap<String, String>,
    pub repeated: BTreeMap<String, Vec<String>>,
}

impl Params {
    /// Parse `application/x-www-form-urlencoded` text.
    pub fn parse(raw: &[u8]) -> Result<Params, OAuthError> {
        let mut p = Params::default();
        for (k, v) in form_urlencoded::parse(raw) {
            if REPEATABLE.contains(&k.as_ref()) {
                p.repeated
                    .entry(k.into_owned())
                    .or_default()
                    .push(v.into_owned());
                continue;
            }
            if p.single.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k} is repeated"
                )));
            }
        }
        Ok(p)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.single.get(k).map(String::as_str)
    }

    /// A value, treating an empty one as absent (RFC 6749 §3.1).
    pub fn opt(&self, k: &str) -> Option<String> {
        self.get(k).filter(|v| !v.is_empty()).map(str::to_string)
    }

    pub fn all(&self, k: &str) -> Vec<String> {
        self.repeated.get(k).cloned().unwrap_or_default()
    }
}

/// Is the request body a form? (Endpoints that take forms refuse anything else with 415.)
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_params_refused_except_resource() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let p = Params::parse(b"resource=x&resource=y&a=%20b").unwrap();
        assert_eq!(p.all("resource"), vec!["x", "y"]);
        assert_eq!(p.get("a"), Some(" b"));
        let p = Params::parse(b"audience=a&audience=b").unwrap();
        assert_eq!(p.all("audience"), vec!["a", "b"]);
    }
}
