//! Unit tests of hashing, parsing and verification.

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
    for common in ["password", "Password1", "qwerty123", " letmein ", "ＰＡＳＳＷＯＲＤ"] {
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
            Scheme::PasslibPbkdf2,
        ),
        (
            "\u{399}\u{3c9}\u{3b1}\u{3bd}\u{3bd}\u{3b7}\u{3c2}",
            "$pbkdf2-sha256$1212$3SABFJGDtyhrQMVt1uABPw$WyaUoqCLgvz97s523nF4iuOqZNbp5Nt8do/cuaa7AiI",
            Scheme::PasslibPbkdf2,
        ),
        (
            "letmein",
            "pbkdf2_sha256$10000$seasalt$FQCNpiZpTb0zub+HBsH6TOwyRxJ19FwvjbweatNmK/Y=",
            Scheme::DjangoPbkdf2Sha256,
        ),
        (
            "l\u{e8}tmein",
            "pbkdf2_sha256$10000$seasalt$CWWFdHOWwPnki7HvkcqN9iA2T3KLW1cf2uZ5kvArtVY=",
            Scheme::DjangoPbkdf2Sha256,
        ),
    ];
    for (pw, stored, scheme) in cases {
        assert_eq!(parse(stored).unwrap().scheme, scheme);
        assert_eq!(verify(pw, stored, FAST), Verdict::Match { needs_upgrade: true }, "{stored}");
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
            "phc-argon2",
            "m",
        ),
        ("scrypt:4194304:8:1$salt$00", "werkzeug-scrypt", "N"),
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
        assert!(text.contains("WARN") && text.contains(format) && text.contains(reason), "{text}");
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

/// docs/passwords.md shows the table of formats this module reads, as [`markdown_table`]
/// renders it from [`FORMATS`]: a format added here and not there fails this test.
#[test]
fn the_docs_show_the_format_table() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/passwords.md"))
            .unwrap();
    let table = markdown_table();
    assert!(docs.contains(&table), "docs/passwords.md should hold this table:\n{table}");
}

/// Every row's prefixes are tried in order: none is hidden behind an earlier row's prefix
/// (except PHC's `i=` rows, which come first on purpose), and each scheme has one row.
#[test]
fn every_row_is_reachable_and_named_once() {
    for (i, f) in FORMATS.iter().enumerate() {
        assert_eq!(f.scheme.name(), f.name);
        assert!(FORMATS[i + 1..].iter().all(|g| g.scheme != f.scheme && g.name != f.name));
        for p in f.prefixes {
            let first = FORMATS.iter().find(|g| g.prefixes.iter().any(|q| p.starts_with(q)));
            assert_eq!(first.map(|g| g.name), Some(f.name), "{p} is read by an earlier row");
        }
    }
}

#[test]
fn digits_are_grouped_in_threes() {
    let got: Vec<String> =
        [0, 7, 999, 1_000, 65_536, 600_000, 1_000_000, u64::MAX].map(group_digits).to_vec();
    assert_eq!(
        got,
        ["0", "7", "999", "1,000", "65,536", "600,000", "1,000,000", "18,446,744,073,709,551,615"]
    );
}
