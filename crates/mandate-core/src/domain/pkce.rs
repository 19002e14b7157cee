//! PKCE (RFC 7636), S256 only: `plain` is refused (RFC 9700 §2.1.1).

use crate::crypto::secret::{b64, ct_eq, sha256};

/// Is this a syntactically valid `code_challenge` for S256 (43 base64url characters)?
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(is_b64url)
}

/// Is this a syntactically valid `code_verifier` (43–128 unreserved characters)?
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(is_unreserved)
}

/// Does the verifier hash to the challenge?
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier)
        && ct_eq(
            b64(&sha256(verifier.as_bytes())).as_bytes(),
            challenge.as_bytes(),
        )
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_challenge(c));
        assert!(verify_s256(v, c));
        assert!(!verify_s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            c
        ));
        assert!(!verify_s256("short", c));
    }
}
