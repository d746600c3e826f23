//! Password hashing and verification: PBKDF2-HMAC-SHA256 in PHC form for new hashes, and the
//! formats other systems store, verified in place so an existing users table moves over
//! unchanged and each hash is upgraded at the user's next successful login.
//!
//! | format | written by | function (crate) | cap |
//! | --- | --- | --- | --- |
//! | `$pbkdf2-sha256$i=`, `$pbkdf2-sha512$i=` | this service, RustCrypto | PBKDF2 (`kdf.rs`, `pbkdf2`) | SHA-256 10,000,000, SHA-512 1,600,000 iterations |
//! | `pbkdf2:sha256\|sha512\|sha1:N$salt$hex` | Werkzeug | PBKDF2 | SHA-256 10,000,000, SHA-512 1,600,000, SHA-1 7,000,000 iterations |
//! | `scrypt:N:r:p$salt$hex` | Werkzeug 3 (default) | scrypt (`scrypt`) | N ≤ 2^20, 128·N·r·p ≤ 256 MiB |
//! | `pbkdf2_sha256$`, `pbkdf2_sha1$` | Django | PBKDF2 | 10,000,000 / 7,000,000 iterations |
//! | `argon2$argon2id$…` | Django | Argon2 (`argon2`) | m ≤ 256 MiB, t ≤ 10, p ≤ 8, m·t ≤ 1 GiB |
//! | `bcrypt_sha256$$2b$…`, `bcrypt$$2b$…` | Django | bcrypt (`bcrypt`) | cost ≤ 14 |
//! | `scrypt$N$salt$r$p$b64` | Django | scrypt | as above |
//! | `$pbkdf2-sha256$N$`, `$pbkdf2-sha512$N$`, `$pbkdf2$N$` | passlib | PBKDF2 | 10,000,000 / 1,600,000 / 7,000,000 iterations |
//! | `$bcrypt-sha256$v=2,…`, `$bcrypt-sha256$2b,…` | passlib | bcrypt | cost ≤ 14 |
//! | `$2a$`, `$2b$`, `$2y$` | bcrypt (Supabase, Auth0, Devise, Laravel, …) | bcrypt | cost ≤ 14 |
//! | `$argon2id$`, `$argon2i$` | argon2-cffi, Kratos, passlib | Argon2 | as above |
//! | `$scrypt$ln=…` | passlib, RustCrypto | scrypt | as above |
//!
//! PHC strings of Argon2 and scrypt are read with `password-hash`'s PHC parser. The caps are
//! set per function so that a hash at its cap costs about a second on one core (measured here:
//! SHA-256 at 10,000,000 0.73 s, SHA-512 at 1,600,000 0.97 s, SHA-1 at 7,000,000 1.0 s,
//! bcrypt 14 1.0 s, scrypt at 256 MiB 0.70 s, Argon2 at m·t = 1 GiB 1.05 s), what a 1769 MB
//! Lambda (one vCPU) can afford: a string above its cap, or
//! one that does not parse, is a failed verification and one `warn` log line naming the format
//! and the reason (never the hash or the password), never a panic or an unbounded cost. Fixed
//! hash lengths are enforced, so a truncated hash is refused rather than checked on fewer
//! bytes (PBKDF2's and scrypt's outputs are prefixes of longer ones). bcrypt reads only the
//! first 72 bytes of a password, as the system that wrote the hash did; a match of a password
//! that long proves only those bytes, so it never upgrades the hash (the text typed may not be
//! the user's whole password).
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

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use subtle::ConstantTimeEq;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// PBKDF2-HMAC-SHA256 iteration counts above this are refused as a failed verification (a
/// stored string cannot make a login take minutes), and PBKDF2_ITERATIONS cannot exceed it.
/// About 0.75 s on one core of the development machine (`bench/src/bin/kdf.rs`).
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// The cap for PBKDF2-HMAC-SHA512 (Werkzeug's `pbkdf2:sha512`, passlib's
/// `$pbkdf2-sha512$`): SHA-512's HMAC costs about eight times SHA-256's per iteration here,
/// so this is about a second on one core.
pub const MAX_ITERATIONS_SHA512: u32 = 1_600_000;
/// The cap for PBKDF2-HMAC-SHA1 (Werkzeug, Django's `pbkdf2_sha1`, passlib's `$pbkdf2$`):
/// about a second on one core.
pub const MAX_ITERATIONS_SHA1: u32 = 7_000_000;
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
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

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

/// The formats a stored hash may have: the system that wrote it (the [`Kdf`] says which
/// algorithm and work factor it holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `$pbkdf2-sha256$i=<n>,l=<len>$<b64 salt>$<b64 hash>` (ours), and RustCrypto's
    /// `$pbkdf2-sha512$i=<n>,l=<len>$...` (PHC string format).
    Phc,
    /// Werkzeug: `pbkdf2:sha256:<n>$<salt>$<hex>` (also `sha512`, `sha1`).
    Werkzeug,
    /// Werkzeug 3's default: `scrypt:<N>:<r>:<p>$<salt>$<hex>`.
    WerkzeugScrypt,
    /// Django: `pbkdf2_sha256$<n>$<salt>$<b64>`.
    Django,
    /// Django: `pbkdf2_sha1$<n>$<salt>$<b64>`.
    DjangoPbkdf2Sha1,
    /// Django: `argon2$argon2id$v=19$m=..,t=..,p=..$<b64 salt>$<b64 hash>`.
    DjangoArgon2,
    /// Django: `bcrypt_sha256$$2b$<cost>$...` (bcrypt of the hex SHA-256 of the password).
    DjangoBcryptSha256,
    /// Django: `bcrypt$$2b$<cost>$...`.
    DjangoBcrypt,
    /// Django: `scrypt$<N>$<salt>$<r>$<p>$<b64>`.
    DjangoScrypt,
    /// passlib: `$pbkdf2-sha256$<n>$<ab64 salt>$<ab64 hash>`, `$pbkdf2-sha512$<n>$...` and
    /// `$pbkdf2$<n>$...` (SHA-1).
    Passlib,
    /// passlib: `$bcrypt-sha256$v=2,t=2b,r=<cost>$<salt>$<digest>` (and v1,
    /// `$bcrypt-sha256$2b,<cost>$...`).
    PasslibBcryptSha256,
    /// bcrypt's modular crypt format: `$2a$`, `$2b$`, `$2y$<cost>$<22 salt><31 hash>`.
    Bcrypt,
    /// PHC Argon2: `$argon2id$v=19$m=..,t=..,p=..$<b64 salt>$<b64 hash>` (also `$argon2i$`,
    /// `$argon2d$`).
    Argon2,
    /// PHC scrypt: `$scrypt$ln=..,r=..,p=..$<b64 salt>$<b64 hash>` (passlib, RustCrypto).
    ScryptPhc,
}

