//! Passkeys: WebAuthn discoverable credentials with user verification (W3C Web Authentication
//! Level 3), registered to an account and used to sign in without a username or password.
//!
//! Verification is the `webauthn-rs` relying-party library's (kanidm's, reviewed; pure Rust
//! since 0.6, its cryptography RustCrypto's, so the arm64 build needs no OpenSSL): it parses
//! the CBOR attestation and authenticator data and the COSE keys, checks the origin, RP ID hash,
//! challenge, user verification flag, signature and counter. This module holds what the library
//! leaves to its caller: the configuration ([`RelyingPartyConfig`]), the stateless login
//! challenge ([`challenge`]), strict checks of the JSON a client sends ([`response`]) and the SQL
//! ([`store`]).
//!
//! - A passkey's user handle is the account id (16 random bytes, no personal data).
//! - Registration asks for a discoverable credential (`residentKey: "required"`) with user
//!   verification required, excludes the account's passkeys, and keeps its ceremony state in
//!   PostgreSQL for [`REGISTRATION_TTL_SECONDS`], bound to the account, single use.
//! - Login options carry a challenge signed with the data key that names its expiry: the call
//!   writes nothing. An answer records its challenge (by SHA-256) until that expiry.
//! - Every passkey sign-in verified the user, so it is two factors on its own: `amr`
//!   [`AMR_PASSKEY`]. A signature counter that does not move forward (when either side is
//!   nonzero) is refused and logged as `passkey_clone_suspected`.
//!
//! # What each operation locks (why two of them cannot both win)
//! - **Registration**: the answer deletes its challenge's row (`DELETE ... RETURNING`): of two
//!   answers to one challenge, the second finds no row (400 `invalid_passkey`). A credential id
//!   is unique across every account (a unique index): of two registrations of one credential,
//!   the second's insert finds the first's row (400 `invalid_passkey`).
//! - **Login**: the used-challenge insert (`ON CONFLICT DO NOTHING`, primary key): of two
//!   answers to one challenge, the second waits for the first's commit and then conflicts
//!   (401). Then the account's attempt lock (the advisory lock of
//!   [`crate::throttle::lock_account`], as a password login and a second step take it), its row
//!   `FOR SHARE`, then the passkey's row `FOR UPDATE`: two sign-ins of one account run one after
//!   the other (each updates the account's row: without the attempt lock, two `FOR SHARE`
//!   holders would deadlock there), and the counter is checked and advanced under the passkey's
//!   lock, so two assertions never both pass with one counter value.
//! - **Registration's answer** counts the account's passkeys and inserts under the attempt lock,
//!   so the limit of [`MAX_PASSKEYS`] holds against answers sent at once.
//! - **Removal** deletes the passkey's row: a login holding its lock finishes first (its session
//!   stands, as a password login's does when the password changes later); a login after it finds
//!   no passkey (401). Deleting an account (which locks its row, then cascades to the passkeys)
//!   takes the same order as a login: account, then passkey.

pub mod challenge;
pub mod response;
pub mod store;

use url::Url;
use webauthn_rs::prelude::{Webauthn, WebauthnBuilder};

use crate::config::{ConfigError, Env};

pub use webauthn_rs;

/// `amr` (RFC 8176 §2) of a passkey sign-in: a hardware-bound key (`hwk`), the user verified
/// by the authenticator (`user`), so two factors (`mfa`).
pub const AMR_PASSKEY: &[&str] = &["hwk", "user", "mfa"];
/// How long a registration's challenge can be answered, in seconds.
pub const REGISTRATION_TTL_SECONDS: u64 = 300;
/// How long a login challenge can be answered, in seconds.
pub const LOGIN_TTL_SECONDS: u64 = 300;
/// The most passkeys one account may hold.
pub const MAX_PASSKEYS: i64 = 25;
/// The credential id lengths taken (WebAuthn §7.1 step 25: at most 1023 bytes; 16 at the
/// least, the probability the specification asks of an id).
pub const CREDENTIAL_ID_BYTES: std::ops::RangeInclusive<usize> = 16..=1023;
/// The longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// WEBAUTHN_RP_ID, WEBAUTHN_ORIGINS and APP_NAME: who the relying party is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingPartyConfig {
    /// The RP ID: the web app's registrable domain (`example.com`), or `localhost`.
    pub rp_id: String,
    /// The origins a ceremony may come from, each `https://` (or `http://localhost`) on the RP
    /// ID or one of its subdomains.
    pub origins: Vec<Url>,
    /// The name an authenticator shows.
    pub rp_name: String,
}

