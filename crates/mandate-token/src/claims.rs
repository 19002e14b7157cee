//! An access token's claims (RFC 9068) as a type, in the order they are issued: the standard
//! ones, the person's authentication (`auth_time`, `acr`, `amr`, `sid`), the DPoP binding
//! (`cnf`, RFC 9449 §6.1), and what makes a token delegated (`act`, `mandate`,
//! `authorization_details`, RFC 8693 and RFC 9396).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::act::Act;
use crate::jwk::KeySet;
use crate::jws::{self, JwtError};

/// `aud`: one audience as a string, several as an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// The compact form of a list: a string for one, an array for several.
    pub fn of(list: &[String]) -> Audience {
        match list {
            [one] => Audience::One(one.clone()),
            many => Audience::Many(many.to_vec()),
        }
    }

    /// Every audience.
    pub fn list(&self) -> Vec<&str> {
        match self {
            Audience::One(a) => vec![a.as_str()],
            Audience::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// `cnf` (RFC 7800) holding a DPoP key's thumbprint (RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cnf {
    /// The JWK SHA-256 thumbprint (RFC 7638) of the key the token is bound to.
    pub jkt: String,
}

/// The claims of an access token Mandate issues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The tenant's issuer.
    pub iss: String,
    /// The person, or the client for a client's own token.
    pub sub: String,
    /// The resource servers it is meant for.
    pub aud: Audience,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Its id (revocation and single use are tracked by it).
    pub jti: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Granted scopes, space-separated; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the person authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The authentication context class reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The authentication methods used (RFC 8176).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The browser session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The DPoP key it is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Cnf>,
    /// Who acts for `sub` (an agent, and the ones before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Act>,
    /// The mandate it was issued under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandate: Option<String>,
    /// RFC 9396 details it carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Vec<Value>>,
}

impl AccessTokenClaims {
    /// The actors, outermost (the one presenting the token) first; empty for a token that is
    /// not delegated.
    pub fn chain(&self) -> Vec<&str> {
        self.act.as_ref().map(Act::chain).unwrap_or_default()
    }

    /// Whether it speaks for a person through an agent (`act`) or under a mandate.
    pub fn is_delegated(&self) -> bool {
        self.act.is_some() || self.mandate.is_some()
    }

    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    /// Whether `aud` names `audience`.
    pub fn is_for(&self, audience: &str) -> bool {
        self.aud.list().contains(&audience)
    }

    /// The thumbprint of the DPoP key it is bound to.
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref().map(|c| c.jkt.as_str())
    }

    /// RFC 9449 §5: `DPoP` for a key-bound token, else `Bearer`.
    pub fn token_type(&self) -> &'static str {
        if self.cnf.is_some() { "DPoP" } else { "Bearer" }
    }
}

/// Verify an access token `issuer` signed with one of `keys`: the signature by the key its
/// `kid` names, `typ` `at+jwt` (RFC 9068 §2.1), `iss`, unexpired at `now`, and claims of the
/// shape Mandate issues. Revocation is the issuer's to say (introspection, SSF events).
/// Returns the signing key's id with the claims.
pub fn verify_access_token(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    now: i64,
) -> Result<(String, AccessTokenClaims), JwtError> {
    let v = jws::verify(keys, token, Some("at+jwt"), now)?;
    let kid = v.kid().unwrap_or_default().to_string();
    let claims: AccessTokenClaims = v.claims_as()?;
    if claims.iss != issuer {
        return Err(JwtError::WrongIssuer);
    }
    if claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok((kid, claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_in_the_order_issued_and_reads_back() {
        let c = AccessTokenClaims {
            iss: "https://id.example/t/a".into(),
            sub: "u1".into(),
            aud: Audience::of(&["https://bank.example".into(), "https://mail.example".into()]),
            exp: 200,
            iat: 100,
            jti: "j".into(),
            client_id: "agent".into(),
            scope: Some("read".into()),
            auth_time: Some(90),
            acr: Some("1".into()),
            amr: vec!["pwd".into()],
            sid: None,
            cnf: Some(Cnf { jkt: "t".into() }),
            act: Some(Act::new("agent")),
            mandate: Some("m".into()),
            authorization_details: Some(vec![serde_json::json!({"type": "payment"})]),
        };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"iss":"https://id.example/t/a","sub":"u1","aud":["https://bank.example","https://mail.example"],"exp":200,"iat":100,"jti":"j","client_id":"agent","scope":"read","auth_time":90,"acr":"1","amr":["pwd"],"cnf":{"jkt":"t"},"act":{"sub":"agent"},"mandate":"m","authorization_details":[{"type":"payment"}]}"#
        );
        assert_eq!(serde_json::from_str::<AccessTokenClaims>(&text).unwrap(), c);
        assert_eq!(
            serde_json::to_string(&Audience::of(&["x".into()])).unwrap(),
            r#""x""#
        );
        assert_eq!(c.chain(), ["agent"]);
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["read"]);
        assert!(c.is_for("https://mail.example") && !c.is_for("https://id.example/t/a"));
        assert_eq!((c.jkt(), c.token_type()), (Some("t"), "DPoP"));
    }

    #[test]
    fn verification_checks_type_issuer_expiry_and_shape() {
        use crate::jwk::{Alg, KeyRecord, generate};
        let recs: Vec<KeyRecord> = vec![generate("t", Alg::ES256, 0).unwrap()];
        let keys = KeySet::load(&recs).unwrap();
        let key = keys.signer(Alg::ES256).unwrap();
        let claims = serde_json::json!({"iss": "https://i", "sub": "u", "aud": "https://i",
            "exp": 100, "iat": 1, "jti": "j", "client_id": "c"});
        let at = jws::sign(key, "at+jwt", &claims);
        let (kid, c) = verify_access_token(&keys, &at, "https://i", 99).unwrap();
        assert_eq!(
            (kid.as_str(), c.sub.as_str(), c.chain()),
            (key.kid.as_str(), "u", vec![])
        );
        let err = |token: &str, iss: &str, now: i64| {
            verify_access_token(&keys, token, iss, now).unwrap_err()
        };
        assert_eq!(err(&at, "https://other", 99), JwtError::WrongIssuer);
        assert_eq!(err(&at, "https://i", 100), JwtError::Expired);
        assert_eq!(
            err(&jws::sign(key, "JWT", &claims), "https://i", 99),
            JwtError::WrongType
        );
        let mut no_jti = claims.clone();
        no_jti.as_object_mut().unwrap().remove("jti");
        assert_eq!(
            err(&jws::sign(key, "at+jwt", &no_jti), "https://i", 99),
            JwtError::Claims
        );
    }
}
