//! Property-based fuzzing of the login body parser as the handler runs it: `json_body` into
//! [`LoginBody`], then [`credentials`]. `auth-shared`'s fuzz test covers `json_body` on its
//! own; this one covers the login rules on top (null is a wrong type, exactly one identifier,
//! length limits, NUL). A longer run:
//!   PROPTEST_CASES=100000 cargo test --release -p login --lib

use super::*;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn parse(content_type: Option<&str>, body: Vec<u8>) -> Result<(String, String), ApiError> {
    let mut b = lambda_http::http::Request::builder().method("POST").uri(ROUTE.path);
    if let Some(ct) = content_type
        && let Ok(v) = lambda_http::http::HeaderValue::from_str(ct)
    {
        b = b.header("content-type", v);
    }
    credentials(http::json_body(&b.body(Body::Binary(body)).unwrap(), SHAPE)?)
}

/// The contract's rules for a JSON document, written independently of the parser.
fn acceptable(doc: &Value) -> Option<(String, String)> {
    let o: &Map<String, Value> = doc.as_object()?;
    let string = |k: &str| match o.get(k) {
        None => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    let identifier = match (string("username")?, string("email")?) {
        (Some(i), None) | (None, Some(i)) => i,
        _ => return None,
    };
    let password = string("password")??;
    let ok = (1..=320).contains(&identifier.chars().count())
        && !identifier.contains('\0')
        && (1..=1024).contains(&password.chars().count());
    ok.then_some((identifier, password))
}

/// Strings around every limit the parser checks.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "[a-z]{0,4}\u{0}[a-z]{0,4}", "\\PC{318,322}", "[a-zé]{1022,1026}",]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("username".to_owned()),
                    Just("email".to_owned()),
                    Just("password".to_owned()),
                    "[a-z]{0,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects with each of username, email and password absent, a string, null or another
/// value, beside unrelated members: most documents a client would actually send.
fn login_shaped() -> impl Strategy<Value = Value> {
    let member = || {
        prop_oneof![
            2 => Just(None),
            4 => text().prop_map(|t| Some(Value::String(t))),
            1 => Just(Some(Value::Null)),
            1 => json_value().prop_map(Some),
        ]
    };
    let extra = prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3);
    (member(), member(), member(), extra).prop_map(|(username, email, password, extra)| {
        let mut o: Map<String, Value> = extra.into_iter().collect();
        for (k, v) in [("username", username), ("email", email), ("password", password)] {
            match v {
                Some(v) => o.insert(k.to_owned(), v),
                None => o.remove(k),
            };
        }
        Value::Object(o)
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any bytes under any content type: credentials, or a 400, 413 or 415 problem.
    #[test]
    fn any_bytes_get_credentials_or_a_client_error(
        body in prop::collection::vec(any::<u8>(), 0..10_000),
        ct in prop::option::of(prop_oneof![Just("application/json".to_owned()), ".{0,30}"]),
    ) {
        if let Err(e) = parse(ct.as_deref(), body) {
            prop_assert!([400, 413, 415].contains(&e.status().as_u16()), "{e:?}");
        }
    }

    /// Any JSON document: accepted exactly when the contract's rules accept it, with the
    /// same identifier and password; otherwise 400 (or 413 when over the size limit).
    #[test]
    fn json_documents_follow_the_contract(doc in prop_oneof![1 => json_value(), 4 => login_shaped()]) {
        let text = doc.to_string();
        let got = parse(Some("application/json"), text.clone().into_bytes());
        if text.len() > http::MAX_BODY_BYTES {
            prop_assert!(matches!(got, Err(ApiError::PayloadTooLarge)), "{got:?}");
            return Ok(());
        }
        match (got, acceptable(&doc)) {
            (Ok(got), Some(want)) => prop_assert_eq!(got, want),
            (Err(e), None) => prop_assert_eq!(e.status().as_u16(), 400, "{:?}", e),
            (got, want) => prop_assert!(false, "{text}: parsed {got:?}, contract says {want:?}"),
        }
    }
}
