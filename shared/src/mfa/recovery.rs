//! Recovery codes: ten single-use codes a user keeps on paper for the day the phone is lost.
//! Each is 10 characters of Crockford's base32 (50 random bits), shown as `xxxxx-xxxxx`;
//! typed back, case, hyphens and spaces do not matter and the look-alikes Crockford maps
//! (O as 0, I and L as 1) are taken. Stored as keyed hashes under the data key
//! ([`KeyVersion::mac`] with [`LABEL`], over the user id and the canonical code), never in clear.

use crate::data_key::KeyVersion;
use uuid::Uuid;

/// How many codes a set has.
pub const CODES_PER_SET: usize = 10;
/// Characters in a code (5 bits each: 50 bits).
pub const CODE_CHARS: usize = 10;
/// The data key's subkey label for recovery-code hashes.
pub const LABEL: &str = "recovery code";
/// The longest recovery code accepted as typed (hyphens and spaces included).
pub const MAX_TYPED_CHARS: usize = 32;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new set of [`CODES_PER_SET`] codes, as shown to the user.
pub fn new_set() -> Vec<String> {
    (0..CODES_PER_SET).map(|_| new_code()).collect()
}

fn new_code() -> String {
    let mut bits = u64::from_be_bytes({
        let mut b = [0u8; 8];
        b[1..].copy_from_slice(&crate::random::bytes::<7>());
        b
    });
    let mut chars = Vec::with_capacity(CODE_CHARS + 1);
    for i in 0..CODE_CHARS {
        if i == CODE_CHARS / 2 {
            chars.push(b'-');
        }
        chars.push(ALPHABET[(bits & 31) as usize].to_ascii_lowercase());
        bits >>= 5;
    }
    String::from_utf8(chars).unwrap_or_default()
}

/// The canonical form of a code as typed (upper case, no separators, look-alikes mapped), or
/// `None` when it cannot be a code (wrong length, a character outside the alphabet).
pub fn canonical(typed: &str) -> Option<String> {
    if typed.chars().count() > MAX_TYPED_CHARS {
        return None;
    }
    let mut out = String::with_capacity(CODE_CHARS);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == CODE_CHARS).then_some(out)
}

/// The stored hash of `code` (canonical) for `user` under `version`.
pub fn hash(version: &KeyVersion, user: Uuid, code: &str) -> [u8; 32] {
    version.mac(LABEL, &[user.as_bytes(), code.as_bytes()])
}

/// The stored hashes of a new set (from [`new_set`]) for `user` under `version`.
pub fn hashes(version: &KeyVersion, user: Uuid, codes: &[String]) -> Vec<[u8; 32]> {
    codes.iter().filter_map(|c| canonical(c)).map(|c| hash(version, user, &c)).collect()
}

/// Whether `stored` is the hash of `code` (canonical) for `user` under `version`, compared in
/// constant time.
pub fn matches(version: &KeyVersion, user: Uuid, code: &str, stored: &[u8]) -> bool {
    version.verify(LABEL, &[user.as_bytes(), code.as_bytes()], stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_ten_distinct_codes_of_fifty_bits_in_two_groups() {
        let set = new_set();
        assert_eq!(set.len(), CODES_PER_SET);
        let distinct: std::collections::HashSet<_> = set.iter().collect();
        assert_eq!(distinct.len(), CODES_PER_SET);
        for code in &set {
            assert_eq!(code.len(), 11, "{code}");
            assert_eq!(&code[5..6], "-", "{code}");
            assert_eq!(canonical(code).map(|c| c.len()), Some(CODE_CHARS), "{code}");
        }
        // Every symbol of the alphabet turns up across many codes (none stuck).
        let seen: std::collections::HashSet<char> = (0..200)
            .flat_map(|_| canonical(&new_code()).unwrap().chars().collect::<Vec<_>>())
            .collect();
        assert_eq!(seen.len(), 32);
    }

    #[test]
    fn codes_are_read_back_however_they_are_typed() {
        assert_eq!(canonical("abcde-fghjk").as_deref(), Some("ABCDEFGHJK"));
        assert_eq!(canonical(" ABCDE FGHJK ").as_deref(), Some("ABCDEFGHJK"));
        assert_eq!(canonical("o1l2i-34567").as_deref(), Some("0112134567"));
        for bad in ["", "abcde", "abcde-fghjkm", "abcde-fghju", "abcdé-fghjk", "abcde_fghjk"] {
            assert_eq!(canonical(bad), None, "{bad:?}");
        }
        assert_eq!(canonical(&"-".repeat(1000)), None);
    }

    #[test]
    fn hashes_are_keyed_and_bound_to_the_account() {
        let v = KeyVersion::new("v1", vec![1; 32]);
        let other = KeyVersion::new("v2", vec![2; 32]);
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let h = hash(&v, a, "ABCDEFGHJK");
        assert!(matches(&v, a, "ABCDEFGHJK", &h));
        assert!(!matches(&v, b, "ABCDEFGHJK", &h));
        assert!(!matches(&other, a, "ABCDEFGHJK", &h));
        assert!(!matches(&v, a, "ABCDEFGHJM", &h));
    }
}
