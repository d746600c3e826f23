//! The stored-hash formats this service reads, in one table ([`FORMATS`]) that drives
//! [`parse`], the names in logs and import reports ([`Scheme::name`]) and the format table of
//! `docs/passwords.md` ([`markdown_table`]; a test keeps the two equal).
//!
//! Every work factor has a cap, set per function so that a hash at its cap costs about a
//! second on one core (measured here: PBKDF2-SHA-256 at 10,000,000 iterations 0.73 s,
//! SHA-512 at 1,600,000 0.97 s, SHA-1 at 7,000,000 1.0 s, bcrypt 14 1.0 s, scrypt at 256 MiB
//! 0.70 s, Argon2 at m·t = 1 GiB 1.05 s), what a 1769 MB Lambda (one vCPU) can afford. A
//! string above its cap, or one that does not parse, is a [`FormatError`]. Fixed hash lengths
//! are enforced, so a truncated hash is refused rather than checked on fewer bytes (PBKDF2's
//! and scrypt's outputs are prefixes of longer ones). PHC strings of Argon2 and scrypt are read
//! with `password-hash`'s PHC parser.

use super::readers::*;

/// The formats a stored hash may have, named `<system><function>`: the system that writes it
/// (PHC for the PHC string format, MCF bcrypt for bcrypt's own) and the function it holds;
/// the [`Kdf`] of a [`Parsed`] hash says which algorithm and work factor. Each has its row in
/// [`FORMATS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `$pbkdf2-sha256$i=<n>,l=<len>$<b64 salt>$<b64 hash>` (ours), `$pbkdf2-sha512$i=…`
    /// (RustCrypto).
    PhcPbkdf2,
    /// passlib: `$pbkdf2-sha256$<n>$<ab64 salt>$<ab64 hash>`, `$pbkdf2-sha512$`, `$pbkdf2$`.
    PasslibPbkdf2,
    /// Werkzeug: `pbkdf2:sha256:<n>$<salt>$<hex>` (also `sha512`, `sha1`).
    WerkzeugPbkdf2,
    /// Werkzeug 3's default: `scrypt:<N>:<r>:<p>$<salt>$<hex>`.
    WerkzeugScrypt,
    /// Django's default: `pbkdf2_sha256$<n>$<salt>$<b64>`.
    DjangoPbkdf2Sha256,
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
    /// passlib: `$bcrypt-sha256$v=2,t=2b,r=<cost>$<salt>$<digest>` (and v1,
    /// `$bcrypt-sha256$2b,<cost>$...`).
    PasslibBcryptSha256,
    /// bcrypt's modular crypt format: `$2a$`, `$2b$`, `$2y$<cost>$<22 salt><31 hash>`.
    Bcrypt,
    /// PHC Argon2: `$argon2id$v=19$m=..,t=..,p=..$<b64 salt>$<b64 hash>` (also `$argon2i$`,
    /// `$argon2d$`).
    PhcArgon2,
    /// PHC scrypt: `$scrypt$ln=..,r=..,p=..$<b64 salt>$<b64 hash>` (passlib, RustCrypto).
    PhcScrypt,
}

impl Scheme {
    /// A short name for logs and reports (never the hash itself): its row's [`Format::name`].
    pub fn name(self) -> &'static str {
        FORMATS.iter().find(|f| f.scheme == self).map_or("unknown", |f| f.name)
    }
}

/// The function a format holds, for its cap in the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// PBKDF2 (`kdf.rs` for SHA-256, `pbkdf2` for SHA-512 and SHA-1).
    Pbkdf2,
    /// scrypt (`scrypt`).
    Scrypt,
    /// Argon2 (`argon2`).
    Argon2,
    /// bcrypt (`bcrypt`).
    Bcrypt,
}

/// `n` in decimal with a comma between groups of three digits, as the docs and reports print
/// counts: 600000 as `600,000`.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Function {
    /// The function's caps, in words, from the constants that enforce them.
    pub fn caps(self) -> String {
        let n = |v: u32| group_digits(u64::from(v));
        match self {
            Self::Pbkdf2 => format!(
                "PBKDF2: ≤ {} iterations (SHA-256), ≤ {} (SHA-512), ≤ {} (SHA-1), times the output's digest-sized blocks",
                n(MAX_ITERATIONS),
                n(MAX_ITERATIONS_SHA512),
                n(MAX_ITERATIONS_SHA1)
            ),
            Self::Scrypt => format!(
                "scrypt: N ≤ 2^{SCRYPT_MAX_LOG_N}, 128·N·r·p ≤ {} MiB",
                SCRYPT_MAX_BYTES >> 20
            ),
            Self::Argon2 => format!(
                "Argon2: m ≤ {} MiB, t ≤ {ARGON2_MAX_T}, p ≤ {ARGON2_MAX_P}, m·t ≤ {} GiB",
                ARGON2_MAX_M_KIB >> 10,
                ARGON2_MAX_M_T >> 20
            ),
            Self::Bcrypt => format!("bcrypt: cost ≤ {BCRYPT_MAX_COST}"),
        }
    }
}