impl Scheme {
    /// A short name for logs and reports (never the hash itself).
    pub fn name(self) -> &'static str {
        match self {
            Self::Phc => "phc-pbkdf2",
            Self::Werkzeug => "werkzeug-pbkdf2",
            Self::WerkzeugScrypt => "werkzeug-scrypt",
            Self::Django => "django-pbkdf2_sha256",
            Self::DjangoPbkdf2Sha1 => "django-pbkdf2_sha1",
            Self::DjangoArgon2 => "django-argon2",
            Self::DjangoBcryptSha256 => "django-bcrypt_sha256",
            Self::DjangoBcrypt => "django-bcrypt",
            Self::DjangoScrypt => "django-scrypt",
            Self::Passlib => "passlib-pbkdf2",
            Self::PasslibBcryptSha256 => "passlib-bcrypt_sha256",
            Self::Bcrypt => "bcrypt",
            Self::Argon2 => "phc-argon2",
            Self::ScryptPhc => "phc-scrypt",
        }
    }
}

/// The pseudo-random function of a PBKDF2 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    /// HMAC-SHA-1.
    Sha1,
    /// HMAC-SHA-256 (ours).
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Prf {
    /// The digest size, in bytes: the hash length every format but PHC's `l=` implies.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// The most iterations a stored hash with this PRF may ask for: each cap is about a
    /// second on one core ([`MAX_ITERATIONS_SHA1`], [`MAX_ITERATIONS`],
    /// [`MAX_ITERATIONS_SHA512`]).
    pub fn max_iterations(self) -> u32 {
        match self {
            Self::Sha1 => MAX_ITERATIONS_SHA1,
            Self::Sha256 => MAX_ITERATIONS,
            Self::Sha512 => MAX_ITERATIONS_SHA512,
        }
    }
}

/// The Argon2 variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Argon2Variant {
    /// Argon2id.
    Id,
    /// Argon2i.
    I,
    /// Argon2d.
    D,
}

/// What a bcrypt-based format feeds bcrypt instead of the password itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prehash {
    /// The password (truncated to 72 bytes, as bcrypt does).
    None,
    /// Django's bcrypt_sha256: the lower-case hex SHA-256 of the password.
    Sha256Hex,
    /// passlib's bcrypt_sha256 v1: the padded base64 SHA-256 of the password.
    Sha256Base64,
    /// passlib's bcrypt_sha256 v2: the padded base64 HMAC-SHA256 of the password keyed with
    /// the salt's bcrypt-base64 text.
    HmacSha256Base64(String),
}

/// The key-derivation function of a stored hash and its work factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kdf {
    /// PBKDF2 with `prf`, `iterations` at most [`Prf::max_iterations`].
    Pbkdf2 {
        /// HMAC hash.
        prf: Prf,
        /// Iterations.
        iterations: u32,
    },
    /// scrypt with N = 2^`log_n`; see [`SCRYPT_MAX_LOG_N`] and [`SCRYPT_MAX_BYTES`].
    Scrypt {
        /// log2 of N.
        log_n: u8,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
    },
    /// Argon2; see [`ARGON2_MAX_M_KIB`], [`ARGON2_MAX_T`], [`ARGON2_MAX_P`].
    Argon2 {
        /// Variant.
        variant: Argon2Variant,
        /// 0x10 or 0x13.
        version: u32,
        /// Memory, KiB.
        m: u32,
        /// Passes.
        t: u32,
        /// Lanes.
        p: u32,
    },
    /// bcrypt at 2^`cost` rounds; see [`BCRYPT_MAX_COST`].
    Bcrypt {
        /// log2 of the rounds.
        cost: u32,
        /// What is hashed in place of the password.
        prehash: Prehash,
    },
}

/// scrypt: N at most 2^20.
pub const SCRYPT_MAX_LOG_N: u8 = 20;
/// scrypt: 128·N·r·p (the memory of one lane times the lanes, run one after the other, so a
/// bound on both memory and time) at most 256 MiB.
pub const SCRYPT_MAX_BYTES: u64 = 256 << 20;
/// Argon2: memory at most 256 MiB.
pub const ARGON2_MAX_M_KIB: u32 = 262_144;
/// Argon2: at most 10 passes.
pub const ARGON2_MAX_T: u32 = 10;
/// Argon2: at most 8 lanes.
pub const ARGON2_MAX_P: u32 = 8;
/// Argon2: memory × passes at most 1 GiB (bounds the time as m and t alone do not).
pub const ARGON2_MAX_M_T: u64 = 1 << 20;
/// bcrypt: cost at most 14 (2^14 rounds, about a second).
pub const BCRYPT_MAX_COST: u32 = 14;

/// A stored hash taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Which format it was in.
    pub scheme: Scheme,
    /// The algorithm and its work factor.
    pub kdf: Kdf,
    /// Salt bytes as fed to the KDF.
    pub salt: Vec<u8>,
    /// The expected derived key.
    pub hash: Vec<u8>,
}

impl Parsed {
    /// The PBKDF2 iteration count, for PBKDF2 formats.
    pub fn iterations(&self) -> Option<u32> {
        match self.kdf {
            Kdf::Pbkdf2 { iterations, .. } => Some(iterations),
            _ => None,
        }
    }
}

/// Why a stored string could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Not one of the accepted formats.
    #[error("unrecognised password hash format")]
    Unrecognised,
    /// A recognised format with a bad field.
    #[error("malformed {0} field")]
    Field(&'static str),
    /// More iterations than the PRF's cap ([`Prf::max_iterations`]), or zero.
    #[error("iteration count out of range")]
    Iterations,
    /// A work factor above its cap (or below the algorithm's minimum).
    #[error("work factor {0} out of range")]
    Cost(&'static str),
}

/// passlib's "adapted base64": standard alphabet with `.` for `+`, no padding.
fn ab64_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(s.replace('.', "+")).ok()
}

fn iterations(s: &str, prf: Prf) -> Result<u32, FormatError> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FormatError::Iterations);
    }
    match s.parse::<u32>() {
        Ok(n) if (1..=prf.max_iterations()).contains(&n) => Ok(n),
        _ => Err(FormatError::Iterations),
    }
}

