//! Secrets the server must read back (a TOTP shared secret cannot be hashed), encrypted at
//! rest: AES-256-GCM under a key derived with HKDF-SHA-256 from the tenant's secret key and a
//! purpose, with associated data binding the ciphertext to its owner (a row copied to another
//! person or tenant does not decrypt). A database dump alone reveals nothing.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};

use super::secret::random_bytes;

/// The format of what [`seal`] returns: this byte, the nonce, then ciphertext and tag.
const VERSION: u8 = 1;
/// The HKDF salt: fixed, so that every node derives the same key.
const SALT: &[u8] = b"mandate/at-rest/v1";

/// The ciphertext does not open: wrong key, owner or purpose, or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the encrypted value does not open (changed, or not this owner's)")]
pub struct Unreadable;

fn key(tenant_secret: &[u8], purpose: &str) -> LessSafeKey {
    let prk = Salt::new(HKDF_SHA256, SALT).extract(tenant_secret);
    let info = [purpose.as_bytes()];
    let okm = prk
        .expand(&info, &AES_256_GCM)
        .expect("HKDF output of one AES key");
    LessSafeKey::new(UnboundKey::from(okm))
}

/// Encrypt `plaintext` for `purpose` under the tenant's key, bound to `owner` (associated
/// data). A fresh random nonce each time.
pub fn seal(tenant_secret: &[u8], purpose: &str, owner: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce_bytes: [u8; NONCE_LEN] = random_bytes(NONCE_LEN).try_into().expect("nonce length");
    let mut in_out = plaintext.to_vec();
    key(tenant_secret, purpose)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(owner),
            &mut in_out,
        )
        .expect("AES-GCM sealing");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&in_out);
    out
}

/// Decrypt what [`seal`] returned for the same key, purpose and owner.
pub fn open(
    tenant_secret: &[u8],
    purpose: &str,
    owner: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, Unreadable> {
    let (&version, rest) = sealed.split_first().ok_or(Unreadable)?;
    if version != VERSION || rest.len() < NONCE_LEN {
        return Err(Unreadable);
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unreadable)?;
    let mut in_out = ct.to_vec();
    let plain = key(tenant_secret, purpose)
        .open_in_place(nonce, Aad::from(owner), &mut in_out)
        .map_err(|_| Unreadable)?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let k = b"tenant secret key";
        let sealed = seal(k, "totp", b"t\0u", b"shared secret");
        assert_eq!(open(k, "totp", b"t\0u", &sealed).unwrap(), b"shared secret");
        assert_ne!(
            sealed,
            seal(k, "totp", b"t\0u", b"shared secret"),
            "fresh nonce"
        );
        // Another owner, purpose or key, or any changed byte: refused.
        assert_eq!(open(k, "totp", b"t\0v", &sealed), Err(Unreadable));
        assert_eq!(open(k, "other", b"t\0u", &sealed), Err(Unreadable));
        assert_eq!(
            open(b"other key", "totp", b"t\0u", &sealed),
            Err(Unreadable)
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(open(k, "totp", b"t\0u", &bad), Err(Unreadable), "byte {i}");
        }
        assert_eq!(open(k, "totp", b"t\0u", &sealed[..10]), Err(Unreadable));
        assert_eq!(open(k, "totp", b"t\0u", &[]), Err(Unreadable));
    }
}
