//! An ID token's claims (OpenID Connect Core §2) as a type, in the order they are issued, and
//! the `at_hash` that ties an ID token to the access token issued with it (§3.1.3.6).

use serde::{Deserialize, Serialize};

use crate::claims::Audience;
use crate::jwk::KeySet;
use crate::jws::{self, JwtError};

/// The claims of an ID token Mandate issues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The tenant's issuer.
    pub iss: String,
    /// The person.
    pub sub: String,
    /// The client it was issued to.
    pub aud: Audience,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// When the person authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The client's `nonce` from the authentication request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The authentication context class reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The authentication methods used (RFC 8176).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The browser session (OIDC Front-/Back-Channel Logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The left half of the access token's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
}

/// Verify an ID token `issuer` signed with one of `keys` (`typ` `JWT`, as Mandate issues them),
/// whatever its age: an `id_token_hint` may be an expired ID token (OIDC Core §3.1.2.1).
pub fn verify_hint(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    now: i64,
) -> Result<IdTokenClaims, JwtError> {
    let claims: IdTokenClaims = jws::verify(keys, token, Some("JWT"), now)?.claims_as()?;
    if claims.iss != issuer {
        return Err(JwtError::WrongIssuer);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_id_tokens_of_this_issuer_of_any_age() {
        use crate::jwk::{Alg, KeyRecord, generate};
        let recs: Vec<KeyRecord> = vec![generate("t", Alg::RS256, 0).unwrap()];
        let keys = KeySet::load(&recs).unwrap();
        let key = keys.signer(Alg::RS256).unwrap();
        let claims =
            serde_json::json!({"iss": "https://i", "sub": "u", "aud": "web", "exp": 10, "iat": 1});
        let id = jws::sign(key, "JWT", &claims);
        assert_eq!(
            verify_hint(&keys, &id, "https://i", 1_000).unwrap().sub,
            "u"
        );
        assert_eq!(
            verify_hint(&keys, &id, "https://j", 0),
            Err(JwtError::WrongIssuer)
        );
        // An access token or a SET signed by the same key is no hint.
        let at = jws::sign(key, "at+jwt", &claims);
        assert_eq!(
            verify_hint(&keys, &at, "https://i", 0),
            Err(JwtError::WrongType)
        );
        let set = serde_json::json!({"iss": "https://i", "jti": "j", "iat": 1, "aud": "rs", "sub_id": {}, "events": {}});
        let set = jws::sign(key, "JWT", &set);
        assert_eq!(
            verify_hint(&keys, &set, "https://i", 0),
            Err(JwtError::Claims)
        );
    }

    #[test]
    fn serializes_in_the_order_issued_and_reads_back() {
        let c = IdTokenClaims {
            iss: "https://id.example/t/a".into(),
            sub: "u1".into(),
            aud: Audience::One("web".into()),
            exp: 200,
            iat: 100,
            auth_time: Some(90),
            nonce: Some("n".into()),
            acr: None,
            amr: vec!["pwd".into()],
            sid: Some("s".into()),
            at_hash: Some("h".into()),
        };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"iss":"https://id.example/t/a","sub":"u1","aud":"web","exp":200,"iat":100,"auth_time":90,"nonce":"n","amr":["pwd"],"sid":"s","at_hash":"h"}"#
        );
        assert_eq!(serde_json::from_str::<IdTokenClaims>(&text).unwrap(), c);
        // Another issuer's token may carry `aud` as an array: it still reads.
        let many: IdTokenClaims =
            serde_json::from_str(r#"{"iss":"i","sub":"s","aud":["a","b"],"exp":2,"iat":1}"#)
                .unwrap();
        assert_eq!(many.aud.list(), ["a", "b"]);
    }
}