/// A small decimal field (work factors): digits only, at most 10 of them.
fn number(s: &str, field: &'static str) -> Result<u64, FormatError> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FormatError::Field(field));
    }
    s.parse::<u64>().map_err(|_| FormatError::Field(field))
}

fn check_lengths(salt: &[u8], hash: &[u8]) -> Result<(), FormatError> {
    if salt.is_empty() || salt.len() > 1024 {
        return Err(FormatError::Field("salt"));
    }
    if !(16..=64).contains(&hash.len()) {
        return Err(FormatError::Field("hash"));
    }
    Ok(())
}

/// The three `$`-separated fields every format ends with (parameters, salt, hash).
fn three_fields(rest: &str) -> Result<(&str, &str, &str), FormatError> {
    let mut parts = rest.split('$');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c), None) => Ok((a, b, c)),
        _ => Err(FormatError::Unrecognised),
    }
}

/// Checks scrypt's parameters against the caps; N = `n` must be a power of two.
fn scrypt_kdf(n: u64, r: u64, p: u64) -> Result<Kdf, FormatError> {
    if n < 2 || !n.is_power_of_two() {
        return Err(FormatError::Field("N"));
    }
    let log_n = n.trailing_zeros() as u8;
    if log_n > SCRYPT_MAX_LOG_N {
        return Err(FormatError::Cost("N"));
    }
    if r == 0 || p == 0 {
        return Err(FormatError::Field("r, p"));
    }
    let bytes = 128u64.saturating_mul(n).saturating_mul(r).saturating_mul(p);
    if bytes > SCRYPT_MAX_BYTES || r > u32::MAX.into() || p > u32::MAX.into() {
        return Err(FormatError::Cost("128·N·r·p"));
    }
    Ok(Kdf::Scrypt { log_n, r: r as u32, p: p as u32 })
}

/// `$pbkdf2-<prf>$...`: the PHC form (`i=<n>,l=<len>`, standard base64) or passlib's
/// (`<n>`, adapted base64).
fn parse_pbkdf2_dollar(rest: &str, prf: Prf) -> Result<Parsed, FormatError> {
    let (params, salt, hash) = three_fields(rest)?;
    if params.starts_with("i=") && prf != Prf::Sha1 {
        let mut n = None;
        let mut len = None;
        for kv in params.split(',') {
            match kv.split_once('=') {
                Some(("i", v)) if n.is_none() => n = Some(iterations(v, prf)?),
                Some(("l", v)) if len.is_none() => {
                    len = Some(v.parse::<usize>().map_err(|_| FormatError::Field("l"))?)
                }
                _ => return Err(FormatError::Field("parameters")),
            }
        }
        let salt = STANDARD_NO_PAD.decode(salt).map_err(|_| FormatError::Field("salt"))?;
        let hash = STANDARD_NO_PAD.decode(hash).map_err(|_| FormatError::Field("hash"))?;
        if len.unwrap_or(prf.digest_len()) != hash.len() {
            return Err(FormatError::Field("l"));
        }
        let iterations = n.ok_or(FormatError::Field("i"))?;
        Ok(Parsed { scheme: Scheme::Phc, kdf: Kdf::Pbkdf2 { prf, iterations }, salt, hash })
    } else {
        Ok(Parsed {
            scheme: Scheme::Passlib,
            kdf: Kdf::Pbkdf2 { prf, iterations: iterations(params, prf)? },
            salt: ab64_decode(salt).ok_or(FormatError::Field("salt"))?,
            hash: ab64_decode(hash).ok_or(FormatError::Field("hash"))?,
        })
    }
}

/// bcrypt's base64 (`./A-Za-z0-9`, no padding); unused trailing bits are ignored, as bcrypt
/// implementations do.
fn bcrypt_b64(s: &str, len: usize, field: &'static str) -> Result<Vec<u8>, FormatError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::BCRYPT,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    match ENGINE.decode(s) {
        Ok(v) if v.len() == len => Ok(v),
        _ => Err(FormatError::Field(field)),
    }
}

fn bcrypt_cost(s: &str) -> Result<u32, FormatError> {
    if s.len() != 2 {
        return Err(FormatError::Field("cost"));
    }
    let cost = number(s, "cost")? as u32;
    if !(4..=BCRYPT_MAX_COST).contains(&cost) {
        return Err(FormatError::Cost("cost"));
    }
    Ok(cost)
}

/// A bcrypt string, `$2a$`, `$2b$` or `$2y$<cost>$<22 salt><31 hash>`.
fn parse_bcrypt(s: &str, scheme: Scheme, prehash: Prehash) -> Result<Parsed, FormatError> {
    let rest = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .ok_or(FormatError::Unrecognised)?;
    let (cost, body) = rest.split_once('$').ok_or(FormatError::Field("cost"))?;
    let cost = bcrypt_cost(cost)?;
    if body.len() != 53 || !body.is_ascii() {
        return Err(FormatError::Field("salt and hash"));
    }
    let salt = bcrypt_b64(&body[..22], 16, "salt")?;
    let hash = bcrypt_b64(&body[22..], 23, "hash")?;
    Ok(Parsed { scheme, kdf: Kdf::Bcrypt { cost, prehash }, salt, hash })
}

/// passlib's `$bcrypt-sha256$`: v2 `v=2,t=2b,r=<cost>$<salt>$<digest>`, v1
/// `2a|2b,<cost>$<salt>$<digest>`.
fn parse_passlib_bcrypt_sha256(rest: &str) -> Result<Parsed, FormatError> {
    let (params, salt_text, digest) = three_fields(rest)?;
    let (cost, v2) = if let Some(p) = params.strip_prefix("v=2,t=2b,r=") {
        (p, true)
    } else if let Some(p) = params.strip_prefix("2a,").or_else(|| params.strip_prefix("2b,")) {
        (p, false)
    } else {
        return Err(FormatError::Field("parameters"));
    };
    let cost = bcrypt_cost(&format!("{cost:0>2}"))?;
    if salt_text.len() != 22 || digest.len() != 31 {
        return Err(FormatError::Field("salt and hash"));
    }
    let salt = bcrypt_b64(salt_text, 16, "salt")?;
    let hash = bcrypt_b64(digest, 23, "hash")?;
    let prehash =
        if v2 { Prehash::HmacSha256Base64(salt_text.to_owned()) } else { Prehash::Sha256Base64 };
    Ok(Parsed {
        scheme: Scheme::PasslibBcryptSha256,
        kdf: Kdf::Bcrypt { cost, prehash },
        salt,
        hash,
    })
}