/// One stored-hash format: its name, who writes it, what its strings start with, and its
/// reader.
pub struct Format {
    /// The scheme [`parse`] returns for it.
    pub scheme: Scheme,
    /// Its name in logs, import reports and `auth-admin` output.
    pub name: &'static str,
    /// The systems that write it.
    pub written_by: &'static str,
    /// Its stored form, for the docs.
    pub stored: &'static str,
    /// The function it holds.
    pub function: Function,
    /// What its strings start with. The first row with a matching prefix reads the string
    /// (so `$pbkdf2-sha256$i=`, PHC's, comes before passlib's `$pbkdf2-sha256$`).
    pub prefixes: &'static [&'static str],
    /// Reads a string that starts with `prefix` (one of [`Format::prefixes`]).
    read: fn(stored: &str, prefix: &str) -> Result<Parsed, FormatError>,
}

/// Every format [`parse`] reads, in the order prefixes are tried.
pub const FORMATS: &[Format] = &[
    Format {
        scheme: Scheme::PhcPbkdf2,
        name: "phc-pbkdf2",
        written_by: "this service; RustCrypto `pbkdf2`",
        stored: "`$pbkdf2-sha256$i=<n>,l=32$<b64 salt>$<b64 hash>`, `$pbkdf2-sha512$i=<n>,l=64$…`",
        function: Function::Pbkdf2,
        prefixes: &["$pbkdf2-sha256$i=", "$pbkdf2-sha512$i="],
        read: read_phc_pbkdf2,
    },
    Format {
        scheme: Scheme::PasslibPbkdf2,
        name: "passlib-pbkdf2",
        written_by: "passlib",
        stored: "`$pbkdf2-sha256$<n>$<ab64 salt>$<ab64 hash>`, `$pbkdf2-sha512$<n>$…`, `$pbkdf2$<n>$…` (SHA-1)",
        function: Function::Pbkdf2,
        prefixes: &["$pbkdf2-sha256$", "$pbkdf2-sha512$", "$pbkdf2$"],
        read: read_passlib_pbkdf2,
    },
    Format {
        scheme: Scheme::WerkzeugPbkdf2,
        name: "werkzeug-pbkdf2",
        written_by: "Werkzeug 2 (and 3 with `method=\"pbkdf2\"`)",
        stored: "`pbkdf2:sha256:<n>$<salt>$<hex>` (also `sha512`, `sha1`)",
        function: Function::Pbkdf2,
        prefixes: &["pbkdf2:sha256:", "pbkdf2:sha512:", "pbkdf2:sha1:"],
        read: read_werkzeug_pbkdf2,
    },
    Format {
        scheme: Scheme::WerkzeugScrypt,
        name: "werkzeug-scrypt",
        written_by: "Werkzeug 3 (Flask's `generate_password_hash` default)",
        stored: "`scrypt:32768:8:1$<salt>$<hex>`",
        function: Function::Scrypt,
        prefixes: &["scrypt:"],
        read: read_werkzeug_scrypt,
    },
    Format {
        scheme: Scheme::DjangoPbkdf2Sha256,
        name: "django-pbkdf2_sha256",
        written_by: "Django (default)",
        stored: "`pbkdf2_sha256$<n>$<salt>$<base64>`",
        function: Function::Pbkdf2,
        prefixes: &["pbkdf2_sha256$"],
        read: read_django_pbkdf2,
    },
    Format {
        scheme: Scheme::DjangoPbkdf2Sha1,
        name: "django-pbkdf2_sha1",
        written_by: "Django",
        stored: "`pbkdf2_sha1$<n>$<salt>$<base64>`",
        function: Function::Pbkdf2,
        prefixes: &["pbkdf2_sha1$"],
        read: read_django_pbkdf2,
    },
    Format {
        scheme: Scheme::DjangoArgon2,
        name: "django-argon2",
        written_by: "Django",
        stored: "`argon2$argon2id$v=19$m=…,t=…,p=…$<b64 salt>$<b64 hash>`",
        function: Function::Argon2,
        prefixes: &["argon2$"],
        read: read_django_argon2,
    },
    Format {
        scheme: Scheme::DjangoBcryptSha256,
        name: "django-bcrypt_sha256",
        written_by: "Django",
        stored: "`bcrypt_sha256$$2b$<cost>$…` (bcrypt of the hex SHA-256)",
        function: Function::Bcrypt,
        prefixes: &["bcrypt_sha256$"],
        read: read_django_bcrypt_sha256,
    },
    Format {
        scheme: Scheme::DjangoBcrypt,
        name: "django-bcrypt",
        written_by: "Django",
        stored: "`bcrypt$$2b$<cost>$…`",
        function: Function::Bcrypt,
        prefixes: &["bcrypt$"],
        read: read_django_bcrypt,
    },
    Format {
        scheme: Scheme::DjangoScrypt,
        name: "django-scrypt",
        written_by: "Django",
        stored: "`scrypt$<N>$<salt>$<r>$<p>$<base64>`",
        function: Function::Scrypt,
        prefixes: &["scrypt$"],
        read: read_django_scrypt,
    },
    Format {
        scheme: Scheme::PasslibBcryptSha256,
        name: "passlib-bcrypt_sha256",
        written_by: "passlib",
        stored: "`$bcrypt-sha256$v=2,t=2b,r=<cost>$<salt>$<digest>` (and v1, `$bcrypt-sha256$2b,<cost>$…`)",
        function: Function::Bcrypt,
        prefixes: &["$bcrypt-sha256$"],
        read: read_passlib_bcrypt_sha256,
    },
    Format {
        scheme: Scheme::Bcrypt,
        name: "bcrypt",
        written_by: "Supabase (GoTrue), Auth0 export, Devise (Rails), Laravel, `bcrypt` anywhere",
        stored: "`$2a$`, `$2b$`, `$2y$<cost>$<22 salt><31 hash>`",
        function: Function::Bcrypt,
        prefixes: &["$2a$", "$2b$", "$2y$"],
        read: read_bcrypt,
    },
    Format {
        scheme: Scheme::PhcArgon2,
        name: "phc-argon2",
        written_by: "argon2-cffi, Ory Kratos, passlib",
        stored: "`$argon2id$v=19$m=…,t=…,p=…$<b64 salt>$<b64 hash>` (also `$argon2i$`, `$argon2d$`)",
        function: Function::Argon2,
        prefixes: &["$argon2"],
        read: read_phc_argon2,
    },
    Format {
        scheme: Scheme::PhcScrypt,
        name: "phc-scrypt",
        written_by: "passlib, RustCrypto `scrypt`",
        stored: "`$scrypt$ln=…,r=…,p=…$<b64 salt>$<b64 hash>`",
        function: Function::Scrypt,
        prefixes: &["$scrypt$"],
        read: read_phc_scrypt,
    },
];

