//! How an identifier typed at login names an account: the one email-or-username rule, and the
//! lookup keys stored beside each account (`username_key`, `email_key`).
//!
//! A key is the identifier in Unicode normalisation form NFKC, lower-cased with Unicode's full
//! case mapping, and normalised again (lower-casing can leave a string that is no longer in
//! NFKC). The service computes it, not PostgreSQL, so matching depends neither on the
//! database's locale (`lower()` folds only ASCII under `C`) nor on how the text was typed: NFD
//! from one keyboard and NFC from another, or full-width forms, meet on the same key. NIST SP
//! 800-63B §5.1.1.2 asks verifiers to normalise with NFKC or NFKD; Django normalises usernames
//! with NFKC.

use unicode_normalization::UnicodeNormalization;

/// Longest username or email, in Unicode scalar values (the longest email address, RFC 5321's
/// 64 + 1 + 255); the database's CHECKs, login and auth-admin all use it.
pub const MAX_IDENTIFIER_CHARS: usize = 320;

/// The lookup key of an identifier: NFKC, Unicode lower case, NFKC again; and in an email, a
/// domain typed as A-labels (`xn--...`, IDNA's ASCII form) in Unicode, so
/// `ann@xn--bcher-kva.example` and `ann@bücher.example` name one account (a domain that does not
/// decode is kept as it is).
pub fn key(identifier: &str) -> String {
    let nfkc: String = identifier.nfkc().collect();
    let key: String = nfkc.to_lowercase().nfkc().collect();
    match key.rsplit_once('@') {
        Some((local, domain)) if domain.split('.').any(|l| l.starts_with("xn--")) => {
            match idna::domain_to_unicode(domain) {
                (unicode, Ok(())) => {
                    let unicode: String = unicode.to_lowercase().nfkc().collect();
                    format!("{local}@{unicode}")
                }
                (_, Err(_)) => key,
            }
        }
        _ => key,
    }
}

/// Which column an identifier is matched against, with its lookup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The key contains '@': match `email_key`.
    Email(String),
    /// Any other: match `username_key`. Usernames cannot contain '@' (after normalisation
    /// too), so the two never collide.
    Username(String),
}

impl Lookup {
    /// Classifies `identifier` by its key: one with '@' (also a full-width '＠', which NFKC
    /// maps to '@') is an email, any other a username.
    pub fn of(identifier: &str) -> Self {
        let key = key(identifier);
        if key.contains('@') { Self::Email(key) } else { Self::Username(key) }
    }

    /// The two SQL parameters `username_key` and `email_key` are compared with; the one that
    /// does not apply is NULL, which matches nothing.
    pub fn params(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Self::Username(k) => (Some(k), None),
            Self::Email(k) => (None, Some(k)),
        }
    }

    /// The key itself.
    pub fn key(&self) -> &str {
        match self {
            Self::Username(k) | Self::Email(k) => k,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_cases_meet_on_one_key() {
        let nfc = "Jos\u{e9}_X";
        let nfd = "Jose\u{301}_x";
        assert_eq!(key(nfc), key(nfd));
        assert_eq!(key(nfc), "jos\u{e9}_x");
        // Full-width letters and the Kelvin sign fold to ASCII; ß stays ß (lower case, not
        // case folding), Σ lowers to σ.
        assert_eq!(key("ＡＬＩＣＥ"), "alice");
        assert_eq!(key("\u{212a}elvin"), "kelvin");
        assert_eq!(key("STRAßE"), "straße");
        assert_eq!(key("ΣΑΣ"), "σας");
        assert_eq!(Lookup::of("Bob@Example.COM"), Lookup::Email("bob@example.com".into()));
        assert_eq!(Lookup::of("bob＠example.com"), Lookup::Email("bob@example.com".into()));
        assert_eq!(Lookup::of("İstanbul").key(), key("i\u{307}stanbul"));
        assert_eq!(Lookup::of("alice").params(), (Some("alice"), None));
    }

    #[test]
    fn a_domain_as_a_labels_or_in_unicode_is_one_key() {
        assert_eq!(key("Ann@XN--BCHER-KVA.example"), "ann@bücher.example");
        assert_eq!(key("ann@xn--bcher-kva.example"), key("ANN@BÜCHER.EXAMPLE"));
        assert_eq!(key("ann@mail.xn--bcher-kva.example"), "ann@mail.bücher.example");
        // Not a decodable A-label: kept as typed (lower-cased).
        assert_eq!(key("ann@xn--.example"), "ann@xn--.example");
        // Only an email's domain is decoded.
        assert_eq!(key("xn--bcher-kva"), "xn--bcher-kva");
    }
}