impl RelyingPartyConfig {
    /// Reads WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS (comma-separated), both required, and APP_NAME.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable: unset, an RP ID that is not a lower-case domain name,
    /// an origin that is not `scheme://host[:port]`, not https (but on localhost), or whose host
    /// is not the RP ID or below it.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let rp_name = crate::accounts::AccountConfig::from_env(env)?.app_name;
        let rp_id = env.optional("WEBAUTHN_RP_ID")?.ok_or_else(|| {
            ConfigError::new(
                "WEBAUTHN_RP_ID",
                "is not set (the web app's domain, e.g. example.com)",
            )
        })?;
        let origins = env.optional("WEBAUTHN_ORIGINS")?.ok_or_else(|| {
            ConfigError::new(
                "WEBAUTHN_ORIGINS",
                "is not set (the web app's origins, e.g. https://app.example.com)",
            )
        })?;
        Self::new(&rp_id, &origins, rp_name)
    }

    /// Checks and builds the configuration from an RP ID and a comma-separated origin list.
    ///
    /// # Errors
    /// As [`RelyingPartyConfig::from_env`].
    pub fn new(rp_id: &str, origins: &str, rp_name: String) -> Result<Self, ConfigError> {
        let rp_id = rp_id.trim();
        let domain_like = !rp_id.is_empty()
            && rp_id.len() <= 253
            && rp_id.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
            && !rp_id.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
            // A single label (a top-level domain, which browsers refuse as an RP ID) only as
            // localhost.
            && (rp_id.contains('.') || rp_id == "localhost");
        if !domain_like {
            return Err(ConfigError::new(
                "WEBAUTHN_RP_ID",
                format!(
                    "must be a lower-case domain name (no scheme, port or path), got {rp_id:?}"
                ),
            ));
        }
        let mut parsed = Vec::new();
        for origin in origins.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            parsed.push(check_origin(rp_id, origin)?);
        }
        if parsed.is_empty() {
            return Err(ConfigError::new("WEBAUTHN_ORIGINS", "names no origin"));
        }
        Ok(Self { rp_id: rp_id.to_owned(), origins: parsed, rp_name })
    }

    /// The library's relying party for this configuration.
    ///
    /// # Errors
    /// [`ConfigError`] on WEBAUTHN_ORIGINS when the library refuses it (it should not, once
    /// [`RelyingPartyConfig::new`] has passed it).
    pub fn relying_party(&self) -> Result<Webauthn, ConfigError> {
        let refused =
            |_| ConfigError::new("WEBAUTHN_ORIGINS", "is refused by the WebAuthn library");
        let mut builder = WebauthnBuilder::new(&self.rp_id, &self.origins[0])
            .map_err(refused)?
            .rp_name(&self.rp_name)
            .timeout(std::time::Duration::from_secs(REGISTRATION_TTL_SECONDS));
        for origin in &self.origins[1..] {
            builder = builder.append_allowed_origin(origin);
        }
        builder.build().map_err(refused)
    }
}

/// One origin of WEBAUTHN_ORIGINS, checked against the RP ID (WebAuthn §5.1.4.1 step 8: the RP
/// ID is the origin's effective domain or a registrable suffix of it).
fn check_origin(rp_id: &str, origin: &str) -> Result<Url, ConfigError> {
    let bad = |why: String| ConfigError::new("WEBAUTHN_ORIGINS", why);
    let url = Url::parse(origin).map_err(|e| bad(format!("{origin:?} is not a URL ({e})")))?;
    let host = url.host_str().unwrap_or("");
    if url.path() != "/" && !url.path().is_empty()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
        || origin.trim_end_matches('/').len() != url.origin().ascii_serialization().len()
    {
        return Err(bad(format!(
            "{origin:?} must be an origin: scheme://host[:port], nothing else"
        )));
    }
    let local = host == "localhost";
    if url.scheme() != "https" && !(url.scheme() == "http" && local) {
        return Err(bad(format!("{origin:?} must be https (http only on localhost)")));
    }
    if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
        return Err(bad(format!(
            "{origin:?} does not belong to WEBAUTHN_RP_ID {rp_id:?}: its host must be {rp_id} or end in .{rp_id}"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rp: &str, origins: &str) -> Result<RelyingPartyConfig, ConfigError> {
        RelyingPartyConfig::new(rp, origins, "Test".into())
    }

    #[test]
    fn origins_on_the_rp_id_or_below_it_are_taken() {
        let c = cfg("example.com", "https://example.com, https://app.example.com:8443").unwrap();
        assert_eq!(c.origins.len(), 2);
        assert!(c.relying_party().is_ok());
        let local = cfg("localhost", "http://localhost:3000").unwrap();
        assert!(local.relying_party().is_ok());
    }

    #[test]
    fn an_origin_outside_the_rp_id_or_not_an_origin_stops_the_start_up() {
        for (rp, origins, var) in [
            ("example.com", "https://evil.com", "WEBAUTHN_ORIGINS"),
            ("example.com", "https://notexample.com", "WEBAUTHN_ORIGINS"),
            ("example.com", "https://example.com.evil.net", "WEBAUTHN_ORIGINS"),
            ("example.com", "http://example.com", "WEBAUTHN_ORIGINS"),
            ("example.com", "https://example.com/app", "WEBAUTHN_ORIGINS"),
            ("example.com", "https://example.com?x=1", "WEBAUTHN_ORIGINS"),
            ("example.com", "example.com", "WEBAUTHN_ORIGINS"),
            ("example.com", " , ", "WEBAUTHN_ORIGINS"),
            ("app.example.com", "https://example.com", "WEBAUTHN_ORIGINS"),
            ("https://example.com", "https://example.com", "WEBAUTHN_RP_ID"),
            ("Example.com", "https://example.com", "WEBAUTHN_RP_ID"),
            ("example.com:443", "https://example.com", "WEBAUTHN_RP_ID"),
            ("127.0.0.1", "http://127.0.0.1:3000", "WEBAUTHN_RP_ID"),
            ("", "https://example.com", "WEBAUTHN_RP_ID"),
            ("com", "https://example.com", "WEBAUTHN_RP_ID"),
        ] {
            let e = cfg(rp, origins).unwrap_err();
            assert!(e.to_string().contains(var), "{rp} {origins}: {e}");
        }
    }

    #[test]
    fn both_variables_are_required() {
        let env = |pairs: &[(&str, &str)]| Env::from_pairs(pairs.iter().copied());
        let e = RelyingPartyConfig::from_env(&env(&[])).unwrap_err();
        assert!(e.to_string().contains("WEBAUTHN_RP_ID"), "{e}");
        let e =
            RelyingPartyConfig::from_env(&env(&[("WEBAUTHN_RP_ID", "example.com")])).unwrap_err();
        assert!(e.to_string().contains("WEBAUTHN_ORIGINS"), "{e}");
    }
}
