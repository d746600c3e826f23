//! Checking a password against a stored string: in constant time, never panicking, and at no
//! less than one current-policy hash's cost (see the [module documentation](super)); and the
//! cost classes the failure floor ([`crate::failure_floor`]) keeps.

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use super::formats::claimed_format;
use super::*;

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
    let current = parsed.scheme == Scheme::PhcPbkdf2
        && matches!(parsed.kdf, Kdf::Pbkdf2 { prf: Prf::Sha256, iterations } if iterations >= policy.iterations)
        && parsed.salt.len() >= SALT_LEN
        && parsed.hash.len() == HASH_LEN;
    let needs_upgrade = !current && !truncated(password.as_bytes(), parsed);
    Verdict::Match { needs_upgrade }
}

/// The work of a verification for an identifier that matches no account: one full
/// current-policy hash, the result thrown away, and a second one when the typed text is not in
/// NFKC, exactly as [`verify()`] does for a wrong password.
pub fn verify_dummy(password: &str, policy: Policy) -> Verdict {
    burn(password, policy.iterations);
    if let Cow::Owned(_) = normalize(password) {
        burn(password, policy.iterations);
    }
    Verdict::Mismatch
}