/// A PHC string of Argon2 or scrypt, read with `password-hash`'s PHC parser.
fn parse_phc_memory_hard(s: &str, scheme: Scheme) -> Result<Parsed, FormatError> {
    let phc =
        password_hash::phc::PasswordHash::new(s).map_err(|_| FormatError::Field("PHC string"))?;
    let salt = phc.salt.as_ref().ok_or(FormatError::Field("salt"))?.as_ref().to_vec();
    let hash = phc.hash.as_ref().ok_or(FormatError::Field("hash"))?.as_bytes().to_vec();
    let mut seen = Vec::new();
    for (name, value) in phc.params.iter() {
        let name = name.as_str().to_owned();
        if seen.contains(&name) {
            return Err(FormatError::Field("parameters"));
        }
        seen.push(name);
        value.decimal().map_err(|_| FormatError::Field("parameters"))?;
    }
    let get = |name: &'static str| -> Result<u64, FormatError> {
        phc.params.get_decimal(name).map(u64::from).ok_or(FormatError::Field(name))
    };
    let algorithm = phc.algorithm.as_str();
    let kdf = if algorithm == "scrypt" {
        if seen.len() != 3 || phc.version.is_some() {
            return Err(FormatError::Field("parameters"));
        }
        let ln = get("ln")?;
        if ln > 63 {
            return Err(FormatError::Cost("ln"));
        }
        scrypt_kdf(1u64 << ln, get("r")?, get("p")?)?
    } else {
        let variant = match algorithm {
            "argon2id" => Argon2Variant::Id,
            "argon2i" => Argon2Variant::I,
            "argon2d" => Argon2Variant::D,
            _ => return Err(FormatError::Unrecognised),
        };
        if seen.len() != 3 {
            return Err(FormatError::Field("parameters"));
        }
        let version = match phc.version {
            None | Some(0x10) => 0x10,
            Some(0x13) => 0x13,
            Some(_) => return Err(FormatError::Field("v")),
        };
        let (m, t, p) = (get("m")?, get("t")?, get("p")?);
        if t == 0 || p == 0 || m < 8 * p {
            return Err(FormatError::Field("m, t, p"));
        }
        if m > u64::from(ARGON2_MAX_M_KIB) {
            return Err(FormatError::Cost("m"));
        }
        if t > u64::from(ARGON2_MAX_T) {
            return Err(FormatError::Cost("t"));
        }
        if p > u64::from(ARGON2_MAX_P) {
            return Err(FormatError::Cost("p"));
        }
        if m * t > ARGON2_MAX_M_T {
            return Err(FormatError::Cost("m·t"));
        }
        Kdf::Argon2 { variant, version, m: m as u32, t: t as u32, p: p as u32 }
    };
    Ok(Parsed { scheme, kdf, salt, hash })
}

/// Parses a stored hash in any of the accepted formats. Work factors above their caps are
/// errors ([`FormatError::Cost`], [`FormatError::Iterations`]): no stored string can make a
/// verification cost more than the caps allow.
pub fn parse(stored: &str) -> Result<Parsed, FormatError> {
    if stored.len() > 2048 {
        return Err(FormatError::Unrecognised);
    }
    let pbkdf2 = |scheme, prf, rest: &str, decode: fn(&str) -> Option<Vec<u8>>| {
        let (n, salt, hash) = three_fields(rest)?;
        Ok::<_, FormatError>(Parsed {
            scheme,
            kdf: Kdf::Pbkdf2 { prf, iterations: iterations(n, prf)? },
            salt: salt.as_bytes().to_vec(),
            hash: decode(hash).ok_or(FormatError::Field("hash"))?,
        })
    };
    let hex_decode = |s: &str| hex::decode(s).ok();
    let b64_decode = |s: &str| STANDARD.decode(s).ok();
    let parsed = if let Some(rest) = stored.strip_prefix("$pbkdf2-sha256$") {
        parse_pbkdf2_dollar(rest, Prf::Sha256)?
    } else if let Some(rest) = stored.strip_prefix("$pbkdf2-sha512$") {
        parse_pbkdf2_dollar(rest, Prf::Sha512)?
    } else if let Some(rest) = stored.strip_prefix("$pbkdf2$") {
        parse_pbkdf2_dollar(rest, Prf::Sha1)?
    } else if let Some(rest) = stored.strip_prefix("pbkdf2:sha256:") {
        pbkdf2(Scheme::Werkzeug, Prf::Sha256, rest, hex_decode)?
    } else if let Some(rest) = stored.strip_prefix("pbkdf2:sha512:") {
        pbkdf2(Scheme::Werkzeug, Prf::Sha512, rest, hex_decode)?
    } else if let Some(rest) = stored.strip_prefix("pbkdf2:sha1:") {
        pbkdf2(Scheme::Werkzeug, Prf::Sha1, rest, hex_decode)?
    } else if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        pbkdf2(Scheme::Django, Prf::Sha256, rest, b64_decode)?
    } else if let Some(rest) = stored.strip_prefix("pbkdf2_sha1$") {
        pbkdf2(Scheme::DjangoPbkdf2Sha1, Prf::Sha1, rest, b64_decode)?
    } else if let Some(rest) = stored.strip_prefix("scrypt:") {
        // Werkzeug: scrypt:N:r:p$salt$hex (the salt's text is the salt).
        let (params, salt, hash) = three_fields(rest)?;
        let mut it = params.split(':');
        let (Some(n), Some(r), Some(p), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(FormatError::Field("parameters"));
        };
        Parsed {
            scheme: Scheme::WerkzeugScrypt,
            kdf: scrypt_kdf(number(n, "N")?, number(r, "r")?, number(p, "p")?)?,
            salt: salt.as_bytes().to_vec(),
            hash: hex::decode(hash).map_err(|_| FormatError::Field("hash"))?,
        }
    } else if let Some(rest) = stored.strip_prefix("scrypt$") {
        // Django: scrypt$N$salt$r$p$b64.
        let f: Vec<&str> = rest.splitn(6, '$').collect();
        let [n, salt, r, p, hash] = f[..] else { return Err(FormatError::Unrecognised) };
        if hash.contains('$') {
            return Err(FormatError::Unrecognised);
        }
        Parsed {
            scheme: Scheme::DjangoScrypt,
            kdf: scrypt_kdf(number(n, "N")?, number(r, "r")?, number(p, "p")?)?,
            salt: salt.as_bytes().to_vec(),
            hash: STANDARD.decode(hash).map_err(|_| FormatError::Field("hash"))?,
        }
    } else if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$")
    {
        parse_bcrypt(stored, Scheme::Bcrypt, Prehash::None)?
    } else if let Some(rest) = stored.strip_prefix("bcrypt_sha256$") {
        parse_bcrypt(rest, Scheme::DjangoBcryptSha256, Prehash::Sha256Hex)?
    } else if let Some(rest) = stored.strip_prefix("bcrypt$") {
        parse_bcrypt(rest, Scheme::DjangoBcrypt, Prehash::None)?
    } else if let Some(rest) = stored.strip_prefix("$bcrypt-sha256$") {
        parse_passlib_bcrypt_sha256(rest)?
    } else if let Some(rest) = stored.strip_prefix("argon2$") {
        if !rest.starts_with("argon2") {
            return Err(FormatError::Unrecognised);
        }
        parse_phc_memory_hard(&format!("${rest}"), Scheme::DjangoArgon2)?
    } else if stored.starts_with("$argon2") {
        parse_phc_memory_hard(stored, Scheme::Argon2)?
    } else if stored.starts_with("$scrypt$") {
        parse_phc_memory_hard(stored, Scheme::ScryptPhc)?
    } else {
        return Err(FormatError::Unrecognised);
    };
    // A hash shorter than its format writes would still match a prefix of the derived key
    // (PBKDF2's and scrypt's outputs extend one another): every fixed length is enforced, so a
    // truncated string is refused rather than verified on fewer bytes.
    let expected = match (&parsed.kdf, parsed.scheme) {
        // bcrypt's 16-byte salt and 23-byte hash are fixed by its format (checked above).
        (Kdf::Bcrypt { .. }, _) => return Ok(parsed),
        // PHC pbkdf2 checked `l=` (or the digest size) already; Argon2 binds the length into
        // its output, so a shortened hash cannot match.
        (
            Kdf::Pbkdf2 { .. } | Kdf::Argon2 { .. },
            Scheme::Phc | Scheme::Argon2 | Scheme::DjangoArgon2,
        ) => None,
        (Kdf::Pbkdf2 { prf, .. }, _) => Some(prf.digest_len()),
        (Kdf::Scrypt { .. }, Scheme::ScryptPhc) if parsed.hash.len() == 64 => None,
        (Kdf::Scrypt { .. }, Scheme::ScryptPhc) => Some(32),
        (Kdf::Scrypt { .. }, _) => Some(64),
        (Kdf::Argon2 { .. }, _) => None,
    };
    if expected.is_some_and(|n| n != parsed.hash.len()) {
        return Err(FormatError::Field("hash length"));
    }
    check_lengths(&parsed.salt, &parsed.hash)?;
    // PBKDF2 runs its iterations once per output block: a PHC `l=` longer than the digest
    // costs that many times over, so the cap bounds iterations × blocks.
    if let Kdf::Pbkdf2 { prf, iterations } = parsed.kdf {
        let blocks = parsed.hash.len().div_ceil(prf.digest_len()) as u64;
        if u64::from(iterations) * blocks > u64::from(prf.max_iterations()) {
            return Err(FormatError::Iterations);
        }
    }
    Ok(parsed)
}

