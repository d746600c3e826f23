//! The readers of [`super::formats::FORMATS`]' rows: each takes a stored string and the prefix
//! it matched, and returns the [`Parsed`] hash or why it cannot be used.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use super::formats::*;

/// passlib's "adapted base64": standard alphabet with `.` for `+`, no padding.
pub(super) fn ab64_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(s.replace('.', "+")).ok()
}

pub(super) fn iterations(s: &str, prf: Prf) -> Result<u32, FormatError> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FormatError::Iterations);
    }
    match s.parse::<u32>() {
        Ok(n) if (1..=prf.max_iterations()).contains(&n) => Ok(n),
        _ => Err(FormatError::Iterations),
    }
}

/// A small decimal field (work factors): digits only, at most 10 of them.
pub(super) fn number(s: &str, field: &'static str) -> Result<u64, FormatError> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FormatError::Field(field));
    }
    s.parse::<u64>().map_err(|_| FormatError::Field(field))
}

pub(super) fn check_lengths(salt: &[u8], hash: &[u8]) -> Result<(), FormatError> {
    if salt.is_empty() || salt.len() > 1024 {
        return Err(FormatError::Field("salt"));
    }
    if !(16..=64).contains(&hash.len()) {
        return Err(FormatError::Field("hash"));
    }
    Ok(())
}

/// The three `$`-separated fields every format ends with (parameters, salt, hash).
pub(super) fn three_fields(rest: &str) -> Result<(&str, &str, &str), FormatError> {
    let mut parts = rest.split('$');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c), None) => Ok((a, b, c)),
        _ => Err(FormatError::Unrecognised),
    }
}

