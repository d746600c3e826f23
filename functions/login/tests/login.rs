//! POST /login against a real PostgreSQL: success by username and by email, the token's
//! header, claims and signature (checked with an HMAC computed here, not by the crate that
//! signed it), indistinguishable failures, and a 4xx problem for every malformed request.

use auth_shared::lambda_http::http::HeaderMap;
use auth_shared::password;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use testkit::app::Parts;
use testkit::events::TEST_KEY;

const PW: &str = "correct horse battery staple";

async fn setup() -> (Parts, login::State) {
    let p = Parts::new(4).await;
    let state = login::State::new(p.db.clone(), p.keys.clone(), p.tokens.clone(), p.policy);
    p.test_db.create_user("alice", "Alice@Example.com", PW).await;
    (p, state)
}

async fn post_raw(
    state: &login::State,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, HeaderMap, Value) {
    testkit::read(login::handle(state, testkit::request("POST", "/login", headers, body)).await)
}

async fn post(state: &login::State, body: Value) -> (u16, HeaderMap, Value) {
    post_raw(state, &[("content-type", "application/json")], &body.to_string()).await
}

/// Checks an HS256 JWT with an HMAC computed here and returns (header, claims).
fn verify_independently(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let mut mac = Hmac::<Sha256>::new_from_slice(TEST_KEY.as_bytes()).unwrap();
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    let expected = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    assert_eq!(parts[2], expected, "signature");
    let decode =
        |s: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
    (decode(parts[0]), decode(parts[1]))
}