/// The format name a stored string claims, for the log line of an unusable one: its prefix up
/// to the first field, or "unknown" (never the hash itself).
fn claimed_format(stored: &str) -> &'static str {
    const PREFIXES: [(&str, &str); 18] = [
        ("$pbkdf2-sha256$", "pbkdf2-sha256 (PHC or passlib)"),
        ("$pbkdf2-sha512$", "pbkdf2-sha512 (PHC or passlib)"),
        ("$pbkdf2$", "passlib pbkdf2_sha1"),
        ("pbkdf2:", "werkzeug pbkdf2"),
        ("pbkdf2_sha256$", "django pbkdf2_sha256"),
        ("pbkdf2_sha1$", "django pbkdf2_sha1"),
        ("scrypt:", "werkzeug scrypt"),
        ("scrypt$", "django scrypt"),
        ("$2a$", "bcrypt"),
        ("$2b$", "bcrypt"),
        ("$2y$", "bcrypt"),
        ("bcrypt_sha256$", "django bcrypt_sha256"),
        ("bcrypt$", "django bcrypt"),
        ("$bcrypt-sha256$", "passlib bcrypt_sha256"),
        ("argon2$", "django argon2"),
        ("$argon2", "argon2 (PHC)"),
        ("$scrypt$", "scrypt (PHC)"),
        ("$2x$", "bcrypt $2x$ (unsupported)"),
    ];
    PREFIXES.iter().find(|(p, _)| stored.starts_with(p)).map_or("unknown", |(_, name)| name)
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

/// The cost class of a stored hash: its function and work factors (e.g. `bcrypt cost=12`,
/// `argon2id v=19 m=65536 t=3 p=4`), for [`crate::failure_floor`]; `None` for a hash of the
/// policy's own kind (PBKDF2-SHA256 at or below the policy's iterations with one 32-byte
/// block, which a failure tops up to one policy hash) and for an unusable string (which costs
/// one policy hash too).
pub fn cost_class(stored: &str, policy: Policy) -> Option<String> {
    let parsed = parse(stored).ok()?;
    let prf = |p: Prf| match p {
        Prf::Sha1 => "sha1",
        Prf::Sha256 => "sha256",
        Prf::Sha512 => "sha512",
    };
    let len = parsed.hash.len();
    Some(match parsed.kdf {
        Kdf::Pbkdf2 { prf: Prf::Sha256, iterations }
            if iterations <= policy.iterations && len <= HASH_LEN =>
        {
            return None;
        }
        // The output length counts: PBKDF2 runs its iterations once per digest-sized block.
        Kdf::Pbkdf2 { prf: p, iterations } => format!("pbkdf2-{} i={iterations} l={len}", prf(p)),
        Kdf::Scrypt { log_n, r, p } => format!("scrypt ln={log_n} r={r} p={p}"),
        Kdf::Argon2 { variant, version, m, t, p } => {
            let v = match variant {
                Argon2Variant::Id => "argon2id",
                Argon2Variant::I => "argon2i",
                Argon2Variant::D => "argon2d",
            };
            format!("{v} v={version} m={m} t={t} p={p}")
        }
        Kdf::Bcrypt { cost, .. } => format!("bcrypt cost={cost}"),
    })
}

