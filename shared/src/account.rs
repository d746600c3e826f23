//! The fields of an account, as every path that makes or renames one checks them
//! (`auth-admin user create`, `auth-admin import`, and the self-service sign-up to come): validated types
//! that can only exist when their rules hold, each rule written once here.
//!
//! - [`Username`]: 1 to 320 characters; RFC 8265's UsernameCasePreserved profile (the
//!   IdentifierClass of RFC 8264 after width mapping, NFC and the bidi rule), so no space, no
//!   control, default-ignorable (U+200B ZERO WIDTH SPACE, U+2060 WORD JOINER, U+00AD SOFT
//!   HYPHEN), bidi-control (U+202E RIGHT-TO-LEFT OVERRIDE) or unassigned code point: two
//!   accounts cannot display as the same name in a listing or a token's `username` claim
//!   through characters nobody sees. It may not start with a combining mark. No `@`, after
//!   normalisation (full-width `＠` too): it is
//!   how an email is told apart from a username at login. Accounts made before this rule keep
//!   working; it applies to new and renamed ones.
//! - [`Email`]: 1 to 320 characters, `local@domain` with neither part empty, one `@` after
//!   normalisation, no whitespace or control character, and each part within the identifier
//!   class (so no invisible or bidi-control character either).
//! - [`FullName`]: 1 to 200 characters, no control character.
//!
//! Each error's message names the field and the rule, fit to show the person who typed it.

use std::fmt;

use precis_core::profile::Profile;
use precis_profiles::UsernameCasePreserved;

use crate::identifier::{self, Lookup, MAX_IDENTIFIER_CHARS};

/// The longest full name, in Unicode scalar values.
pub const MAX_FULL_NAME_CHARS: usize = 200;

/// Why a field was refused: the field and the rule it breaks, as a sentence for the person who
/// typed it (never containing the value, which may be anything).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct FieldError {
    /// `username`, `email` or `full name`.
    pub field: &'static str,
    /// What is wrong, e.g. "must not contain spaces".
    pub rule: String,
}

fn refuse(field: &'static str, rule: impl Into<String>) -> FieldError {
    FieldError { field, rule: rule.into() }
}