/// Checks scrypt's parameters against the caps; N = `n` must be a power of two.
pub(super) fn scrypt_kdf(n: u64, r: u64, p: u64) -> Result<Kdf, FormatError> {
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

/// The PRF a PBKDF2 format's prefix names (`sha256`, `sha512`; SHA-1 otherwise).
pub(super) fn prf_named(prefix: &str) -> Prf {
    if prefix.contains("sha256") {
        Prf::Sha256
    } else if prefix.contains("sha512") {
        Prf::Sha512
    } else {
        Prf::Sha1
    }
}

/// `$pbkdf2-<prf>$i=<n>[,l=<len>]$<b64 salt>$<b64 hash>`, standard base64 without padding
/// (the PHC string format). Its prefixes end in `i=`, which belongs to the parameters.
pub(super) fn read_phc_pbkdf2(stored: &str, prefix: &str) -> Result<Parsed, FormatError> {
    let prf = prf_named(prefix);
    let (params, salt, hash) = three_fields(&stored[prefix.len() - "i=".len()..])?;
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
    Ok(Parsed { scheme: Scheme::PhcPbkdf2, kdf: Kdf::Pbkdf2 { prf, iterations }, salt, hash })
}

/// passlib's `$pbkdf2-<prf>$<n>$<ab64 salt>$<ab64 hash>` (`$pbkdf2$` for SHA-1).
pub(super) fn read_passlib_pbkdf2(stored: &str, prefix: &str) -> Result<Parsed, FormatError> {
    let prf = prf_named(prefix);
    let (n, salt, hash) = three_fields(&stored[prefix.len()..])?;
    Ok(Parsed {
        scheme: Scheme::PasslibPbkdf2,
        kdf: Kdf::Pbkdf2 { prf, iterations: iterations(n, prf)? },
        salt: ab64_decode(salt).ok_or(FormatError::Field("salt"))?,
        hash: ab64_decode(hash).ok_or(FormatError::Field("hash"))?,
    })
}

/// `<prefix><n>$<salt>$<hash>`: Werkzeug's (hex hash) and Django's (base64 hash) PBKDF2; the
/// salt's text is the salt.
pub(super) fn read_pbkdf2_text_salt(
    stored: &str,
    prefix: &str,
    scheme: Scheme,
    decode: fn(&str) -> Option<Vec<u8>>,
) -> Result<Parsed, FormatError> {
    let prf = prf_named(prefix);
    let (n, salt, hash) = three_fields(&stored[prefix.len()..])?;
    Ok(Parsed {
        scheme,
        kdf: Kdf::Pbkdf2 { prf, iterations: iterations(n, prf)? },
        salt: salt.as_bytes().to_vec(),
        hash: decode(hash).ok_or(FormatError::Field("hash"))?,
    })
}

pub(super) fn read_werkzeug_pbkdf2(stored: &str, prefix: &str) -> Result<Parsed, FormatError> {
    read_pbkdf2_text_salt(stored, prefix, Scheme::WerkzeugPbkdf2, |s| hex::decode(s).ok())
}

pub(super) fn read_django_pbkdf2(stored: &str, prefix: &str) -> Result<Parsed, FormatError> {
    let scheme = if prf_named(prefix) == Prf::Sha1 {
        Scheme::DjangoPbkdf2Sha1
    } else {
        Scheme::DjangoPbkdf2Sha256
    };
    read_pbkdf2_text_salt(stored, prefix, scheme, |s| STANDARD.decode(s).ok())
}

/// Werkzeug: `scrypt:<N>:<r>:<p>$<salt>$<hex>` (the salt's text is the salt).
pub(super) fn read_werkzeug_scrypt(stored: &str, prefix: &str) -> Result<Parsed, FormatError> {
    let (params, salt, hash) = three_fields(&stored[prefix.len()..])?;
    let mut it = params.split(':');
    let (Some(n), Some(r), Some(p), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(FormatError::Field("parameters"));
    };
    Ok(Parsed {
        scheme: Scheme::WerkzeugScrypt,
        kdf: scrypt_kdf(number(n, "N")?, number(r, "r")?, number(p, "p")?)?,
        salt: salt.as_bytes().to_vec(),
        hash: hex::decode(hash).map_err(|_| FormatError::Field("hash"))?,
    })
}

/// Django: `scrypt$<N>$<salt>$<r>$<p>$<b64>`.
pub(super) fn read_django_scrypt(stored: &str, prefix: &str) -> Result<Parsed, FormatError> {
    let f: Vec<&str> = stored[prefix.len()..].splitn(6, '$').collect();
    let [n, salt, r, p, hash] = f[..] else { return Err(FormatError::Unrecognised) };
    if hash.contains('$') {
        return Err(FormatError::Unrecognised);
    }
    Ok(Parsed {
        scheme: Scheme::DjangoScrypt,
        kdf: scrypt_kdf(number(n, "N")?, number(r, "r")?, number(p, "p")?)?,
        salt: salt.as_bytes().to_vec(),
        hash: STANDARD.decode(hash).map_err(|_| FormatError::Field("hash"))?,
    })
}

pub(super) fn read_bcrypt(stored: &str, _: &str) -> Result<Parsed, FormatError> {
    parse_bcrypt(stored, Scheme::Bcrypt, Prehash::None)
}

pub(super) fn read_django_bcrypt_sha256(stored: &str, prefix: &str) -> Result<Parsed, FormatError> {
    parse_bcrypt(&stored[prefix.len()..], Scheme::DjangoBcryptSha256, Prehash::Sha256Hex)
}

pub(super) fn read_django_bcrypt(stored: &str, prefix: &str) -> Result<Parsed, FormatError> {
    parse_bcrypt(&stored[prefix.len()..], Scheme::DjangoBcrypt, Prehash::None)
}

/// Django: `argon2$` before a PHC Argon2 string without its leading `$`.
pub(super) fn read_django_argon2(stored: &str, prefix: &str) -> Result<Parsed, FormatError> {
    let rest = &stored[prefix.len()..];
    if !rest.starts_with("argon2") {
        return Err(FormatError::Unrecognised);
    }
    parse_phc_memory_hard(&format!("${rest}"), Scheme::DjangoArgon2)
}

pub(super) fn read_phc_argon2(stored: &str, _: &str) -> Result<Parsed, FormatError> {
    parse_phc_memory_hard(stored, Scheme::PhcArgon2)
}

pub(super) fn read_phc_scrypt(stored: &str, _: &str) -> Result<Parsed, FormatError> {
    parse_phc_memory_hard(stored, Scheme::PhcScrypt)
}

/// bcrypt's base64 (`./A-Za-z0-9`, no padding); unused trailing bits are ignored, as bcrypt
/// implementations do.
pub(super) fn bcrypt_b64(s: &str, len: usize, field: &'static str) -> Result<Vec<u8>, FormatError> {
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

pub(super) fn bcrypt_cost(s: &str) -> Result<u32, FormatError> {
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
pub(super) fn parse_bcrypt(
    s: &str,
    scheme: Scheme,
    prehash: Prehash,
) -> Result<Parsed, FormatError> {
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
pub(super) fn read_passlib_bcrypt_sha256(
    stored: &str,
    prefix: &str,
) -> Result<Parsed, FormatError> {
    let (params, salt_text, digest) = three_fields(&stored[prefix.len()..])?;
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
pub(super) fn parse_phc_memory_hard(s: &str, scheme: Scheme) -> Result<Parsed, FormatError> {
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
