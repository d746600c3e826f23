//! TOTP secrets at rest: AES-256-GCM (NIST SP 800-38D, through `ring`) under the data key's
//! subkey for [`LABEL`], a fresh random 96-bit nonce per seal, the user id as associated data
//! (a sealed secret copied to another account's row does not open there). Stored as
//! nonce (12 bytes) || ciphertext || tag (16 bytes), beside the key version that sealed it.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use secrecy::{ExposeSecret, SecretSlice};
use uuid::Uuid;

use crate::data_key::KeyVersion;

/// The data key's subkey label for TOTP secrets.
pub const LABEL: &str = "totp secret";

/// Why a sealed secret did not open: it was altered, made with another key or for another
/// account, or is too short to be one. The caller fails closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the sealed TOTP secret does not open (altered, another key, or another account)")]
pub struct Unsealable;

fn key(version: &KeyVersion) -> LessSafeKey {
    let sub = version.subkey(LABEL);
    // The subkey is always 32 bytes, AES-256's key length.
    LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, sub.expose_secret())
            .unwrap_or_else(|_| unreachable!("a 32-byte key is an AES-256 key")),
    )
}

/// Seals `secret` for `user` under `version`.
pub fn seal(version: &KeyVersion, user: Uuid, secret: &SecretSlice<u8>) -> Vec<u8> {
    let nonce = crate::random::bytes::<NONCE_LEN>();
    let mut out = secret.expose_secret().to_vec();
    key(version)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(user.as_bytes()),
            &mut out,
        )
        .unwrap_or_else(|_| unreachable!("a 20-byte secret is far below AES-GCM's limit"));
    let mut sealed = nonce.to_vec();
    sealed.append(&mut out);
    sealed
}

/// Opens what [`seal`] made for `user` under `version`.
///
/// # Errors
/// [`Unsealable`] when the value is shorter than a nonce and a tag, or its tag does not verify
/// (a flipped bit, another key version's value, another account's).
pub fn open(
    version: &KeyVersion,
    user: Uuid,
    sealed: &[u8],
) -> Result<SecretSlice<u8>, Unsealable> {
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(Unsealable);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unsealable)?;
    let mut buf = body.to_vec();
    let plain = key(version)
        .open_in_place(nonce, Aad::from(user.as_bytes()), &mut buf)
        .map_err(|_| Unsealable)?;
    Ok(plain.to_vec().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str, byte: u8) -> KeyVersion {
        KeyVersion::new(id, vec![byte; 32])
    }

    #[test]
    fn a_sealed_secret_opens_for_its_account_under_its_key_only() {
        let (v1, v2) = (version("v1", 1), version("v2", 2));
        let (alice, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let secret: SecretSlice<u8> = vec![7; 20].into();
        let sealed = seal(&v1, alice, &secret);
        assert_eq!(sealed.len(), 12 + 20 + 16);
        assert_eq!(open(&v1, alice, &sealed).unwrap().expose_secret(), secret.expose_secret());
        assert_eq!(open(&v2, alice, &sealed).unwrap_err(), Unsealable, "another key version");
        assert_eq!(open(&v1, bob, &sealed).unwrap_err(), Unsealable, "another account");
        // Two seals of one secret differ (a fresh nonce each).
        assert_ne!(seal(&v1, alice, &secret), sealed);
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_fails_closed() {
        let v = version("v1", 1);
        let user = Uuid::from_u128(1);
        let sealed = seal(&v, user, &vec![9; 20].into());
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert_eq!(open(&v, user, &bad).unwrap_err(), Unsealable, "bit {i}");
        }
        for n in 0..sealed.len() {
            assert_eq!(open(&v, user, &sealed[..n]).unwrap_err(), Unsealable, "{n} bytes");
        }
    }
}
