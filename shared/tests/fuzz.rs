//! Property-based fuzzing (proptest; cargo-fuzz needs a nightly toolchain) of the three parsers
//! that face attacker input: the request body parser, the Authorization header and token
//! parser, and the stored-hash parser. None may panic; each refuses garbage with its error.
//! The login function's own body rules (exactly one identifier, null refused, limits) are
//! fuzzed beside them, in `functions/login/src/lib.rs`.
//!
//! A bounded run is part of the test suite; a longer one:
//!   PROPTEST_CASES=200000 cargo test --release -p auth-shared --test fuzz

use auth_shared::config::TokenConfig;
use auth_shared::http::{self, ApiError};
use auth_shared::lambda_http::{Body, Request};
use auth_shared::password::{self, Kdf, Parsed, Policy, Verdict};
use auth_shared::signing::Key;
use auth_shared::token::{self};
use proptest::prelude::*;
use serde_json::Value;

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
struct Credentials {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

fn request(content_type: Option<&str>, body: Vec<u8>, authorization: Option<&[u8]>) -> Request {
    let mut b = auth_shared::lambda_http::http::Request::builder().method("POST").uri("/login");
    if let Some(ct) = content_type
        && let Ok(v) = auth_shared::lambda_http::http::HeaderValue::from_str(ct)
    {
        b = b.header("content-type", v);
    }
    if let Some(a) = authorization
        && let Ok(v) = auth_shared::lambda_http::http::HeaderValue::from_bytes(a)
    {
        b = b.header("authorization", v);
    }
    b.body(Body::Binary(body)).unwrap()
}

fn is_body_error(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::InvalidJson(_)
            | ApiError::InvalidRequest(_)
            | ApiError::PayloadTooLarge
            | ApiError::UnsupportedMediaType
    )
}

/// Arbitrary JSON, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("username".to_owned()),
                    Just("email".to_owned()),
                    Just("password".to_owned()),
                    ".{0,10}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// True when verifying `p` is quick enough for thousands of fuzz cases.
fn cheap(p: &Parsed) -> bool {
    match &p.kdf {
        Kdf::Pbkdf2 { iterations, .. } => *iterations <= 10_000,
        Kdf::Scrypt { log_n, r, p } => *log_n <= 12 && r * p <= 16,
        Kdf::Argon2 { m, t, .. } => *m <= 4096 && *t <= 3,
        Kdf::Bcrypt { cost, .. } => *cost <= 6,
    }
}

/// Every accepted format's prefix (and a few near misses).
const PREFIXES: [&str; 24] = [
    "$pbkdf2-sha256$",
    "$pbkdf2-sha512$",
    "$pbkdf2$",
    "pbkdf2:sha256:",
    "pbkdf2:sha512:",
    "pbkdf2:sha1:",
    "pbkdf2_sha256$",
    "pbkdf2_sha1$",
    "scrypt:",
    "scrypt$",
    "$2a$",
    "$2b$",
    "$2y$",
    "$2x$",
    "bcrypt_sha256$$2b$",
    "bcrypt$$2a$",
    "$bcrypt-sha256$v=2,t=2b,r=",
    "$bcrypt-sha256$2a,",
    "argon2$argon2id$v=19$",
    "$argon2id$v=19$",
    "$argon2i$",
    "$argon2d$v=16$",
    "$scrypt$",
    "argon2$argon2i$",
];

fn cfg() -> TokenConfig {
    TokenConfig {
        issuer: "auth-service".into(),
        audience: "auth-service".into(),
        ttl_seconds: 3600,
    }
}

