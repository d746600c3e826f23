//! The stateless login challenge: what `POST /passkeys/login/options` hands out without
//! writing anything, and what `POST /passkeys/login` checks before it looks at the assertion.
//!
//! Bytes, then base64url in the options: `1` (format) || expiry (unix seconds, 8 bytes
//! big-endian) || 16 random bytes || the data key version's id (1 byte length, then the id) ||
//! HMAC-SHA-256 under that version's subkey [`LABEL`] over everything before it (32 bytes).
//! A challenge is good until its expiry, once: the answer stores its SHA-256 until then.

use sha2::{Digest, Sha256};

use crate::data_key::{DataKey, KeyVersion};

/// The data-key subkey label that signs login challenges.
pub const LABEL: &str = "passkey login challenge";
const FORMAT: u8 = 1;
const MAC_LEN: usize = 32;
const FIXED: usize = 1 + 8 + 16 + 1;

/// Why a presented challenge is refused (each logged, each a 401 to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not the shape of one of ours.
    #[error("not a challenge this service issued")]
    Shape,
    /// The key version it names is not readable (retired, or never ours).
    #[error("signed with a data key version no longer readable")]
    UnknownKey,
    /// The signature does not match.
    #[error("its signature does not match")]
    Forged,
    /// Past its expiry.
    #[error("expired")]
    Expired,
}

/// A new challenge, good for `ttl` seconds from `now` (unix seconds).
pub fn issue(version: &KeyVersion, now: u64, ttl: u64) -> Vec<u8> {
    let id = version.id.as_bytes();
    let id = &id[..id.len().min(255)];
    let mut out = Vec::with_capacity(FIXED + id.len() + MAC_LEN);
    out.push(FORMAT);
    out.extend_from_slice(&(now + ttl).to_be_bytes());
    out.extend_from_slice(&crate::random::bytes::<16>());
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    let mac = version.mac(LABEL, &[&out]);
    out.extend_from_slice(&mac);
    out
}

/// Checks a presented challenge; its expiry (unix seconds) when it is ours and live.
///
/// # Errors
/// [`Refused`].
pub async fn check(keys: &DataKey, challenge: &[u8], now: u64) -> Result<u64, Refused> {
    let Parts { signed, mac, key_id, expiry } = parts(challenge).ok_or(Refused::Shape)?;
    let id = std::str::from_utf8(key_id).map_err(|_| Refused::Shape)?;
    // Only the current version or one this container already holds: the id is the caller's
    // until the signature is checked, and must not make it ask Secrets Manager for anything.
    let version = keys.held(id).await.ok_or(Refused::UnknownKey)?;
    if !version.verify(LABEL, &[signed], mac) {
        return Err(Refused::Forged);
    }
    if expiry <= now {
        return Err(Refused::Expired);
    }
    Ok(expiry)
}

/// SHA-256 of a challenge: what is stored once it has been used.
pub fn used_hash(challenge: &[u8]) -> [u8; 32] {
    Sha256::digest(challenge).into()
}

/// A challenge taken apart.
struct Parts<'a> {
    /// Everything the MAC covers.
    signed: &'a [u8],
    mac: &'a [u8],
    key_id: &'a [u8],
    expiry: u64,
}

fn parts(c: &[u8]) -> Option<Parts<'_>> {
    if c.len() < FIXED + MAC_LEN || c[0] != FORMAT {
        return None;
    }
    let id_len = c[FIXED - 1] as usize;
    if c.len() != FIXED + id_len + MAC_LEN {
        return None;
    }
    let (signed, mac) = c.split_at(FIXED + id_len);
    let expiry = u64::from_be_bytes(c[1..9].try_into().ok()?);
    Some(Parts { signed, mac, key_id: &c[FIXED..FIXED + id_len], expiry })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_key::{DataKeySource, KeyVersion};

    async fn keys(byte: u8) -> DataKey {
        DataKey::new(DataKeySource::Local(vec![byte; 32].into())).await
    }

    #[tokio::test]
    async fn a_challenge_is_good_until_its_expiry_and_only_under_its_key() {
        let k = keys(7).await;
        let v = k.current().await.unwrap();
        let c = issue(&v, 1_000, 300);
        assert_eq!(check(&k, &c, 1_000).await, Ok(1_300));
        assert_eq!(check(&k, &c, 1_299).await, Ok(1_300));
        assert_eq!(check(&k, &c, 1_300).await, Err(Refused::Expired));
        assert_eq!(check(&keys(8).await, &c, 1_000).await, Err(Refused::Forged));
        assert_ne!(issue(&v, 1_000, 300), c, "each challenge has its own random part");
    }

    #[tokio::test]
    async fn any_changed_byte_or_length_is_refused() {
        let k = keys(7).await;
        let c = issue(&k.current().await.unwrap(), 1_000, 300);
        for i in 0..c.len() {
            let mut bad = c.clone();
            bad[i] ^= 0x01;
            assert!(check(&k, &bad, 1_000).await.is_err(), "byte {i}");
        }
        for cut in [0, 1, 10, c.len() - 1] {
            assert_eq!(check(&k, &c[..cut], 1_000).await, Err(Refused::Shape), "cut {cut}");
        }
        let mut longer = c.clone();
        longer.push(0);
        assert_eq!(check(&k, &longer, 1_000).await, Err(Refused::Shape));
        // A library's 32 random bytes are not one of ours.
        assert!(check(&k, &[1u8; 32], 1_000).await.is_err());
    }

    #[tokio::test]
    async fn a_challenge_naming_a_version_not_held_is_refused_before_any_lookup() {
        let k = keys(7).await;
        let other = KeyVersion::new("another-version", vec![7; 32]);
        let c = issue(&other, 1_000, 300);
        assert_eq!(check(&k, &c, 1_000).await, Err(Refused::UnknownKey));
    }
}
