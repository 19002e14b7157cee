//! Signing keys: generation, JWK publication, and fast signing and verification of our own
//! JWTs with parsed key pairs kept in memory (aws-lc-rs).

use aws_lc_rs::{
    encoding::AsDer,
    rand::SystemRandom,
    signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::b64::{b64, sha256};

/// JWS algorithms Mandate signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    ES256,
    EdDSA,
    RS256,
    PS256,
}

impl Alg {
    pub const ALL: [Alg; 4] = [Alg::ES256, Alg::EdDSA, Alg::RS256, Alg::PS256];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
        }
    }
    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored signing key of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub tenant_id: String,
    pub kid: String,
    pub alg: Alg,
    /// PKCS#8 DER of the private key.
    pub private_pkcs8: Vec<u8>,
    pub created_at: i64,
    /// Set when a newer key took over signing.
    pub retired_at: Option<i64>,
    /// After this time the key is no longer published (every token it signed has expired).
    pub publish_until: Option<i64>,
}

/// Key generation or loading failure.
#[derive(Debug, thiserror::Error)]
#[error("key error: {0}")]
pub struct KeyError(pub String);

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A parsed key, ready to sign and verify.
pub struct LoadedKey {
    pub kid: String,
    pub alg: Alg,
    pub retired: bool,
    pub publish_until: Option<i64>,
    pair: Pair,
    public_jwk: Value,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// Generate a new key for `alg`. The `kid` is the key's RFC 7638 thumbprint.
pub fn generate(tenant_id: &str, alg: Alg, now: i64) -> Result<KeyRecord, KeyError> {
    let err = |e: &dyn std::fmt::Debug| KeyError(format!("{e:?}"));
    let pkcs8 = match alg {
        Alg::ES256 => EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|e| err(&e))?
            .to_pkcs8v1()
            .map_err(|e| err(&e))?
            .as_ref()
            .to_vec(),
        Alg::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
            .map_err(|e| err(&e))?
            .as_ref()
            .to_vec(),
        Alg::RS256 | Alg::PS256 => RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|e| err(&e))?
            .as_der()
            .map_err(|e| err(&e))?
            .as_ref()
            .to_vec(),
    };
    let mut rec = KeyRecord {
        tenant_id: tenant_id.to_string(),
        kid: String::new(),
        alg,
        private_pkcs8: pkcs8,
        created_at: now,
        retired_at: None,
        publish_until: None,
    };
    rec.kid = load(&rec)?.thumbprint();
    Ok(rec)
}

/// Parse a stored key.
pub fn load(rec: &KeyRecord) -> Result<LoadedKey, KeyError> {
    let err = |e: &dyn std::fmt::Debug| KeyError(format!("{}: {e:?}", rec.kid));
    let (pair, mut jwk) = match rec.alg {
        Alg::ES256 => {
            let kp = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rec.private_pkcs8,
            )
            .map_err(|e| err(&e))?;
            let pt = kp.public_key().as_ref();
            let jwk =
                json!({"kty": "EC", "crv": "P-256", "x": b64(&pt[1..33]), "y": b64(&pt[33..65])});
            (Pair::Ec(kp), jwk)
        }
        Alg::EdDSA => {
            let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&rec.private_pkcs8)
                .map_err(|e| err(&e))?;
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key().as_ref())});
            (Pair::Ed(kp), jwk)
        }
        Alg::RS256 | Alg::PS256 => {
            let kp = RsaKeyPair::from_pkcs8(&rec.private_pkcs8).map_err(|e| err(&e))?;
            let pk = kp.public_key();
            let jwk = json!({
                "kty": "RSA",
                "n": b64(pk.modulus().big_endian_without_leading_zero()),
                "e": b64(pk.exponent().big_endian_without_leading_zero()),
            });
            (Pair::Rsa(kp), jwk)
        }
    };
    let obj = jwk.as_object_mut().expect("object");
    obj.insert("use".into(), "sig".into());
    obj.insert("alg".into(), rec.alg.as_str().into());
    if !rec.kid.is_empty() {
        obj.insert("kid".into(), rec.kid.clone().into());
    }
    Ok(LoadedKey {
        kid: rec.kid.clone(),
        alg: rec.alg,
        retired: rec.retired_at.is_some(),
        publish_until: rec.publish_until,
        pair,
        public_jwk: jwk,
    })
}

