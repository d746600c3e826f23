//! Password hashing and verification: PBKDF2-HMAC-SHA256 in PHC form for new hashes, and the
//! PBKDF2 formats of Werkzeug, Django and passlib so an existing users table moves over
//! unchanged and is upgraded at the next login.
//!
//! Verification never panics on a stored string, compares in constant time, and always costs
//! at least one current-policy hash, so the time of a failure does not tell an unknown user
//! from a wrong password or a cheap legacy hash.

use std::borrow::Cow;
use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use subtle::ConstantTimeEq;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Iteration counts above this are refused as a failed verification (a stored string cannot
/// make a login take minutes).
pub const MAX_ITERATIONS: u32 = 10_000_000;
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

/// Why a new password was refused (API.md: 400 `weak_password`, the detail naming the rule).
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

/// Checks a new password against the policy (API.md, Passwords): 8 to 1024 characters, not
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

/// The formats a stored hash may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `$pbkdf2-sha256$i=<n>,l=<len>$<b64 salt>$<b64 hash>` (ours, PHC string format).
    Phc,
    /// Werkzeug: `pbkdf2:sha256:<n>$<salt>$<hex>`.
    Werkzeug,
    /// Django: `pbkdf2_sha256$<n>$<salt>$<b64>`.
    Django,
    /// passlib: `$pbkdf2-sha256$<n>$<ab64 salt>$<ab64 hash>`.
    Passlib,
}

/// A stored hash taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Which format it was in.
    pub scheme: Scheme,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Salt bytes as fed to PBKDF2.
    pub salt: Vec<u8>,
    /// The expected derived key.
    pub hash: Vec<u8>,
}

/// Why a stored string could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Not one of the four formats.
    #[error("unrecognised password hash format")]
    Unrecognised,
    /// A recognised format with a bad field.
    #[error("malformed {0} field")]
    Field(&'static str),
    /// More iterations than [`MAX_ITERATIONS`] (or zero).
    #[error("iteration count out of range")]
    Iterations,
}

/// passlib's "adapted base64": standard alphabet with `.` for `+`, no padding.
fn ab64_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(s.replace('.', "+")).ok()
}

fn iterations(s: &str) -> Result<u32, FormatError> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FormatError::Iterations);
    }
    match s.parse::<u32>() {
        Ok(n) if (1..=MAX_ITERATIONS).contains(&n) => Ok(n),
        _ => Err(FormatError::Iterations),
    }
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

/// Parses a stored hash in any of the accepted formats.
pub fn parse(stored: &str) -> Result<Parsed, FormatError> {
    if stored.len() > 2048 {
        return Err(FormatError::Unrecognised);
    }
    let parsed = if let Some(rest) = stored.strip_prefix("$pbkdf2-sha256$") {
        let (params, salt, hash) = three_fields(rest)?;
        if params.starts_with("i=") {
            let mut n = None;
            let mut len = None;
            for kv in params.split(',') {
                match kv.split_once('=') {
                    Some(("i", v)) if n.is_none() => n = Some(iterations(v)?),
                    Some(("l", v)) if len.is_none() => {
                        len = Some(v.parse::<usize>().map_err(|_| FormatError::Field("l"))?)
                    }
                    _ => return Err(FormatError::Field("parameters")),
                }
            }
            let salt = STANDARD_NO_PAD.decode(salt).map_err(|_| FormatError::Field("salt"))?;
            let hash = STANDARD_NO_PAD.decode(hash).map_err(|_| FormatError::Field("hash"))?;
            if len.is_some_and(|l| l != hash.len()) {
                return Err(FormatError::Field("l"));
            }
            Parsed {
                scheme: Scheme::Phc,
                iterations: n.ok_or(FormatError::Field("i"))?,
                salt,
                hash,
            }
        } else {
            Parsed {
                scheme: Scheme::Passlib,
                iterations: iterations(params)?,
                salt: ab64_decode(salt).ok_or(FormatError::Field("salt"))?,
                hash: ab64_decode(hash).ok_or(FormatError::Field("hash"))?,
            }
        }
    } else if let Some(rest) = stored.strip_prefix("pbkdf2:sha256:") {
        let (n, salt, hash) = three_fields(rest)?;
        Parsed {
            scheme: Scheme::Werkzeug,
            iterations: iterations(n)?,
            salt: salt.as_bytes().to_vec(),
            hash: hex::decode(hash).map_err(|_| FormatError::Field("hash"))?,
        }
    } else if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        let (n, salt, hash) = three_fields(rest)?;
        Parsed {
            scheme: Scheme::Django,
            iterations: iterations(n)?,
            salt: salt.as_bytes().to_vec(),
            hash: STANDARD.decode(hash).map_err(|_| FormatError::Field("hash"))?,
        }
    } else {
        return Err(FormatError::Unrecognised);
    };
    check_lengths(&parsed.salt, &parsed.hash)?;
    Ok(parsed)
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

/// The result of checking a password against a stored string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password matches; `needs_upgrade` when the stored string is a legacy format or below
    /// the current policy and should be replaced by [`hash`].
    Match {
        /// Replace the stored hash at this login.
        needs_upgrade: bool,
    },
    /// Wrong password, or a stored string that cannot be used.
    Mismatch,
}

/// Verifies `password` against `stored`. Costs at least one current-policy hash whatever the
/// stored string holds: a cheaper legacy hash is topped up with dummy iterations, an unusable
/// one is replaced by a full dummy hash.
///
/// The password's NFKC form (see [`normalize`]) is tried first. When the typed text is not
/// already in NFKC, the text as typed is tried too, because hashes made elsewhere (or here,
/// before passwords were normalised) may be of un-normalised text; a match that way asks for
/// an upgrade. That second try depends only on the typed text, never on the account, and
/// [`verify_dummy`] makes it too, so it tells nothing about who exists.
pub fn verify(password: &str, stored: &str, policy: Policy) -> Verdict {
    let normalized = normalize(password);
    let first = verify_form(&normalized, stored, policy);
    match (first, &normalized) {
        (Verdict::Match { .. }, _) | (Verdict::Mismatch, Cow::Borrowed(_)) => first,
        (Verdict::Mismatch, Cow::Owned(_)) => match verify_form(password, stored, policy) {
            Verdict::Match { .. } => Verdict::Match { needs_upgrade: true },
            Verdict::Mismatch => Verdict::Mismatch,
        },
    }
}

fn verify_form(password: &str, stored: &str, policy: Policy) -> Verdict {
    let Ok(parsed) = parse(stored) else {
        burn(password, policy.iterations);
        return Verdict::Mismatch;
    };
    let mut out = vec![0u8; parsed.hash.len()];
    derive(password.as_bytes(), &parsed.salt, parsed.iterations, &mut out);
    let matches: bool = out.ct_eq(&parsed.hash).into();
    if parsed.iterations < policy.iterations {
        burn(password, policy.iterations - parsed.iterations);
    }
    if !matches {
        return Verdict::Mismatch;
    }
    let needs_upgrade = parsed.scheme != Scheme::Phc
        || parsed.iterations < policy.iterations
        || parsed.salt.len() < SALT_LEN
        || parsed.hash.len() != HASH_LEN;
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
fn burn(password: &str, iterations: u32) {
    let mut out = [0u8; HASH_LEN];
    derive(black_box(password.as_bytes()), black_box(b"dummy-salt-16byt"), iterations, &mut out);
    black_box(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Policy = Policy { iterations: 1000 };

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
}
