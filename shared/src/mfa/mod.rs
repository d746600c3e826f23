//! Second factors: TOTP (RFC 6238) with recovery codes, the second step of a login, and the
//! authentication methods each token carries (`amr`, RFC 8176).
//!
//! - [`totp`]: codes, secrets and otpauth URIs; [`sealed`]: the secret at rest (AES-256-GCM
//!   under the data key); [`recovery`]: the ten single-use codes; [`store`]: every SQL
//!   statement.
//! - A TOTP code is taken for the previous, current and next 30 s step, and a step once used is
//!   never taken again for the account (`last_step`). A wrong code counts in the account's
//!   login throttle (the same counter and 429 as a wrong password) and in a daily count: 10
//!   within 24 hours lock the second step for the rest of those 24 hours, until an operator's
//!   `mfa-reset` or a recovery code.
//! - A stored secret that does not open (another key version no longer readable, a flipped
//!   bit) fails closed: the code is refused as a wrong one would be, not counted, with one
//!   error log line naming the account.
//!
//! # What each operation locks (why two of them cannot both win)
//! Order, always: the account's attempt lock (the advisory lock of
//! [`crate::throttle::lock_account`]), then the account's row, then the mfa_token's row, then
//! the factor's or the recovery codes' rows. A password change takes the attempt lock and then
//! the row (`/password`), or the row alone (a reset, the admin), and deletes the account's
//! mfa_tokens after it: the same order, so no deadlock.
//! - **The second step** (`/login/mfa`): attempt lock, account row `FOR SHARE`, token row
//!   `FOR UPDATE` (a dead or used one is refused), factor row `FOR UPDATE` (or the unused
//!   recovery codes' rows), then in the same transaction the used step (or code) is recorded,
//!   the token deleted and the session opened. Two presentations of one code or one token run
//!   one after the other: the second finds the token gone (401) or, with another token, the
//!   step used (400). A password change racing it either commits first (the token is gone:
//!   401) or waits for the step's commit and then ends the session the step opened.
//! - **Verify** of a new factor: the pending factor's row `FOR UPDATE`, then it replaces the
//!   active one, the recovery codes are replaced and the user's other sessions end, in one
//!   transaction. **Disable** and **new recovery codes** lock the active factor's row (or the
//!   codes) the same way to check their code: a verify racing a disable runs after it or
//!   before it, never interleaved.

pub mod check;
pub mod recovery;
pub mod sealed;
pub mod store;
pub mod totp;

use crate::config::{ConfigError, Env};

/// Wrong codes after which an mfa_token is dead.
pub const MAX_TOKEN_FAILURES: i32 = 5;
/// Wrong codes within [`DAILY_WINDOW_SECONDS`] that lock the account's second step.
pub const DAILY_MAX_FAILURES: i32 = 10;
/// The window of [`DAILY_MAX_FAILURES`]: 24 hours.
pub const DAILY_WINDOW_SECONDS: u64 = 86_400;

/// `amr` (RFC 8176 §2) of a password login.
pub const AMR_PASSWORD: &[&str] = &["pwd"];
/// `amr` of a password and a one-time code (TOTP or recovery code).
pub const AMR_PASSWORD_AND_OTP: &[&str] = &["pwd", "otp", "mfa"];
/// The `amr` value that says two factors were used.
pub const MFA: &str = "mfa";

/// MFA_POLICY: whether every account must have a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// A second factor is the user's choice (the default).
    #[default]
    Optional,
    /// A password login of an account without one answers `mfa_enrollment_required`.
    Required,
}

/// MFA_POLICY and MFA_TOKEN_TTL_SECONDS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaConfig {
    /// MFA_POLICY.
    pub policy: Policy,
    /// How long an mfa_token lives, in seconds (60 to 3600; default 300).
    pub token_ttl_seconds: u64,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self { policy: Policy::Optional, token_ttl_seconds: 300 }
    }
}

impl MfaConfig {
    /// Reads MFA_POLICY (`optional` or `required`) and MFA_TOKEN_TTL_SECONDS (60 to 3600).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable for any other value.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let policy = match env.optional("MFA_POLICY")?.as_deref() {
            None | Some("optional") => Policy::Optional,
            Some("required") => Policy::Required,
            Some(other) => {
                return Err(ConfigError::new(
                    "MFA_POLICY",
                    format!("must be optional or required, got {other:?}"),
                ));
            }
        };
        let token_ttl_seconds = env.integer("MFA_TOKEN_TTL_SECONDS", 300, 60, 3600)?;
        Ok(Self { policy, token_ttl_seconds })
    }
}

/// Whether `amr` (a token's, or a session's) says two factors were used.
pub fn has_mfa<S: AsRef<str>>(amr: &[S]) -> bool {
    amr.iter().any(|m| m.as_ref() == MFA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_and_token_life_are_read_and_bad_values_named() {
        let env = |pairs: &[(&str, &str)]| Env::from_pairs(pairs.iter().copied());
        assert_eq!(MfaConfig::from_env(&env(&[])).unwrap(), MfaConfig::default());
        let c = MfaConfig::from_env(&env(&[
            ("MFA_POLICY", "required"),
            ("MFA_TOKEN_TTL_SECONDS", "120"),
        ]))
        .unwrap();
        assert_eq!((c.policy, c.token_ttl_seconds), (Policy::Required, 120));
        for (k, v) in [
            ("MFA_POLICY", "Required"),
            ("MFA_POLICY", "always"),
            ("MFA_TOKEN_TTL_SECONDS", "59"),
            ("MFA_TOKEN_TTL_SECONDS", "3601"),
            ("MFA_TOKEN_TTL_SECONDS", "5m"),
        ] {
            let e = MfaConfig::from_env(&env(&[(k, v)])).unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
    }

    #[test]
    fn only_mfa_in_amr_counts_as_two_factors() {
        assert!(has_mfa(AMR_PASSWORD_AND_OTP));
        assert!(!has_mfa(AMR_PASSWORD));
        assert!(!has_mfa::<&str>(&[]));
        assert!(!has_mfa(&["otp"]));
    }
}