impl LoadedKey {
    /// The public JWK, with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn thumbprint(&self) -> String {
        jwk_thumbprint(&self.public_jwk).unwrap_or_default()
    }

    /// Sign `msg` with this key's algorithm.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ec(kp) => kp.sign(&rng, msg).expect("ecdsa sign").as_ref().to_vec(),
            Pair::Ed(kp) => kp.sign(msg).as_ref().to_vec(),
            Pair::Rsa(kp) => {
                let pad: &'static dyn signature::RsaEncoding = match self.alg {
                    Alg::PS256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(pad, &rng, msg, &mut sig).expect("rsa sign");
                sig
            }
        }
    }

    /// Verify a signature made by this key (the algorithm is the key's, never the token's).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let (alg, pk): (&'static dyn signature::VerificationAlgorithm, &[u8]) = match &self.pair {
            Pair::Ec(kp) => (
                &signature::ECDSA_P256_SHA256_FIXED,
                kp.public_key().as_ref(),
            ),
            Pair::Ed(kp) => (&signature::ED25519, kp.public_key().as_ref()),
            Pair::Rsa(kp) => match self.alg {
                Alg::PS256 => (
                    &signature::RSA_PSS_2048_8192_SHA256,
                    kp.public_key().as_ref(),
                ),
                _ => (
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    kp.public_key().as_ref(),
                ),
            },
        };
        signature::UnparsedPublicKey::new(alg, pk)
            .verify(msg, sig)
            .is_ok()
    }
}

/// RFC 7638 thumbprint of a public JWK.
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    let g = |k: &str| jwk.get(k).and_then(Value::as_str);
    let canonical = match g("kty")? {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            g("crv")?,
            g("x")?,
            g("y")?
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, g("crv")?, g("x")?),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, g("e")?, g("n")?),
        _ => return None,
    };
    Some(b64(&sha256(canonical.as_bytes())))
}

/// A tenant's keys, loaded: the signing key per algorithm and every published key.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<LoadedKey>,
}

impl KeySet {
    /// Load every record; the newest unretired key of an algorithm signs.
    pub fn load(records: &[KeyRecord]) -> Result<KeySet, KeyError> {
        let mut keys = records.iter().map(load).collect::<Result<Vec<_>, _>>()?;
        keys.sort_by_key(|k| k.retired);
        Ok(KeySet { keys })
    }

    /// The key that signs new tokens with `alg`.
    pub fn signer(&self, alg: Alg) -> Option<&LoadedKey> {
        self.keys.iter().find(|k| k.alg == alg && !k.retired)
    }

    /// Find a key by `kid`, published or not yet expired from publication.
    pub fn by_kid(&self, kid: &str, now: i64) -> Option<&LoadedKey> {
        self.keys
            .iter()
            .find(|k| k.kid == kid && k.publish_until.is_none_or(|t| t > now))
    }

    /// The JWK Set document: current and previous keys still covering live tokens.
    pub fn jwks(&self, now: i64) -> Value {
        let keys: Vec<&Value> = self
            .keys
            .iter()
            .filter(|k| k.publish_until.is_none_or(|t| t > now))
            .map(|k| &k.public_jwk)
            .collect();
        json!({ "keys": keys })
    }

    /// Algorithms this tenant can sign with.
    pub fn algs(&self) -> Vec<Alg> {
        let mut v: Vec<Alg> = Alg::ALL
            .into_iter()
            .filter(|a| self.signer(*a).is_some())
            .collect();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alg_signs_and_verifies() {
        for alg in Alg::ALL {
            let rec = generate("t", alg, 0).unwrap();
            let k = load(&rec).unwrap();
            assert_eq!(k.kid, k.thumbprint());
            let sig = k.sign(b"hello");
            assert!(k.verify(b"hello", &sig), "{alg}");
            assert!(!k.verify(b"hellO", &sig), "{alg}");
            assert_eq!(k.public_jwk()["alg"], alg.as_str());
        }
    }
}