/// The first row of [`FORMATS`] one of whose prefixes `stored` starts with, and that prefix.
fn format_of(stored: &str) -> Option<(&'static Format, &'static str)> {
    FORMATS
        .iter()
        .find_map(|f| f.prefixes.iter().find(|p| stored.starts_with(**p)).map(|p| (f, *p)))
}

/// [`FORMATS`] as the Markdown table of `docs/passwords.md` (name, stored form, written by,
/// function and caps).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Format | Stored form | Written by | Function, caps |\n| --- | --- | --- | --- |\n",
    );
    for f in FORMATS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            f.name,
            f.stored,
            f.written_by,
            f.function.caps()
        ));
    }
    out
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

/// Parses a stored hash in any of the accepted formats. Work factors above their caps are
/// errors ([`FormatError::Cost`], [`FormatError::Iterations`]): no stored string can make a
/// verification cost more than the caps allow.
pub fn parse(stored: &str) -> Result<Parsed, FormatError> {
    if stored.len() > 2048 {
        return Err(FormatError::Unrecognised);
    }
    let Some((format, prefix)) = format_of(stored) else {
        return Err(FormatError::Unrecognised);
    };
    let parsed = (format.read)(stored, prefix)?;
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
            Scheme::PhcPbkdf2 | Scheme::PhcArgon2 | Scheme::DjangoArgon2,
        ) => None,
        (Kdf::Pbkdf2 { prf, .. }, _) => Some(prf.digest_len()),
        (Kdf::Scrypt { .. }, Scheme::PhcScrypt) if parsed.hash.len() == 64 => None,
        (Kdf::Scrypt { .. }, Scheme::PhcScrypt) => Some(32),
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

/// The format name a stored string claims, for the log line of an unusable one: the name of
/// the row whose prefix it starts with, or "unknown" (never the hash itself).
pub(crate) fn claimed_format(stored: &str) -> &'static str {
    match format_of(stored) {
        Some((f, _)) => f.name,
        None if stored.starts_with("$2x$") => "bcrypt $2x$ (unsupported)",
        None => "unknown",
    }
}
