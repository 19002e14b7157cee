//! Redirect URI matching: exact string comparison (RFC 9700 §4.1.3), with the one exception of
//! a varying port on loopback IP literals for native apps (RFC 8252 §7.3).

/// Does `requested` match one of the registered redirect URIs?
pub fn matches(registered: &[String], requested: &str) -> bool {
    registered
        .iter()
        .any(|r| r == requested || loopback_port_variant(r, requested))
}

fn loopback_port_variant(registered: &str, requested: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"))
    };
    if !loopback(&a) || !loopback(&b) {
        return false;
    }
    // Compare everything except the port, on the URLs as written (no normalization).
    let strip = |s: &str, u: &url::Url| match u.port() {
        Some(p) => s.replacen(&format!(":{p}"), "", 1),
        None => s.to_string(),
    };
    a.host_str() == b.host_str() && strip(registered, &a) == strip(requested, &b)
}

/// Is this URI acceptable for registration (absolute, no fragment)?
pub fn valid_for_registration(uri: &str) -> bool {
    match url::Url::parse(uri) {
        Ok(u) => u.fragment().is_none(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_only_except_loopback_port() {
        let reg = vec![
            "https://app.example/cb".to_string(),
            "http://127.0.0.1/cb".to_string(),
        ];
        assert!(matches(&reg, "https://app.example/cb"));
        assert!(!matches(&reg, "https://app.example/cb/"));
        assert!(!matches(&reg, "https://app.example/cb?x=1"));
        assert!(!matches(&reg, "https://APP.example/cb"));
        assert!(matches(&reg, "http://127.0.0.1:53121/cb"));
        assert!(!matches(&reg, "http://127.0.0.1:53121/other"));
        assert!(!matches(&reg, "http://localhost:53121/cb"));
    }
}