/// Length in Unicode scalar values and no control character: the rule every field shares.
fn text(field: &'static str, s: &str, max: usize) -> Result<(), FieldError> {
    let n = s.chars().count();
    if n == 0 || n > max {
        return Err(refuse(field, format!("must be 1 to {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(refuse(field, "must not contain control characters"));
    }
    Ok(())
}

/// The rule a code point the identifier class refuses breaks, naming it as `U+XXXX`.
fn bad_code_point(cp: u32) -> String {
    format!(
        "must not contain U+{cp:04X}: invisible, control, bidi-control, symbol and unassigned \
         characters are refused (RFC 8264 identifier class)"
    )
}

/// A username that follows the rules of the module documentation; holds the text as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Checks `s`. Errors name the rule: length, `@`, spaces, or the first code point the
    /// username profile refuses (as `U+XXXX`).
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        const FIELD: &str = "username";
        text(FIELD, s, MAX_IDENTIFIER_CHARS)?;
        if matches!(Lookup::of(s), Lookup::Email(_)) {
            return Err(refuse(FIELD, "must not contain '@' (it is how emails are told apart)"));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(refuse(FIELD, "must not contain spaces"));
        }
        if s.chars().next().is_some_and(unicode_normalization::char::is_combining_mark) {
            // RFC 8264 allows combining marks, but one with nothing to combine with is shown
            // on whatever precedes it in a listing, or on nothing at all.
            return Err(refuse(FIELD, "must not start with a combining mark"));
        }
        if let Err(e) = UsernameCasePreserved::new().enforce(s) {
            let rule = match e {
                precis_core::Error::BadCodepoint(info) => bad_code_point(info.cp),
                _ => "is not a valid username (RFC 8265: letters, digits and ASCII \
                      punctuation, one writing direction)"
                    .to_owned(),
            };
            return Err(refuse(FIELD, rule));
        }
        Ok(Self(s.to_owned()))
    }

    /// The text as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lookup key it is matched by ([`identifier::key`]).
    pub fn key(&self) -> String {
        identifier::key(&self.0)
    }
}

/// An email address of the shape `local@domain`; holds the text as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Checks `s`: length, no control character or whitespace, exactly one `@` with text on
    /// both sides after normalisation.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        const FIELD: &str = "email";
        text(FIELD, s, MAX_IDENTIFIER_CHARS)?;
        let key = identifier::key(s);
        let shaped = match key.rsplit_once('@') {
            Some((local, domain)) => {
                !local.is_empty() && !domain.is_empty() && !local.contains('@')
            }
            None => false,
        };
        if !shaped || s.chars().any(char::is_whitespace) {
            return Err(refuse(FIELD, "is not an email address (local@domain)"));
        }
        // Each part is held to the identifier class usernames follow (ASCII punctuation is in
        // it), so no invisible, bidi-control or unassigned character makes two addresses that
        // read alike.
        let (local, domain) = s.rsplit_once('@').unwrap_or((s, ""));
        for part in [local, domain] {
            if let Err(precis_core::Error::BadCodepoint(info)) =
                UsernameCasePreserved::new().prepare(part)
            {
                return Err(refuse(FIELD, bad_code_point(info.cp)));
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// The text as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lookup key it is matched by ([`identifier::key`]).
    pub fn key(&self) -> String {
        identifier::key(&self.0)
    }
}

/// The longest mail address, in octets (RFC 5321 §4.5.3.1.3's path limit less its brackets).
pub const MAX_MAIL_ADDRESS_OCTETS: usize = 254;
/// The longest local part, in octets (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART_OCTETS: usize = 64;

/// An address mail can be sent to, as self-service paths take it (sign-up, email change): at
/// most [`MAX_MAIL_ADDRESS_OCTETS`] octets; an ASCII local part of RFC 5321's dot-atom form
/// (letters, digits and ``!#$%&'*+/=?^_`{|}~-``, dots between them; no quoted strings); a
/// domain of at least two labels in ASCII or as an internationalised name, processed by UTS 46
/// (non-transitional, STD3 rules, DNS lengths), each label in one script (UTS 39 mixed-script
/// detection, so `pаypal.com` with a Cyrillic `а` is refused). It is stored with its domain in
/// Unicode after NFKC ([`MailAddress::as_str`]) and sent to with the domain as A-labels
/// ([`MailAddress::ascii`]). It also passes [`Email::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAddress {
    unicode: String,
    ascii: String,
}

impl MailAddress {
    /// Checks `s`. Errors name the rule, never the value.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        const FIELD: &str = "email";
        let shape = || refuse(FIELD, "is not an email address (local@domain)");
        if s.len() > MAX_MAIL_ADDRESS_OCTETS {
            return Err(refuse(FIELD, format!("must be at most {MAX_MAIL_ADDRESS_OCTETS} octets")));
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(refuse(FIELD, "must not contain spaces or control characters"));
        }
        // As typed, too: UTS 46 would quietly drop an invisible character from the domain.
        Email::parse(s)?;
        let (local, domain) = s.rsplit_once('@').ok_or_else(shape)?;
        if local.is_empty() || domain.is_empty() {
            return Err(shape());
        }
        if !local.is_ascii() {
            return Err(refuse(FIELD, "must have an ASCII part before the '@'"));
        }
        let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
        if local.len() > MAX_LOCAL_PART_OCTETS
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || !local.bytes().all(|b| b == b'.' || atext(b))
        {
            return Err(refuse(
                FIELD,
                "must have a plain part before the '@' (up to 64 letters, digits, dots and !#$%&'*+/=?^_`{|}~-)",
            ));
        }
        let bad_domain = || refuse(FIELD, "must have a valid domain after the '@'");
        let nfkc: String = unicode_normalization::UnicodeNormalization::nfkc(domain).collect();
        let ascii_domain = idna::domain_to_ascii_strict(&nfkc).map_err(|_| bad_domain())?;
        let (unicode_domain, checked) = idna::domain_to_unicode(&ascii_domain);
        checked.map_err(|_| bad_domain())?;
        let labels: Vec<&str> = unicode_domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
            return Err(bad_domain());
        }
        {
            use unicode_security::MixedScript;
            if labels.iter().any(|l| !l.is_single_script()) {
                return Err(refuse(
                    FIELD,
                    "must not mix writing systems within a part of its domain (it could pass for another)",
                ));
            }
        }
        let ascii = format!("{local}@{ascii_domain}");
        if ascii.len() > MAX_MAIL_ADDRESS_OCTETS {
            return Err(refuse(FIELD, format!("must be at most {MAX_MAIL_ADDRESS_OCTETS} octets")));
        }
        let unicode = format!("{local}@{unicode_domain}");
        Email::parse(&unicode)?;
        Ok(Self { unicode, ascii })
    }

    /// The address as stored: the domain in Unicode (lower case, NFKC).
    pub fn as_str(&self) -> &str {
        &self.unicode
    }

    /// The address as mail is sent to it: the domain as A-labels, all ASCII.
    pub fn ascii(&self) -> &str {
        &self.ascii
    }

    /// The lookup key it is matched by ([`identifier::key`]).
    pub fn key(&self) -> String {
        identifier::key(&self.unicode)
    }

    /// The domain, in Unicode (for SIGNUP_ALLOWED_DOMAINS).
    pub fn domain(&self) -> &str {
        self.unicode.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// A person's name as they gave it: 1 to [`MAX_FULL_NAME_CHARS`] characters, no control
/// character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    /// Checks `s`.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        text("full name", s, MAX_FULL_NAME_CHARS)?;
        Ok(Self(s.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fields of an account to be made, each checked: only [`NewAccount::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The username.
    pub username: Username,
    /// The email address.
    pub email: Email,
    /// The full name, if given (an empty one counts as none).
    pub full_name: Option<FullName>,
}

impl NewAccount {
    /// Checks every field, in the order username, email, full name; the first broken rule is
    /// the error.
    pub fn parse(username: &str, email: &str, full_name: Option<&str>) -> Result<Self, FieldError> {
        Ok(Self {
            username: Username::parse(username)?,
            email: Email::parse(email)?,
            full_name: full_name.filter(|n| !n.is_empty()).map(FullName::parse).transpose()?,
        })
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_identifier_class() {
        for ok in ["alice", "José_x", "Ｊｏｓé＿ｘ", "bob.smith-2", "Ünïcødé", "李小龙", "o'brien"]
        {
            assert!(Username::parse(ok).is_ok(), "{ok}: {:?}", Username::parse(ok));
        }
        for (bad, cp) in [
            ("ali\u{200B}ce", "U+200B"),
            ("alice\u{202E}", "U+202E"),
            ("al\u{00AD}ice", "U+00AD"),
            ("ali\u{2060}ce", "U+2060"),
            ("\u{FEFF}alice", "U+FEFF"),
            ("ali\u{200D}ce", "U+200D"),
            ("alice\u{E000}", "U+E000"),
            ("alice\u{0378}", "U+0378"),
            ("alice\u{1F600}", "U+1F600"),
        ] {
            let e = Username::parse(bad).unwrap_err();
            assert!(e.to_string().contains(cp), "{bad:?}: {e}");
            assert_eq!(e.field, "username");
        }
        for (bad, why) in [
            ("", "1 to 320"),
            ("a@b", "'@'"),
            ("a\u{FF20}b", "'@'"),
            ("bo b", "spaces"),
            ("bo\u{3000}b", "spaces"),
            ("bo\tb", "control"),
            ("\u{301}\u{301}", "combining"),
            ("\u{301}alice", "combining"),
            ("\u{345}", "combining"),
        ] {
            let e = Username::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(Username::parse(&"a".repeat(321)).is_err());
        assert!(Username::parse(&"a".repeat(320)).is_ok());
    }

    #[test]
    fn mail_addresses_are_deliverable_and_unconfusable() {
        let a = MailAddress::parse("Ann.O'Neil+tag@Bücher.DE").unwrap();
        assert_eq!(a.as_str(), "Ann.O'Neil+tag@bücher.de");
        assert_eq!(a.ascii(), "Ann.O'Neil+tag@xn--bcher-kva.de");
        assert_eq!(a.domain(), "bücher.de");
        let b = MailAddress::parse("ann.o'neil+tag@xn--bcher-kva.de").unwrap();
        assert_eq!(a.key(), b.key(), "one account either way it is typed");
        // Full-width letters are the same domain after NFKC.
        assert_eq!(
            MailAddress::parse("ann@ｅｘａｍｐｌｅ.com").unwrap().as_str(),
            "ann@example.com"
        );
        for (bad, why) in [
            ("", "1 to 320"),
            ("ann", "local@domain"),
            ("@example.com", "local@domain"),
            ("ann@", "local@domain"),
            ("ann@example.com\r\nBcc: x@evil.com", "control"),
            ("ann@exa\nmple.com", "control"),
            ("a nn@example.com", "spaces"),
            ("josé@example.com", "ASCII"),
            ("аnn@example.com", "ASCII"),
            (".ann@example.com", "plain part"),
            ("ann.@example.com", "plain part"),
            ("a..nn@example.com", "plain part"),
            ("\"ann\"@example.com", "plain part"),
            ("a<b>@example.com", "plain part"),
            ("a@b@example.com", "local@domain"),
            ("ann@localhost", "domain"),
            ("ann@exa_mple.com", "domain"),
            ("ann@-example.com", "domain"),
            ("ann@example..com", "domain"),
            ("ann@[127.0.0.1]", "domain"),
            ("ann@p\u{0430}ypal.com", "writing systems"),
            ("ann@ex\u{200B}ample.com", "U+200B"),
            ("ann@\u{202E}moc.elpmaxe", "U+202E"),
        ] {
            let e = MailAddress::parse(bad).unwrap_err();
            assert_eq!(e.field, "email");
            assert!(e.rule.contains(why), "{bad:?}: {e}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(MailAddress::parse(&long_local).is_err());
        let near = format!(
            "{}@{}.com",
            "a".repeat(64),
            "b".repeat(60) + "." + &"c".repeat(60) + "." + &"d".repeat(60)
        );
        assert!(near.len() <= 254 && MailAddress::parse(&near).is_ok(), "{}", near.len());
        let over = format!(
            "{}@{}.com",
            "a".repeat(64),
            "b".repeat(62) + "." + &"c".repeat(62) + "." + &"d".repeat(62)
        );
        assert!(over.len() > 254);
        assert!(MailAddress::parse(&over).unwrap_err().rule.contains("254"));
        // A domain whose A-labels pass the limit, though its Unicode form is short enough.
        let idn = format!("{}@{}.de", "a".repeat(60), "ü".repeat(60));
        assert!(MailAddress::parse(&idn).is_err());
    }

    #[test]
    fn emails_and_names() {
        assert!(Email::parse("ann@example.com").is_ok());
        for bad in ["", "ann", "@example.com", "ann@", "a b@example.com", "a@b@c", "a\r\n@b.c"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        for (bad, cp) in [
            ("a\u{200b}@example.com", "U+200B"),
            ("moc.elpmaxe@\u{202e}ann", "U+202E"),
            ("ann@exa\u{ad}mple.com", "U+00AD"),
        ] {
            let e = Email::parse(bad).unwrap_err().to_string();
            assert!(e.contains(cp), "{bad:?}: {e}");
        }
        for ok in ["o'neil+tag@example.com", "josé@bücher.de", "a.b-c_d@xn--bcher-kva.de"] {
            assert!(Email::parse(ok).is_ok(), "{ok}: {:?}", Email::parse(ok));
        }
        assert!(FullName::parse("Ann O'Neil").is_ok());
        assert!(FullName::parse(&"x".repeat(201)).is_err());
        assert!(FullName::parse("Ann\u{7}").is_err());
        let a = NewAccount::parse("ann", "ann@example.com", Some("")).unwrap();
        assert_eq!(a.full_name, None);
        assert_eq!(a.username.key(), "ann");
    }
}