/// A failed verification's time against `stored` over one policy hash's (that of
/// [`verify_dummy`], an unknown identifier's), on this machine: three interleaved rounds, the
/// fastest of each kept (a busy core only ever slows a round). Costs about three of each.
pub fn failure_ratio(stored: &str, policy: Policy) -> f64 {
    const PROBE: &str = "a probe of the hash's cost, not anyone's password";
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        let t = Instant::now();
        black_box(verify(PROBE, stored, policy));
        best.0 = best.0.min(t.elapsed());
        let t = Instant::now();
        black_box(verify_dummy(PROBE, policy));
        best.1 = best.1.min(t.elapsed());
    }
    best.0.as_secs_f64() / best.1.as_secs_f64().max(1e-9)
}

/// The result of checking a password against a stored string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password matches; `needs_upgrade` when the stored string is a legacy format or below
    /// the current policy and should be replaced by [`hash`] (never after a bcrypt match of a
    /// password of 72 bytes or more, which proves only its first 72 bytes).
    Match {
        /// Replace the stored hash at this login.
        needs_upgrade: bool,
    },
    /// Wrong password, or a stored string that cannot be used.
    Mismatch,
}

/// Verifies `password` against `stored`. Costs at least one current-policy hash whatever the
/// stored string holds (see the module documentation): a cheaper PBKDF2-SHA256 hash is topped
/// up with dummy iterations, a failed check against any other format is followed by a full
/// dummy hash, an unusable string is replaced by one (and logged once, naming the format and
/// the reason).
///
/// The password's NFKC form (see [`normalize`]) is tried first. When the typed text is not
/// already in NFKC, the text as typed is tried too, because hashes made elsewhere (or here,
/// before passwords were normalised) may be of un-normalised text; a match that way asks for
/// an upgrade. That second try depends only on the typed text, never on the account, and
/// [`verify_dummy`] makes it too, so it tells nothing about who exists.
pub fn verify(password: &str, stored: &str, policy: Policy) -> Verdict {
    let parsed = match parse(stored) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(
                format = claimed_format(stored),
                reason = %e,
                "stored password hash unusable: counted as a wrong password"
            );
            return verify_dummy(password, policy);
        }
    };
    let normalized = normalize(password);
    let first = verify_parsed(&normalized, &parsed, policy);
    match (first, &normalized) {
        (Verdict::Match { .. }, _) | (Verdict::Mismatch, Cow::Borrowed(_)) => first,
        (Verdict::Mismatch, Cow::Owned(_)) => match verify_parsed(password, &parsed, policy) {
            Verdict::Match { .. } => {
                Verdict::Match { needs_upgrade: !truncated(password.as_bytes(), &parsed) }
            }
            Verdict::Mismatch => Verdict::Mismatch,
        },
    }
}

/// bcrypt reads at most 72 bytes of the password (with its terminating NUL when shorter):
/// two passwords whose first 72 bytes agree, or a 72-byte password and any longer one that
/// starts with it, hash alike.
pub const BCRYPT_MAX_BYTES: usize = 72;

/// Whether `parsed` may have matched `password` on a prefix: a bcrypt format that hashes the
/// password itself (not a digest of it) and a password of [`BCRYPT_MAX_BYTES`] bytes or more,
/// a multibyte character across byte 72 included. Such a match proves only the prefix, so the
/// text typed must never replace the stored hash: the user's own longer password would stop
/// working.
fn truncated(password: &[u8], parsed: &Parsed) -> bool {
    matches!(parsed.kdf, Kdf::Bcrypt { prehash: Prehash::None, .. })
        && password.len() >= BCRYPT_MAX_BYTES
}

/// Computes the parsed hash's KDF of `password`; `None` if the KDF refused its parameters
/// (which [`parse`] should already have ruled out).
fn compute(password: &[u8], parsed: &Parsed) -> Option<Vec<u8>> {
    let mut out = vec![0u8; parsed.hash.len()];
    match &parsed.kdf {
        Kdf::Pbkdf2 { prf: Prf::Sha256, iterations } => {
            derive(password, &parsed.salt, *iterations, &mut out)
        }
        Kdf::Pbkdf2 { prf: Prf::Sha512, iterations } => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, &parsed.salt, *iterations, &mut out)
        }
        Kdf::Pbkdf2 { prf: Prf::Sha1, iterations } => {
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, &parsed.salt, *iterations, &mut out)
        }
        Kdf::Scrypt { log_n, r, p } => {
            let params = scrypt::Params::new(*log_n, *r, *p).ok()?;
            scrypt::scrypt(password, &parsed.salt, &params, &mut out).ok()?;
        }
        Kdf::Argon2 { variant, version, m, t, p } => {
            let algorithm = match variant {
                Argon2Variant::Id => argon2::Algorithm::Argon2id,
                Argon2Variant::I => argon2::Algorithm::Argon2i,
                Argon2Variant::D => argon2::Algorithm::Argon2d,
            };
            let version =
                if *version == 0x13 { argon2::Version::V0x13 } else { argon2::Version::V0x10 };
            let params = argon2::Params::new(*m, *t, *p, Some(out.len())).ok()?;
            argon2::Argon2::new(algorithm, version, params)
                .hash_password_into(password, &parsed.salt, &mut out)
                .ok()?;
        }
        Kdf::Bcrypt { cost, prehash } => {
            use sha2::Digest;
            let key: Cow<'_, [u8]> = match prehash {
                Prehash::None => Cow::Borrowed(password),
                Prehash::Sha256Hex => {
                    Cow::Owned(hex::encode(sha2::Sha256::digest(password)).into_bytes())
                }
                Prehash::Sha256Base64 => {
                    Cow::Owned(STANDARD.encode(sha2::Sha256::digest(password)).into_bytes())
                }
                Prehash::HmacSha256Base64(salt_text) => {
                    use hmac::{KeyInit, Mac};
                    let mut mac =
                        hmac::Hmac::<sha2::Sha256>::new_from_slice(salt_text.as_bytes()).ok()?;
                    mac.update(password);
                    Cow::Owned(STANDARD.encode(mac.finalize().into_bytes()).into_bytes())
                }
            };
            // bcrypt hashes the key with its terminating NUL, all of it within 72 bytes (as the
            // bcrypt crate's own `verify` prepares it).
            let mut buf = [0u8; 72];
            let n = key.len().min(72);
            buf[..n].copy_from_slice(&key[..n]);
            let used = (n + 1).min(72);
            let salt: [u8; 16] = parsed.salt.as_slice().try_into().ok()?;
            let full = bcrypt::bcrypt(*cost, salt, &buf[..used]);
            let len = out.len();
            out.copy_from_slice(full.get(..len)?);
        }
    }
    Some(out)
}