#[tokio::test]
async fn login_by_username_returns_a_token_that_verifies() {
    let (p, state) = setup().await;
    let (status, headers, body) = post(&state, json!({"username": "alice", "password": PW})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(!headers["x-request-id"].is_empty());
    assert!(
        !headers.contains_key("access-control-allow-origin"),
        "the functions never add CORS headers"
    );

    let (header, claims) = verify_independently(body["access_token"].as_str().unwrap());
    assert_eq!(header, json!({"alg": "HS256", "typ": "JWT", "kid": "local"}));
    let now = auth_shared::token::now();
    assert_eq!(claims["iss"], "auth-service");
    assert_eq!(claims["aud"], "auth-service");
    assert_eq!(claims["username"], "alice");
    let iat = claims["iat"].as_i64().unwrap();
    assert!((now - 5..=now + 2).contains(&iat), "iat {iat} now {now}");
    assert_eq!(claims["nbf"].as_i64(), Some(iat));
    assert_eq!(claims["exp"].as_i64(), Some(iat + 3600));
    assert_eq!(URL_SAFE_NO_PAD.decode(claims["jti"].as_str().unwrap()).unwrap().len(), 16);
    let sub = claims["sub"].as_str().unwrap();

    let c = p.test_db.client().await;
    let row = c
        .query_one(
            "SELECT id::text, last_login_at IS NOT NULL FROM users WHERE username = 'alice'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), sub);
    assert!(row.get::<_, bool>(1), "last_login_at is set");
}

#[tokio::test]
async fn identifiers_match_regardless_of_case_and_member_name() {
    let (_p, state) = setup().await;
    for body in [
        json!({"email": "alice@example.com", "password": PW}),
        json!({"email": "ALICE@EXAMPLE.COM", "password": PW}),
        json!({"username": "ALICE", "password": PW}),
        // An identifier with '@' is an email whichever member carries it.
        json!({"username": "alice@example.COM", "password": PW}),
        json!({"username": "alice", "password": PW, "remember_me": true, "extra": {"nested": [1, 2]}}),
    ] {
        let (status, _, resp) = post(&state, body.clone()).await;
        assert_eq!(status, 200, "{body} -> {resp}");
    }
    // The email member with a username is not an email: still matched as a username.
    let (status, _, _) = post(&state, json!({"email": "alice", "password": PW})).await;
    assert_eq!(status, 200);
    let (_, _, tokens) = post(&state, json!({"username": "alice", "password": PW})).await;
    let (_, again) = (0, post(&state, json!({"username": "alice", "password": PW})).await.2);
    assert_ne!(tokens["access_token"], again["access_token"], "every token has its own jti");
}

#[tokio::test]
async fn failures_are_indistinguishable() {
    let (p, state) = setup().await;
    p.test_db.create_user("carol", "carol@example.com", PW).await;
    let c = p.test_db.client().await;
    c.execute("UPDATE users SET disabled_at = now() WHERE username = 'carol'", &[]).await.unwrap();

    let cases = [
        json!({"username": "nobody", "password": PW}),
        json!({"username": "alice", "password": "wrong password"}),
        json!({"email": "nobody@example.com", "password": PW}),
        // A correct password on a disabled account is a failure like any other.
        json!({"username": "carol", "password": PW}),
    ];
    let mut seen = Vec::new();
    for body in cases {
        let (status, mut headers, resp) = post(&state, body).await;
        assert_eq!(status, 401);
        assert_eq!(resp["error"], "invalid_credentials");
        assert_eq!(headers["www-authenticate"], r#"Bearer realm="auth""#);
        assert_eq!(headers["cache-control"], "no-store");
        headers.remove("x-request-id");
        seen.push((headers, resp));
    }
    for other in &seen[1..] {
        assert_eq!(other, &seen[0], "every failure looks the same");
    }
    let last: Option<bool> = c
        .query_one("SELECT last_login_at IS NOT NULL FROM users WHERE username = 'carol'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(last, Some(false), "a refused login does not touch last_login_at");
}

#[tokio::test]
async fn every_malformed_request_gets_its_problem() {
    let (_p, state) = setup().await;
    let long_id = "a".repeat(321);
    let long_pw = "p".repeat(1025);
    let nested = format!(
        "{{\"username\":\"alice\",\"password\":\"x\",\"deep\":{}{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let huge = format!("{{\"username\":\"alice\",\"password\":\"{}\"}}", "p".repeat(9000));
    let j = "application/json";
    let cases: Vec<(Option<&str>, &str, u16, &str)> = vec![
        (None, r#"{"username":"alice","password":"x"}"#, 415, "unsupported_media_type"),
        (
            Some("text/plain"),
            r#"{"username":"alice","password":"x"}"#,
            415,
            "unsupported_media_type",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            "username=alice&password=x",
            415,
            "unsupported_media_type",
        ),
        (
            Some("application/jsonx"),
            r#"{"username":"alice","password":"x"}"#,
            415,
            "unsupported_media_type",
        ),
        (Some(j), "", 400, "invalid_json"),
        (Some(j), "   ", 400, "invalid_json"),
        (Some(j), "{", 400, "invalid_json"),
        (Some(j), r#"{"username":"alice","password":"x",}"#, 400, "invalid_json"),
        (Some(j), "{'username':'alice'}", 400, "invalid_json"),
        (Some(j), "[]", 400, "invalid_request"),
        (Some(j), "42", 400, "invalid_request"),
        (Some(j), "{}", 400, "invalid_request"),
        (Some(j), r#"{"username":"alice"}"#, 400, "invalid_request"),
        (Some(j), r#"{"password":"x"}"#, 400, "invalid_request"),
        (Some(j), r#"{"username":"alice","email":"a@b.c","password":"x"}"#, 400, "invalid_request"),
        (
            Some(j),
            r#"{"username":"alice","username":"bob","password":"x"}"#,
            400,
            "invalid_request",
        ),
        (Some(j), r#"{"username":1,"password":"x"}"#, 400, "invalid_request"),
        (Some(j), r#"{"username":null,"password":"x"}"#, 400, "invalid_request"),
        (Some(j), r#"{"username":"alice","password":["x"]}"#, 400, "invalid_request"),
        (Some(j), r#"{"username":"","password":"x"}"#, 400, "invalid_request"),
        (Some(j), r#"{"username":"alice","password":""}"#, 400, "invalid_request"),
        (Some(j), r#"{"username":"al\u0000ice","password":"x"}"#, 400, "invalid_request"),
        (Some(j), &huge, 413, "payload_too_large"),
    ];
    let long_cases = [
        (json!({"username": long_id, "password": "x"}).to_string(), 400, "invalid_request"),
        (json!({"username": "alice", "password": long_pw}).to_string(), 400, "invalid_request"),
        // Deep nesting inside an ignored member is still valid JSON: checked, not refused.
        (nested.clone(), 401, "invalid_credentials"),
        // The limits are inclusive: 320 and 1024 characters are checked, not refused.
        (
            json!({"username": "a".repeat(320), "password": "x"}).to_string(),
            401,
            "invalid_credentials",
        ),
        (
            json!({"username": "alice", "password": "é".repeat(1024)}).to_string(),
            401,
            "invalid_credentials",
        ),
    ];
    let all = cases
        .into_iter()
        .map(|(ct, b, s, e)| (ct, b.to_owned(), s, e))
        .chain(long_cases.into_iter().map(|(b, s, e)| (Some(j), b, s, e)));
    for (ct, body, want_status, want_error) in all {
        let headers: Vec<(&str, &str)> = ct.map(|c| ("content-type", c)).into_iter().collect();
        let (status, h, resp) = post_raw(&state, &headers, &body).await;
        let shown: String = body.chars().take(60).collect();
        assert_eq!(
            (status, resp["error"].as_str()),
            (want_status, Some(want_error)),
            "{ct:?} {shown}: {resp}"
        );
        assert_eq!(h["content-type"], "application/problem+json");
        assert_eq!(resp["type"], "about:blank");
        assert_eq!(resp["status"], want_status);
        assert!(resp["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(resp["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // A body nested 4,000 deep is refused without exhausting the stack.
    let deep = format!("{}{}", "[".repeat(4000), "]".repeat(4000));
    let (status, _, resp) = post_raw(&state, &[("content-type", j)], &deep).await;
    assert_eq!(status, 400, "{resp}");
    // Invalid UTF-8 in the body.
    let req = {
        let mut r = testkit::request("POST", "/login", &[("content-type", j)], "");
        *r.body_mut() = auth_shared::lambda_http::Body::Binary(vec![b'{', 0xff, 0xfe, b'}']);
        r
    };
    let (status, _, resp) = testkit::read(login::handle(&state, req).await);
    assert_eq!((status, resp["error"].as_str()), (400, Some("invalid_json")));
}

#[tokio::test]
async fn problem_details_never_echo_the_password() {
    let (_p, state) = setup().await;
    for body in [
        r#"{"username":"alice","password":123456789}"#,
        r#"{"username":"alice","password":{"secret":"hunter2hunter2"}}"#,
        r#"{"username":"alice","password":"hunter2hunter2","password":"x"}"#,
    ] {
        let (status, _, resp) =
            post_raw(&state, &[("content-type", "application/json")], body).await;
        assert_eq!(status, 400);
        let text = resp.to_string();
        assert!(!text.contains("123456789") && !text.contains("hunter2"), "{text}");
    }
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let (_p, state) = setup().await;
    for method in ["GET", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"] {
        let (status, headers, _) =
            testkit::read(login::handle(&state, testkit::request(method, "/login", &[], "")).await);
        assert_eq!(status, 405, "{method}");
        assert_eq!(headers["allow"], "POST");
    }
}

#[tokio::test]
async fn a_hash_below_the_policy_is_upgraded_at_login() {
    let (p, state) = setup().await;
    let weak = password::hash_with_salt("older secret", b"short-salt", 1000);
    p.test_db.create_user_with_hash("dave", "dave@example.com", &weak).await;
    let (status, _, _) =
        post(&state, json!({"username": "dave", "password": "older secret"})).await;
    assert_eq!(status, 200);
    let c = p.test_db.client().await;
    let stored: String = c
        .query_one("SELECT password_hash FROM users WHERE username = 'dave'", &[])
        .await
        .unwrap()
        .get(0);
    let parsed = password::parse(&stored).unwrap();
    assert_eq!(parsed.scheme, password::Scheme::PhcPbkdf2);
    assert_eq!(parsed.iterations(), Some(p.policy.iterations));
    assert_eq!(parsed.salt.len(), 16);
    assert_eq!(
        password::verify("older secret", &stored, p.policy),
        password::Verdict::Match { needs_upgrade: false }
    );
    let (status, _, _) =
        post(&state, json!({"username": "dave", "password": "older secret"})).await;
    assert_eq!(status, 200, "the upgraded hash still verifies");
}

#[tokio::test]
async fn database_outage_is_a_503() {
    let p = Parts::new(1).await;
    let dead = testkit::pg::with_dbname("postgres://u:p@127.0.0.1:1/x?sslmode=disable", "x");
    let settings = auth_shared::db::ConnectSettings::from_url(&dead).unwrap();
    let db = std::sync::Arc::new(
        auth_shared::db::Db::with_settings(settings.clone(), testkit::pg::db_config(settings, 1))
            .unwrap(),
    );
    let state = login::State::new(db, p.keys.clone(), p.tokens.clone(), p.policy);
    let (status, _, resp) = post(&state, json!({"username": "alice", "password": PW})).await;
    assert_eq!((status, resp["error"].as_str()), (503, Some("service_unavailable")));
    assert!(
        !resp.to_string().contains("127.0.0.1"),
        "no connection details in the response: {resp}"
    );
}
