//! RFC 6238 TOTP as authenticator apps implement it: HMAC-SHA-1, 6 digits, 30 s steps, a
//! 160-bit random secret (RFC 4226 §4 recommends 160 bits), shown to the user as unpadded
//! base32 and as an `otpauth://totp/` URI (Google Authenticator's Key Uri Format). The codes
//! themselves come from the `totp-rs` crate.

use secrecy::{ExposeSecret, SecretSlice};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Totp};

/// Length of a new secret, in bytes (160 bits).
pub const SECRET_BYTES: usize = 20;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Length of a step, in seconds.
pub const STEP_SECONDS: u64 = 30;
/// Steps accepted on either side of the current one (RFC 6238 §5.2: one step of network and
/// clock delay).
pub const SKEW_STEPS: u64 = 1;

/// A new random secret.
pub fn new_secret() -> SecretSlice<u8> {
    crate::random::bytes::<SECRET_BYTES>().to_vec().into()
}

fn totp(secret: &SecretSlice<u8>, issuer: &str, account: &str) -> Totp {
    // `:` separates issuer and account in the URI's label and may appear in neither
    // (Key Uri Format); an empty account name is not allowed either.
    let clean = |s: &str| s.replace(':', " ");
    let account = if account.is_empty() { "account".to_owned() } else { clean(account) };
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_step_duration(STEP_SECONDS)
        .with_skew(0)
        .with_secret(secret.expose_secret().to_vec())
        .with_issuer(Some(clean(issuer)))
        .with_account_name(account)
        .build_noncompliant()
}

/// The secret as an authenticator app takes it typed in: base32 (RFC 4648 §6), no padding.
pub fn base32(secret: &SecretSlice<u8>) -> String {
    totp(secret, "", "").secret().to_base32()
}

/// The `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER` URI an authenticator app
/// scans (as a QR code) to add the factor; `issuer` is APP_NAME, `account` the username.
pub fn otpauth_uri(secret: &SecretSlice<u8>, issuer: &str, account: &str) -> String {
    // The label is checked non-empty and colon-free above, so this cannot fail.
    totp(secret, issuer, account).to_url().unwrap_or_default()
}

/// Whether `code` has the shape of a code: exactly [`DIGITS`] ASCII digits (no spaces, no
/// other scripts' digits).
pub fn is_code(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// The code for the step of `unix_seconds` (tests and the page's own checks).
pub fn code_at(secret: &SecretSlice<u8>, unix_seconds: u64) -> String {
    totp(secret, "", "").generate(unix_seconds).to_string()
}

/// The step `code` is right for, among the previous, current and next step of `unix_seconds`
/// and only those after `last_step` (a step once used is never accepted again), or `None`.
/// Every candidate step is computed and compared in constant time (`subtle`), whichever
/// matches.
pub fn matching_step(
    secret: &SecretSlice<u8>,
    code: &str,
    unix_seconds: u64,
    last_step: u64,
) -> Option<u64> {
    if !is_code(code) {
        return None;
    }
    let t = totp(secret, "", "");
    let now = unix_seconds / STEP_SECONDS;
    let mut found = None;
    for step in now.saturating_sub(SKEW_STEPS)..=now + SKEW_STEPS {
        let right: bool =
            t.generate(step * STEP_SECONDS).to_string().as_bytes().ct_eq(code.as_bytes()).into();
        if right && step > last_step && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows: the 20-byte ASCII secret "12345678901234567890", 8-digit
    /// codes; the last 6 digits are the 6-digit codes (RFC 4226 §5.3's truncation, modulo 10^6).
    #[test]
    fn codes_are_rfc_6238_appendix_b() {
        let secret: SecretSlice<u8> = b"12345678901234567890".to_vec().into();
        for (t, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(&secret, t), eight[2..], "T = {t}");
        }
    }

    #[test]
    fn a_code_is_taken_one_step_either_side_and_never_for_a_used_step() {
        let secret = new_secret();
        let now = 1_800_000_015;
        let step = now / STEP_SECONDS;
        let code = |s: u64| code_at(&secret, s * STEP_SECONDS);
        assert_eq!(matching_step(&secret, &code(step), now, 0), Some(step));
        assert_eq!(matching_step(&secret, &code(step - 1), now, 0), Some(step - 1));
        assert_eq!(matching_step(&secret, &code(step + 1), now, 0), Some(step + 1));
        assert_eq!(matching_step(&secret, &code(step - 2), now, 0), None);
        assert_eq!(matching_step(&secret, &code(step + 2), now, 0), None);
        assert_eq!(matching_step(&secret, &code(step), now, step), None, "replayed step");
        assert_eq!(matching_step(&secret, &code(step - 1), now, step - 1), None);
        assert_eq!(matching_step(&secret, &code(step + 1), now, step), Some(step + 1));
    }

    #[test]
    fn codes_of_the_wrong_shape_never_match() {
        let secret = new_secret();
        let now = 1_800_000_015;
        let right = code_at(&secret, now);
        for bad in [
            String::new(),
            right[..5].to_owned(),
            format!("{right}0"),
            format!("{} {}", &right[..3], &right[3..]),
            format!(" {right}"),
            "abcdef".to_owned(),
            "١٢٣٤٥٦".to_owned(),
            "+12345".to_owned(),
            "１２３４５６".to_owned(),
        ] {
            assert_eq!(matching_step(&secret, &bad, now, 0), None, "{bad:?}");
        }
    }

    #[test]
    fn the_uri_names_the_issuer_and_account_and_carries_the_secret() {
        let secret: SecretSlice<u8> = vec![0xAB; SECRET_BYTES].into();
        let uri = otpauth_uri(&secret, "My App", "alice");
        assert!(uri.starts_with("otpauth://totp/My%20App:alice?"), "{uri}");
        assert!(uri.contains(&format!("secret={}", base32(&secret))), "{uri}");
        assert!(uri.contains("issuer=My%20App"), "{uri}");
        assert_eq!(base32(&secret).len(), 32);
        // A colon in either part would split the label: replaced, never a failure.
        let odd = otpauth_uri(&secret, "a:b", "c:d");
        assert!(odd.starts_with("otpauth://totp/a%20b:c%20d?"), "{odd}");
    }
}