fn verify_parsed(password: &str, parsed: &Parsed, policy: Policy) -> Verdict {
    let computed = compute(password.as_bytes(), parsed);
    let matches: bool = computed.as_ref().is_some_and(|out| out.ct_eq(&parsed.hash).into());
    match parsed.kdf {
        // The same function as the policy's: top up to the policy's iterations, match or not.
        Kdf::Pbkdf2 { prf: Prf::Sha256, iterations } if iterations < policy.iterations => {
            burn(password, policy.iterations - iterations)
        }
        Kdf::Pbkdf2 { prf: Prf::Sha256, .. } => {}
        // Any other function: a failure costs a full policy hash besides (module docs).
        _ if !matches => burn(password, policy.iterations),
        _ => {}
    }
    if computed.is_none() {
        tracing::warn!(
            format = parsed.scheme.name(),
            reason = "parameters refused by the key-derivation function",
            "stored password hash unusable: counted as a wrong password"
        );
    }
    if !matches {
        return Verdict::Mismatch;
    }
    let current = parsed.scheme == Scheme::Phc
        && matches!(parsed.kdf, Kdf::Pbkdf2 { prf: Prf::Sha256, iterations } if iterations >= policy.iterations)
        && parsed.salt.len() >= SALT_LEN
        && parsed.hash.len() == HASH_LEN;
    let needs_upgrade = !current && !truncated(password.as_bytes(), parsed);
    Verdict::Match { needs_upgrade }
}

/// The work of a verification for an identifier that matches no account: one full
/// current-policy hash, the result thrown away, and a second one when the typed text is not in
/// NFKC, exactly as [`verify`] does for a wrong password.
pub fn verify_dummy(password: &str, policy: Policy) -> Verdict {
    burn(password, policy.iterations);
    if let Cow::Owned(_) = normalize(password) {
        burn(password, policy.iterations);
    }
    Verdict::Mismatch
}

