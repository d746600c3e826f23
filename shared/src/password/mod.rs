//! Password hashing and verification: PBKDF2-HMAC-SHA256 in PHC form for new hashes, and the
//! formats other systems store, verified in place so an existing users table moves over
//! unchanged and each hash is upgraded at the user's next successful login.
//!
//! - [`formats`]: the one table of stored-hash formats ([`FORMATS`]: name, prefixes, reader,
//!   caps), which drives [`parse`], the names in logs and reports, and the table in
//!   `docs/passwords.md`.
//! - [`verification`]: checking a password against a stored string, in constant time
//!   and at no less than one policy hash's cost; the cost classes of the failure floor.
//! - here: the policy for new passwords and hashes ([`Policy`], [`check_new`], [`hash`]).
//!
//! A string above its cap, or one that does not parse, is a failed verification and one `warn`
//! log line naming the format and the reason (never the hash or the password), never a panic
//! or an unbounded cost. bcrypt reads only the first 72 bytes of a password, as the system
//! that wrote the hash did; a match of a password that long proves only those bytes, so it
//! never upgrades the hash (the text typed may not be the user's whole password).
//!
//! Verification never panics on a stored string, compares in constant time, and always costs
//! at least one current-policy hash, so the time of a failure does not tell an unknown user
//! from a wrong password or a cheap legacy hash:
//! - PBKDF2-SHA256 (any of its formats) is the policy's own function: a cheaper hash is topped
//!   up with exactly the missing iterations, as before.
//! - Every other function is followed, when it fails, by a full current-policy hash. Estimating
//!   a foreign hash's cost in PBKDF2 iterations would need per-machine calibration (bcrypt,
//!   scrypt and Argon2 scale with memory bandwidth and Blowfish, not SHA-256, and Lambda's CPU
//!   varies), and an estimate that came out high would let a cheap foreign hash fail faster
//!   than an unknown identifier. Always adding one policy hash cannot err that way; it costs
//!   the foreign hash's own time extra, only on failures, and only until the account's first
//!   successful login replaces its hash. Left there, a wrong password against a foreign hash
//!   would take its cost plus one policy hash, longer than an unknown identifier; the login
//!   function therefore holds every failure to a floor, the failed-verification time of the
//!   costliest kind of stored hash present ([`crate::failure_floor`], which [`cost_class`] and
//!   [`failure_ratio`] serve; figures per format in `bench/src/bin/enumeration.rs`).

pub mod formats;
mod readers;
pub mod verification;

pub use formats::*;
pub use verification::*;

use std::borrow::Cow;
use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Salt length of new hashes, in bytes.
pub const SALT_LEN: usize = 16;
/// Output length of new hashes, in bytes (the SHA-256 digest size).
pub const HASH_LEN: usize = 32;
/// Shortest password `auth-admin` accepts for a new password.
pub const MIN_NEW_PASSWORD_CHARS: usize = 8;
/// Longest password accepted anywhere, in Unicode scalar values; never truncated.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// The lowest work factor accepted for new hashes.
pub const MIN_PBKDF2_ITERATIONS: u32 = 100_000;
/// The default work factor for new hashes (OWASP's figure for PBKDF2-HMAC-SHA256).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;

/// The work factor for new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// PBKDF2 iterations.
    pub iterations: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self { iterations: DEFAULT_PBKDF2_ITERATIONS }
    }
}

impl Policy {
    /// Reads PBKDF2_ITERATIONS, the work factor for new hashes: 100,000 to 10,000,000,
    /// default 600,000.
    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        let iterations = env.integer(
            "PBKDF2_ITERATIONS",
            DEFAULT_PBKDF2_ITERATIONS,
            MIN_PBKDF2_ITERATIONS,
            MAX_ITERATIONS,
        )?;
        Ok(Self { iterations })
    }
}

/// Why a new password was refused (400 `weak_password`, the detail naming the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Weak {
    /// Fewer than [`MIN_NEW_PASSWORD_CHARS`] characters.
    #[error("it must have at least 8 characters")]
    TooShort,
    /// More than [`MAX_PASSWORD_CHARS`] characters.
    #[error("it must have at most 1024 characters")]
    TooLong,
    /// The same text as the current password (after normalisation).
    #[error("it must differ from the current password")]
    SameAsCurrent,
    /// In the list of commonly used and breached passwords.
    #[error("it is one of the most commonly used or breached passwords")]
    Common,
}

/// The 20,000 most common passwords (Royce Williams' list, as Django ships it; see
/// `shared/data/README.md`), NFKC, lower case, sorted: one per line.
const COMMON_PASSWORDS: &str = include_str!("../../data/common-passwords.txt");

/// True when `password` (NFKC, lower-cased, trimmed, as Django compares) is in the list of
/// commonly used or breached passwords.
pub fn is_common(password: &str) -> bool {
    let key = normalize(password).trim().to_lowercase();
    // The list is sorted, so a binary search over its lines needs no set built at start-up.
    static LINES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let lines = LINES.get_or_init(|| COMMON_PASSWORDS.lines().collect());
    lines.binary_search(&key.as_str()).is_ok()
}

/// Checks a new password against the policy (docs/passwords.md): 8 to 1024 characters, not
/// the `current` one (when known), not commonly used or breached. Lengths count Unicode scalar
/// values of the text as typed; comparisons use its NFKC form.
pub fn check_new(password: &str, current: Option<&str>) -> Result<(), Weak> {
    let n = password.chars().count();
    if n < MIN_NEW_PASSWORD_CHARS {
        return Err(Weak::TooShort);
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(Weak::TooLong);
    }
    if current.is_some_and(|c| normalize(c) == normalize(password)) {
        return Err(Weak::SameAsCurrent);
    }
    if is_common(password) {
        return Err(Weak::Common);
    }
    Ok(())
}

/// PBKDF2-HMAC-SHA256 of `password` into `out`.
pub fn derive(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    crate::kdf::pbkdf2_hmac_sha256(password, salt, iterations, out);
}

/// A password in Unicode normalisation form NFKC (NIST SP 800-63B §5.1.1.2), the form every
/// new hash is made from, so the same text typed on another keyboard or OS (NFD from one, NFC
/// from another, full-width forms) verifies. Borrowed when already normalised (all ASCII is).
pub fn normalize(password: &str) -> Cow<'_, str> {
    if is_nfkc_quick(password.chars()) == IsNormalized::Yes {
        return Cow::Borrowed(password);
    }
    let nfkc: String = password.nfkc().collect();
    if nfkc == password { Cow::Borrowed(password) } else { Cow::Owned(nfkc) }
}

/// Hashes `password` (after [`normalize`]) under `policy` with a fresh random salt, as a PHC
/// string.
pub fn hash(password: &str, policy: Policy) -> String {
    let salt: [u8; SALT_LEN] = crate::random::bytes();
    hash_with_salt(password, &salt, policy.iterations)
}

/// Hashes `password` (after [`normalize`]) with a given salt (tests and vectors).
pub fn hash_with_salt(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; HASH_LEN];
    derive(normalize(password).as_bytes(), salt, iterations, &mut out);
    format!(
        "$pbkdf2-sha256$i={iterations},l={HASH_LEN}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

/// Spends `iterations` PBKDF2 iterations on nothing, in a way the optimiser cannot remove.
pub fn burn(password: &str, iterations: u32) {
    let mut out = [0u8; HASH_LEN];
    derive(black_box(password.as_bytes()), black_box(b"dummy-salt-16byt"), iterations, &mut out);
    black_box(out);
}

#[cfg(test)]
mod tests;