proptest! {
    // 2,000 cases each in the suite; PROPTEST_CASES sets a longer run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any bytes under any content type: parsed, or refused with a body error. Never a panic.
    #[test]
    fn body_parser_never_panics_on_bytes(
        body in prop::collection::vec(any::<u8>(), 0..10_000),
        ct in prop::option::of(prop_oneof![Just("application/json".to_owned()), Just("application/json; charset=utf-8".to_owned()), ".{0,30}"]),
    ) {
        let req = request(ct.as_deref(), body, None);
        if let Err(e) = http::json_body::<Credentials>(&req, "an object") {
            prop_assert!(is_body_error(&e), "{e:?}");
        }
    }

    /// Any JSON document: an object of the right member types parses, anything else is
    /// `invalid_request`.
    #[test]
    fn body_parser_classifies_json(doc in json_value()) {
        let text = doc.to_string();
        let req = request(Some("application/json"), text.clone().into_bytes(), None);
        let shaped = doc.as_object().is_some_and(|o| {
            ["username", "email", "password"].iter().all(|k| o.get(*k).is_none_or(|v| v.is_string() || v.is_null()))
        });
        match http::json_body::<Credentials>(&req, "an object") {
            Ok(_) => prop_assert!(shaped, "accepted {text}"),
            Err(ApiError::PayloadTooLarge) => prop_assert!(text.len() > http::MAX_BODY_BYTES),
            Err(e) => {
                prop_assert!(!shaped || text.len() > http::MAX_BODY_BYTES, "refused {text}: {e:?}");
                prop_assert_eq!(e.code(), "invalid_request");
            }
        }
    }

    /// Any Authorization header value: a token, or a refusal. Then any token text: a key id or a
    /// refusal, and never a verified claim set without the right signature.
    #[test]
    fn authorization_and_token_parsers_never_panic(header in prop::collection::vec(any::<u8>(), 0..6000)) {
        let req = request(None, Vec::new(), Some(&header));
        match http::bearer_token(&req) {
            Ok(tok) => {
                let key = Key::new("local", &[7u8; 32]).unwrap();
                let _ = token::key_id(tok);
                prop_assert!(token::verify(&cfg(), &key, tok, token::now()).is_err());
            }
            Err(e) => prop_assert_eq!(e.code(), "invalid_token"),
        }
    }

    /// Three base64url segments of arbitrary JSON: refused, whatever the header claims.
    #[test]
    fn structured_forgeries_are_refused(header in json_value(), claims in json_value(), sig in prop::collection::vec(any::<u8>(), 0..64)) {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let tok = format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()), b64(&sig));
        let key = Key::new("local", &[7u8; 32]).unwrap();
        let _ = token::key_id(&tok);
        prop_assert!(token::verify(&cfg(), &key, &tok, token::now()).is_err());
    }

    /// One changed character anywhere in a valid token makes it fail.
    #[test]
    fn any_single_change_breaks_a_token(pos in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_.-]") {
        let key = Key::new("local", &[7u8; 32]).unwrap();
        let good = token::issue(&cfg(), &key, uuid::Uuid::from_u128(1), "alice", None, token::now()).unwrap();
        let i = pos.index(good.len());
        let mut bad = good.clone();
        bad.replace_range(i..=i, &replacement);
        if bad == good {
            return Ok(());
        }
        // base64url's last character of a segment may carry unused bits: a change there can
        // decode to the same bytes, which is the same token.
        if let Ok(c) = token::verify(&cfg(), &key, &bad, token::now()) {
            let original = token::verify(&cfg(), &key, &good, token::now()).unwrap();
            prop_assert_eq!(c, original);
        }
    }

    /// Any stored string: parsed or refused; verifying it never panics and never matches a
    /// password it was not made from.
    #[test]
    fn stored_hash_parser_never_panics(s in ".{0,300}") {
        let parsed = password::parse(&s);
        if parsed.as_ref().map_or(true, |p| p.iterations().is_none_or(|n| n <= 2000)) {
            prop_assert_eq!(password::verify("pw", &s, Policy { iterations: 100 }), Verdict::Mismatch);
        }
    }

    /// Strings shaped like each accepted format, with fields fuzzed.
    #[test]
    fn near_miss_hash_strings_never_panic(
        prefix in prop_oneof![Just("$pbkdf2-sha256$"), Just("pbkdf2:sha256:"), Just("pbkdf2_sha256$"), Just("$pbkdf2-sha256$i=")],
        n in prop_oneof![Just(String::new()), "[0-9]{1,4}", "[0-9]{8,12}", "-?[0-9a-z,=.]{0,12}"],
        salt in "[A-Za-z0-9+/.=$!]{0,40}",
        hash in "[A-Za-z0-9+/.=$!]{0,90}",
    ) {
        for sep in ["$", ",l=32$", ""] {
            let s = format!("{prefix}{n}{sep}{salt}${hash}");
            if password::parse(&s).is_ok_and(|p| p.iterations().is_some_and(|n| n <= 10_000)) || password::parse(&s).is_err() {
                prop_assert_eq!(password::verify("pw", &s, Policy { iterations: 100 }), Verdict::Mismatch);
            }
        }
    }

    /// Strings shaped like each foreign format: a prefix, parameters drawn from each format's
    /// vocabulary (work factors small, huge, zero, non-numeric), salt and hash fields of every
    /// alphabet. Parsing never panics; whatever does not parse is a mismatch, and whatever
    /// parses cheaply does not match a password it was not made from.
    #[test]
    fn foreign_hash_strings_never_panic(
        prefix in prop::sample::select(&PREFIXES[..]),
        params in prop::collection::vec(prop_oneof![
            "[0-9]{1,3}", "[0-9]{6,22}", Just("0".to_owned()), Just("04".to_owned()), Just("16".to_owned()),
            "(m|t|p|ln|r|i|l|v)=[0-9]{1,8}", "[a-z=,:$.]{0,8}",
        ], 0..4),
        seps in prop::collection::vec(prop::sample::select(&[",", ":", "$", ""][..]), 4),
        salt in "[A-Za-z0-9+/.=$]{0,40}",
        hash in "[A-Za-z0-9+/.=]{0,100}",
    ) {
        let mut s = prefix.to_owned();
        for (i, p) in params.iter().enumerate() {
            s.push_str(p);
            s.push_str(seps[i % seps.len()]);
        }
        s.push_str(&salt);
        s.push('$');
        s.push_str(&hash);
        match password::parse(&s) {
            Err(_) => prop_assert_eq!(password::verify("pw", &s, Policy { iterations: 100 }), Verdict::Mismatch),
            Ok(p) if cheap(&p) => prop_assert_eq!(password::verify("pw", &s, Policy { iterations: 100 }), Verdict::Mismatch),
            Ok(_) => {}
        }
    }

    /// Well-formed strings of each memory-hard or bcrypt format with random work factors:
    /// within the caps they parse (and verify cheaply to a mismatch), above them they are
    /// refused as errors, never computed.
    #[test]
    fn work_factors_are_capped(
        which in 0u8..6,
        a in 0u64..40, b in 0u64..300_000, c in 0u64..12,
        salt in prop::collection::vec(any::<u8>(), 8..32),
        hash in prop::collection::vec(any::<u8>(), 32..33),
    ) {
        use base64::Engine;
        let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD_NO_PAD.encode(v);
        let s = match which {
            0 => format!("$argon2id$v=19$m={b},t={a},p={c}${}${}", b64(&salt), b64(&hash)),
            1 => format!("$scrypt$ln={a},r={c},p={c}${}${}", b64(&salt), b64(&hash)),
            2 => format!("scrypt:{}:{c}:{c}$salt${}", 1u64 << a.min(40), hex::encode([hash.clone(), hash.clone()].concat())),
            3 => format!("$2b${a:02}$abcdefghijklmnopqrstuu{}", "A".repeat(31)),
            4 => format!("$pbkdf2-sha512${b}${}${}", b64(&salt).replace('+', "."), b64(&[hash.clone(), hash.clone()].concat()).replace('+', ".")),
            _ => format!("argon2$argon2i$m={b},t={a},p={c}${}${}", b64(&salt), b64(&hash)),
        };
        let started = std::time::Instant::now();
        match password::parse(&s) {
            Ok(p) => {
                prop_assert!(match p.kdf {
                    Kdf::Argon2 { m, t, p, .. } => m <= password::ARGON2_MAX_M_KIB && t <= password::ARGON2_MAX_T && p <= password::ARGON2_MAX_P,
                    Kdf::Scrypt { log_n, r, p } => log_n <= password::SCRYPT_MAX_LOG_N && (128u64 << log_n) * u64::from(r) * u64::from(p) <= password::SCRYPT_MAX_BYTES,
                    Kdf::Bcrypt { cost, .. } => cost <= password::BCRYPT_MAX_COST,
                    Kdf::Pbkdf2 { iterations, .. } => iterations <= password::MAX_ITERATIONS,
                }, "{s}");
                if cheap(&p) {
                    prop_assert_eq!(password::verify("pw", &s, Policy { iterations: 100 }), Verdict::Mismatch);
                }
            }
            Err(_) => {
                prop_assert_eq!(password::verify("pw", &s, Policy { iterations: 100 }), Verdict::Mismatch);
                prop_assert!(started.elapsed() < std::time::Duration::from_millis(200), "{s} took {:?}", started.elapsed());
            }
        }
    }
}