/// Spends `iterations` PBKDF2 iterations on nothing, in a way the optimiser cannot remove.
pub fn burn(password: &str, iterations: u32) {
    let mut out = [0u8; HASH_LEN];
    derive(black_box(password.as_bytes()), black_box(b"dummy-salt-16byt"), iterations, &mut out);
    black_box(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Policy = Policy { iterations: 1000 };

    #[test]
    fn cost_classes_name_what_a_failure_costs() {
        let salt = "c2FsdHNhbHRzYWx0c2FsdA";
        let out = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let policy = Policy { iterations: 600_000 };
        // The policy's own kind costs one policy hash: no class.
        assert_eq!(cost_class(&hash("x", FAST), policy), None);
        assert_eq!(cost_class(&format!("$pbkdf2-sha256$i=600000,l=32${salt}${out}"), policy), None);
        assert_eq!(cost_class("not a hash", policy), None);
        // Two blocks, or more iterations, or another function: a class of its own.
        assert_eq!(
            cost_class(&format!("$pbkdf2-sha256$i=1000,l=64${salt}${out}{out}"), policy).as_deref(),
            Some("pbkdf2-sha256 i=1000 l=64")
        );
        assert_eq!(
            cost_class(&format!("$pbkdf2-sha256$i=700000,l=32${salt}${out}"), policy).as_deref(),
            Some("pbkdf2-sha256 i=700000 l=32")
        );
        let bcrypt = "$2b$12$abcdefghijklmnopqrstuuAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(cost_class(bcrypt, policy).as_deref(), Some("bcrypt cost=12"));
        let argon = format!("$argon2id$v=19$m=65536,t=3,p=4${salt}${out}");
        assert_eq!(cost_class(&argon, policy).as_deref(), Some("argon2id v=19 m=65536 t=3 p=4"));
    }

    #[test]
    fn new_hashes_are_phc_and_verify() {
        let h = hash("correct horse", FAST);
        assert!(h.starts_with("$pbkdf2-sha256$i=1000,l=32$"), "{h}");
        let p = parse(&h).unwrap();
        assert_eq!((p.salt.len(), p.hash.len()), (16, 32));
        assert_eq!(verify("correct horse", &h, FAST), Verdict::Match { needs_upgrade: false });
        assert_eq!(verify("correct horsE", &h, FAST), Verdict::Mismatch);
        assert_ne!(hash("correct horse", FAST), h, "salts are random");
    }

    #[test]
    fn new_passwords_follow_the_policy() {
        assert_eq!(check_new("short", None), Err(Weak::TooShort));
        assert_eq!(check_new(&"x".repeat(1025), None), Err(Weak::TooLong));
        for common in ["password", "Password1", "qwerty123", " letmein ", "ＰＡＳＳＷＯＲＤ"]
        {
            assert_eq!(check_new(common, None), Err(Weak::Common), "{common}");
        }
        assert_eq!(
            check_new("pa\u{308}sswort-sehr-lang", Some("p\u{e4}sswort-sehr-lang")),
            Err(Weak::SameAsCurrent)
        );
        assert_eq!(check_new("correct horse battery staple", Some("other")), Ok(()));
        assert!(COMMON_PASSWORDS.lines().count() > 19_000);
        assert!(COMMON_PASSWORDS.lines().is_sorted(), "binary search needs the list sorted");
    }

    #[test]
    fn passwords_are_compared_after_nfkc() {
        let nfc = "p\u{e4}ssw\u{f6}rd-\u{3a9}mega";
        let nfd = "pa\u{308}sswo\u{308}rd-\u{3a9}mega";
        let h = hash(nfc, FAST);
        assert_eq!(verify(nfd, &h, FAST), Verdict::Match { needs_upgrade: false });
        assert_eq!(verify(nfc, &h, FAST), Verdict::Match { needs_upgrade: false });
        assert_eq!(verify(&hash(nfd, FAST), &h, FAST), Verdict::Mismatch);
        // A hash made elsewhere from the NFD text itself still verifies, and asks for an upgrade.
        let mut out = [0u8; HASH_LEN];
        derive(nfd.as_bytes(), b"0123456789abcdef", 1000, &mut out);
        let foreign = format!(
            "$pbkdf2-sha256$i=1000,l=32${}${}",
            STANDARD_NO_PAD.encode(b"0123456789abcdef"),
            STANDARD_NO_PAD.encode(out)
        );
        assert_eq!(verify(nfd, &foreign, FAST), Verdict::Match { needs_upgrade: true });
        assert_eq!(verify(nfc, &foreign, FAST), Verdict::Mismatch);
        assert!(matches!(normalize("plain ascii"), Cow::Borrowed(_)));
        assert_eq!(normalize("\u{ff21}"), "A");
    }

    /// Published vectors: passlib's own test suite (test_handlers_pbkdf2.py) and Django's
    /// (test_hashers.py, from the 10,000-iteration era).
    #[test]
    fn published_legacy_vectors_verify() {
        let cases = [
            (
                "password",
                "$pbkdf2-sha256$1212$4vjV83LKPjQzk31VI4E0Vw$hsYF68OiOUPdDZ1Fg.fJPeq1h/gXXY7acBp9/6c.tmQ",
                Scheme::Passlib,
            ),
            (
                "\u{399}\u{3c9}\u{3b1}\u{3bd}\u{3bd}\u{3b7}\u{3c2}",
                "$pbkdf2-sha256$1212$3SABFJGDtyhrQMVt1uABPw$WyaUoqCLgvz97s523nF4iuOqZNbp5Nt8do/cuaa7AiI",
                Scheme::Passlib,
            ),
            (
                "letmein",
                "pbkdf2_sha256$10000$seasalt$FQCNpiZpTb0zub+HBsH6TOwyRxJ19FwvjbweatNmK/Y=",
                Scheme::Django,
            ),
            (
                "l\u{e8}tmein",
                "pbkdf2_sha256$10000$seasalt$CWWFdHOWwPnki7HvkcqN9iA2T3KLW1cf2uZ5kvArtVY=",
                Scheme::Django,
            ),
        ];
        for (pw, stored, scheme) in cases {
            assert_eq!(parse(stored).unwrap().scheme, scheme);
            assert_eq!(
                verify(pw, stored, FAST),
                Verdict::Match { needs_upgrade: true },
                "{stored}"
            );
            assert_eq!(verify("wrong", stored, FAST), Verdict::Mismatch, "{stored}");
        }
    }

    #[test]
    fn below_policy_hashes_ask_for_upgrade() {
        let h = hash_with_salt("pw", &[7; 16], 500);
        assert_eq!(verify("pw", &h, FAST), Verdict::Match { needs_upgrade: true });
        let above = hash_with_salt("pw", &[7; 16], 2000);
        assert_eq!(verify("pw", &above, FAST), Verdict::Match { needs_upgrade: false });
    }

    #[test]
    fn unusable_strings_are_mismatches_not_panics() {
        for s in [
            "",
            "$",
            "$$$$",
            "plaintext",
            "$pbkdf2-sha256$",
            "$pbkdf2-sha256$i=0,l=32$AAAA$AAAA",
            "$pbkdf2-sha256$i=99999999999,l=32$AAAA$AAAA",
            "$pbkdf2-sha256$i=10000001$c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$pbkdf2-sha256$i=1000,l=32$!!!$AAAA",
            "$pbkdf2-sha256$i=1000,i=1000$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$pbkdf2-sha256$i=1000,l=16$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$pbkdf2-sha256$-5$c2FsdA$AAAA",
            "pbkdf2:sha256:abc$salt$00",
            "pbkdf2:sha256:1000$salt$zz",
            "pbkdf2:sha256:1000$salt",
            "pbkdf2_sha256$1000$salt$%%%",
            "pbkdf2_sha256$1000$$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "pbkdf2_sha1$1000$salt$AAAA",
            "pbkdf2:sha256:1000$salt$00$extra",
        ] {
            assert!(parse(s).is_err(), "{s:?} parsed");
            assert_eq!(verify("pw", s, FAST), Verdict::Mismatch, "{s:?}");
        }
    }

    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    /// An unusable stored string is one log line naming the format and the reason, never the
    /// hash or the password, even when the password is tried in two forms.
    #[test]
    fn an_unusable_hash_is_one_log_line() {
        let cases = [
            ("$2b$31$abcdefghijklmnopqrstuuAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "bcrypt", "cost"),
            (
                "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "argon2",
                "m",
            ),
            ("scrypt:4194304:8:1$salt$00", "werkzeug scrypt", "N"),
            ("md5$salt$0123", "unknown", "unrecognised"),
        ];
        for (stored, format, reason) in cases {
            let buf = Buf::default();
            let sub = tracing_subscriber::fmt().with_writer(buf.clone()).with_ansi(false).finish();
            let verdict = tracing::subscriber::with_default(sub, || {
                verify("pa\u{308}sswort-secret", stored, FAST)
            });
            assert_eq!(verdict, Verdict::Mismatch);
            let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(
                text.contains("WARN") && text.contains(format) && text.contains(reason),
                "{text}"
            );
            assert!(!text.contains(stored) && !text.contains("sswort"), "{text}");
        }
    }

    /// The caps hold at their edges: at the cap a hash parses, one above it is refused.
    #[test]
    fn work_factor_caps() {
        let salt = "c2FsdHNhbHRzYWx0c2FsdA";
        let out = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let at = [
            format!("$argon2id$v=19$m=262144,t=4,p=8${salt}${out}"),
            format!("$argon2id$v=19$m=65536,t=10,p=1${salt}${out}"),
            format!("$scrypt$ln=20,r=2,p=1${salt}${out}"),
            format!("$scrypt$ln=14,r=8,p=16${salt}${out}"),
            "$2b$14$abcdefghijklmnopqrstuuAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
            format!("$pbkdf2-sha512$1600000${salt}${out}{out}"),
            format!("$pbkdf2-sha256$10000000${salt}${out}"),
            format!("pbkdf2:sha1:7000000$salt${}", "00".repeat(20)),
            format!("$pbkdf2-sha256$i=5000000,l=64${salt}${out}{out}"),
        ];
        let above = [
            format!("$argon2id$v=19$m=262145,t=1,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=262144,t=5,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=65536,t=11,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=65536,t=1,p=9${salt}${out}"),
            format!("$scrypt$ln=21,r=1,p=1${salt}${out}"),
            format!("$scrypt$ln=20,r=2,p=2${salt}${out}"),
            "$2b$15$abcdefghijklmnopqrstuuAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
            format!("$pbkdf2-sha512$1600001${salt}${out}{out}"),
            format!("$pbkdf2-sha256$10000001${salt}${out}"),
            format!("pbkdf2:sha1:7000001$salt${}", "00".repeat(20)),
            // Two 32-byte blocks: twice the iterations' cost.
            format!("$pbkdf2-sha256$i=5000001,l=64${salt}${out}{out}"),
        ];
        for s in &at {
            assert!(parse(s).is_ok(), "{s}: {:?}", parse(s));
        }
        for s in &above {
            assert!(
                matches!(parse(s), Err(FormatError::Cost(_) | FormatError::Iterations)),
                "{s}: {:?}",
                parse(s)
            );
        }
    }
}
