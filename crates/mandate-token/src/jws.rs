//! Compact JWS for the tokens Mandate issues and later reads back (introspection, userinfo,
//! `id_token_hint`): signed with an in-memory key, verified with the key named by `kid`, whose
//! own algorithm is enforced.

use serde::Serialize;
use serde_json::{Value, json};

use crate::b64::{b64, b64_decode};
use crate::jwk::{KeySet, LoadedKey};

/// Sign `claims` as a compact JWS with header `typ`.
pub fn sign<C: Serialize>(key: &LoadedKey, typ: &str, claims: &C) -> String {
    let header = json!({"alg": key.alg.as_str(), "typ": typ, "kid": key.kid});
    let mut out = b64(header.to_string().as_bytes());
    out.push('.');
    out.push_str(&b64(&serde_json::to_vec(claims).expect("claims serialize")));
    let sig = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&b64(&sig));
    out
}

/// Why a JWT was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("wrong token type")]
    WrongType,
    /// Signed by a key of this issuer, but naming another issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("expired")]
    Expired,
    /// The claims are not those of the expected kind of token.
    #[error("unexpected claims")]
    Claims,
}

/// A verified token: header and claims.
#[derive(Debug, Clone)]
pub struct Verified {
    pub header: Value,
    pub claims: Value,
}

impl Verified {
    /// The header's `kid` (present: [`verify`] found the key by it).
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// The header's `typ`.
    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }

    /// The claims as the type of token expected.
    pub fn claims_as<C: serde::de::DeserializeOwned>(self) -> Result<C, JwtError> {
        serde_json::from_value(self.claims).map_err(|_| JwtError::Claims)
    }
}

/// Verify a token signed by one of `keys`; `typ`, when given, must match the header exactly.
pub fn verify(
    keys: &KeySet,
    token: &str,
    typ: Option<&str>,
    now: i64,
) -> Result<Verified, JwtError> {
    if token.len() > 16 * 1024 {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value = b64_decode(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JwtError::UnknownKey)?;
    let key = keys.by_kid(kid, now).ok_or(JwtError::UnknownKey)?;
    if header.get("alg").and_then(Value::as_str) != Some(key.alg.as_str()) {
        return Err(JwtError::BadSignature);
    }
    let sig = b64_decode(s).ok_or(JwtError::Malformed)?;
    if !key.verify(&token.as_bytes()[..h.len() + 1 + p.len()], &sig) {
        return Err(JwtError::BadSignature);
    }
    if let Some(t) = typ
        && header.get("typ").and_then(Value::as_str) != Some(t)
    {
        return Err(JwtError::WrongType);
    }
    let claims: Value = b64_decode(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if !claims.is_object() {
        return Err(JwtError::Malformed);
    }
    Ok(Verified { header, claims })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::{Alg, KeyRecord, generate};

    #[test]
    fn round_trip_and_tamper() {
        let recs: Vec<KeyRecord> = [Alg::ES256, Alg::RS256]
            .iter()
            .map(|a| generate("t", *a, 0).unwrap())
            .collect();
        let ks = KeySet::load(&recs).unwrap();
        let tok = sign(
            ks.signer(Alg::ES256).unwrap(),
            "at+jwt",
            &json!({"sub": "u"}),
        );
        let v = verify(&ks, &tok, Some("at+jwt"), 0).unwrap();
        assert_eq!(v.claims["sub"], "u");
        assert_eq!(
            verify(&ks, &tok, Some("JWT"), 0).unwrap_err(),
            JwtError::WrongType
        );
        let mut bad = tok.clone();
        bad.insert(bad.find('.').unwrap() + 3, 'x');
        assert!(verify(&ks, &bad, None, 0).is_err());
        // alg confusion: claim the RSA key with an EC alg header
        let parts: Vec<&str> = tok.split('.').collect();
        let rsa_kid = &ks.signer(Alg::RS256).unwrap().kid;
        let h = b64(json!({"alg":"ES256","kid":rsa_kid,"typ":"at+jwt"})
            .to_string()
            .as_bytes());
        let forged = format!("{h}.{}.{}", parts[1], parts[2]);
        assert_eq!(
            verify(&ks, &forged, None, 0).unwrap_err(),
            JwtError::BadSignature
        );
    }
}
