//! A software passkey for HTTP-level tests: it answers the server's WebAuthn options the way
//! a browser and an authenticator would (`none` attestation, ES256, a discoverable
//! credential), so passkey ceremonies run on both databases and across nodes without a
//! browser. The browser tests use Chromium's virtual authenticator instead.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

/// Authenticator data flags (WebAuthn §6.1).
pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const BE: u8 = 0x08;
pub const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// One discoverable credential held by a software authenticator.
pub struct SoftPasskey {
    pair: EcdsaKeyPair,
    pub id: Vec<u8>,
    /// The user handle the server gave at registration.
    pub user_handle: Vec<u8>,
    pub rp_id: String,
    pub counter: u32,
    /// Flags added to every answer (UV, BE, BS); UP is always set.
    pub flags: u8,
}

fn cbor_head(major: u8, len: usize) -> Vec<u8> {
    let m = major << 5;
    match len {
        0..=23 => vec![m | len as u8],
        24..=0xff => vec![m | 24, len as u8],
        _ => {
            let mut v = vec![m | 25];
            v.extend((len as u16).to_be_bytes());
            v
        }
    }
}

fn cbor_int(i: i64) -> Vec<u8> {
    if i >= 0 {
        cbor_head(0, i as usize)
    } else {
        cbor_head(1, (-1 - i) as usize)
    }
}

fn cbor_bytes(b: &[u8]) -> Vec<u8> {
    let mut v = cbor_head(2, b.len());
    v.extend_from_slice(b);
    v
}

fn cbor_text(s: &str) -> Vec<u8> {
    let mut v = cbor_head(3, s.len());
    v.extend_from_slice(s.as_bytes());
    v
}

impl SoftPasskey {
    /// Answer `navigator.credentials.create()` options (the server's JSON, `publicKey` inside)
    /// as if at `origin`; returns the new passkey and the credential JSON to post back.
    pub fn register(options: &Value, origin: &str, flags: u8) -> (SoftPasskey, String) {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().expect("rp.id").to_string();
        let user_handle = B64
            .decode(pk["user"]["id"].as_str().expect("user.id"))
            .unwrap();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let mut id = vec![0u8; 16];
        aws_lc_rs::rand::fill(&mut id).unwrap();
        let key = SoftPasskey {
            pair,
            id,
            user_handle,
            rp_id,
            counter: 0,
            flags,
        };
        let point = key.pair.public_key().as_ref();
        let mut cose = cbor_head(5, 5);
        for (k, v) in [
            (1, cbor_int(2)),
            (3, cbor_int(-7)),
            (-1, cbor_int(1)),
            (-2, cbor_bytes(&point[1..33])),
            (-3, cbor_bytes(&point[33..65])),
        ] {
            cose.extend(cbor_int(k));
            cose.extend(v);
        }
        let mut auth_data = key.auth_data_head(AT | key.flags | UP, 0);
        auth_data.extend([0u8; 16]);
        auth_data.extend((key.id.len() as u16).to_be_bytes());
        auth_data.extend(&key.id);
        auth_data.extend(cose);
        let mut att = cbor_head(5, 3);
        att.extend(cbor_text("fmt"));
        att.extend(cbor_text("none"));
        att.extend(cbor_text("attStmt"));
        att.extend(cbor_head(5, 0));
        att.extend(cbor_text("authData"));
        att.extend(cbor_bytes(&auth_data));
        let client_data = client_data("webauthn.create", pk, origin);
        let answer = json!({
            "id": B64.encode(&key.id),
            "rawId": B64.encode(&key.id),
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(&att),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
            },
            "extensions": {},
        });
        (key, answer.to_string())
    }

    fn auth_data_head(&self, flags: u8, counter: u32) -> Vec<u8> {
        let mut v = digest(&SHA256, self.rp_id.as_bytes()).as_ref().to_vec();
        v.push(flags);
        v.extend(counter.to_be_bytes());
        v
    }

    /// Answer `navigator.credentials.get()` options; the counter goes up by one.
    pub fn sign_in(&mut self, options: &Value, origin: &str) -> String {
        self.counter += 1;
        let counter = self.counter;
        self.assert_with(options, origin, self.flags | UP, counter)
    }

    /// An assertion with given flags and counter (for refusals).
    pub fn assert_with(&self, options: &Value, origin: &str, flags: u8, counter: u32) -> String {
        let pk = &options["publicKey"];
        let auth_data = self.auth_data_head(flags, counter);
        let client_data = client_data("webauthn.get", pk, origin);
        let mut signed = auth_data.clone();
        signed.extend(digest(&SHA256, client_data.as_bytes()).as_ref());
        let sig = self.pair.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": B64.encode(&self.id),
            "rawId": B64.encode(&self.id),
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(&auth_data),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
                "signature": B64.encode(sig.as_ref()),
                "userHandle": B64.encode(&self.user_handle),
            },
            "extensions": {},
        })
        .to_string()
    }
}

fn client_data(kind: &str, pk: &Value, origin: &str) -> String {
    json!({
        "type": kind,
        "challenge": pk["challenge"].as_str().expect("challenge"),
        "origin": origin,
        "crossOrigin": false,
    })
    .to_string()
}
