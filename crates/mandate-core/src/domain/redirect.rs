//! Redirect URI matching: exact string comparison (RFC 9700 §4.1.3), with the one exception of
//! a varying port on loopback IP literals for native apps (RFC 8252 §7.3), which are public
//! clients: a confidential web client's loopback URI matches exactly.

/// Does `requested` match one of the registered redirect URIs? `native` (a public client)
/// lets the port of a loopback IP literal vary.
pub fn matches(registered: &[String], requested: &str, native: bool) -> bool {
    registered
        .iter()
        .any(|r| r == requested || native && loopback_port_variant(r, requested))
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

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    /// Control characters, spaces or non-ASCII: the URI could never be sent in a `Location`
    /// header as registered (and URL parsers silently drop some of them).
    #[error("only printable ASCII characters are allowed (percent-encode anything else)")]
    Characters,
    #[error("an absolute URI is required")]
    NotAbsolute,
    /// RFC 6749 §3.1.2.
    #[error("a fragment is not allowed")]
    Fragment,
    /// Schemes that run code or read files in the browser (RFC 9700 §4.1.3 spirit).
    #[error("this scheme is not allowed")]
    Scheme,
    #[error("the URI is too long")]
    TooLong,
}

/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI: usize = 2000;

/// Check a URI for registration: printable ASCII only, absolute, no fragment, no script scheme.
pub fn check_for_registration(uri: &str) -> Result<(), RedirectUriError> {
    if uri.len() > MAX_REDIRECT_URI {
        return Err(RedirectUriError::TooLong);
    }
    if uri.is_empty() || !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RedirectUriError::Characters);
    }
    let u = url::Url::parse(uri).map_err(|_| RedirectUriError::NotAbsolute)?;
    if uri.contains('#') || u.fragment().is_some() {
        return Err(RedirectUriError::Fragment);
    }
    if matches!(
        u.scheme(),
        "javascript" | "data" | "vbscript" | "file" | "blob" | "about"
    ) {
        return Err(RedirectUriError::Scheme);
    }
    if matches!(u.scheme(), "http" | "https") && u.host_str().is_none_or(str::is_empty) {
        return Err(RedirectUriError::NotAbsolute);
    }
    Ok(())
}

/// Is this URI acceptable for registration? See [`check_for_registration`].
pub fn valid_for_registration(uri: &str) -> bool {
    check_for_registration(uri).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_only_except_loopback_port_for_native_clients() {
        let reg = vec![
            "https://app.example/cb".to_string(),
            "http://127.0.0.1/cb".to_string(),
        ];
        for native in [true, false] {
            assert!(matches(&reg, "https://app.example/cb", native));
            assert!(!matches(&reg, "https://app.example/cb/", native));
            assert!(!matches(&reg, "https://app.example/cb?x=1", native));
            assert!(!matches(&reg, "https://APP.example/cb", native));
            assert!(matches(&reg, "http://127.0.0.1/cb", native));
            assert!(!matches(&reg, "http://127.0.0.1:53121/other", native));
            assert!(!matches(&reg, "http://localhost:53121/cb", native));
        }
        assert!(matches(&reg, "http://127.0.0.1:53121/cb", true));
        assert!(!matches(&reg, "http://127.0.0.1:53121/cb", false));
    }

    #[test]
    fn registration_refuses_what_cannot_be_redirected_to() {
        for ok in [
            "https://app.example/cb",
            "https://app.example/cb?x=1",
            "http://127.0.0.1/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(check_for_registration(ok), Ok(()), "{ok}");
        }
        let bad = [
            ("https://app.example/cb\n", RedirectUriError::Characters),
            ("https://app.example/c\tb", RedirectUriError::Characters),
            ("https://app.example/c\u{7f}b", RedirectUriError::Characters),
            (" https://app.example/cb", RedirectUriError::Characters),
            ("https://app.example/c b", RedirectUriError::Characters),
            ("https://äpp.example/cb", RedirectUriError::Characters),
            ("", RedirectUriError::Characters),
            ("/cb", RedirectUriError::NotAbsolute),
            ("app.example/cb", RedirectUriError::NotAbsolute),
            ("https://app.example/cb#x", RedirectUriError::Fragment),
            ("https://app.example/cb#", RedirectUriError::Fragment),
            ("javascript:alert(1)", RedirectUriError::Scheme),
            ("data:text/html,x", RedirectUriError::Scheme),
        ];
        for (uri, why) in bad {
            assert_eq!(check_for_registration(uri), Err(why), "{uri:?}");
        }
        assert_eq!(
            check_for_registration(&format!("https://a.example/{}", "x".repeat(2000))),
            Err(RedirectUriError::TooLong)
        );
    }
}
