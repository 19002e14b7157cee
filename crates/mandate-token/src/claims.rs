//! An access token's claims (RFC 9068) as a type, in the order they are issued: the standard
//! ones, the person's authentication (`auth_time`, `acr`, `amr`, `sid`), the DPoP binding
//! (`cnf`, RFC 9449 §6.1), and what makes a token delegated (`act`, `mandate`,
//! `authorization_details`, RFC 8693 and RFC 9396).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::act::Act;

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
    }
}
