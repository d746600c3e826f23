//! GET /profile against a real PostgreSQL: the profile for a valid token, and 401
//! `invalid_token` with the RFC 6750 challenge for every token or account that must not pass.

use auth_shared::signing::Key;
use auth_shared::signing::keys::Keys;
use auth_shared::token::{self};
use auth_shared::users;
use serde_json::Value;
use std::sync::Arc;
use testkit::app::{Parts, token_config};
use testkit::events::TEST_KEY;
use uuid::Uuid;

async fn setup() -> (Parts, profile::State, Uuid) {
    let p = Parts::new(2).await;
    let state = profile::State::new(p.db.clone(), p.keys.clone(), p.tokens.clone());
    let id =
        p.test_db.create_user("alice", "alice@example.com", "correct horse battery staple").await;
    (p, state, id)
}

async fn get(
    state: &profile::State,
    auth: Option<&str>,
) -> (u16, auth_shared::lambda_http::http::HeaderMap, Value) {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    testkit::read(profile::handle(state, testkit::request("GET", "/profile", &headers, "")).await)
}

fn token_for(id: Uuid, iat: i64) -> String {
    let key = Key::new("local", TEST_KEY.as_bytes()).unwrap();
    token::issue(&token_config(), &key, id, "alice", None, iat).unwrap()
}

fn assert_refused(
    resp: &(u16, auth_shared::lambda_http::http::HeaderMap, Value),
    presented: bool,
    case: &str,
) {
    let (status, headers, body) = resp;
    assert_eq!(*status, 401, "{case}: {body}");
    assert_eq!(body["error"], "invalid_token", "{case}");
    let challenge = if presented {
        r#"Bearer realm="auth", error="invalid_token""#
    } else {
        r#"Bearer realm="auth""#
    };
    assert_eq!(headers["www-authenticate"], challenge, "{case}");
    assert_eq!(headers["cache-control"], "no-store", "{case}");
}

#[tokio::test]
async fn a_valid_token_gets_the_profile() {
    let (p, state, id) = setup().await;
    let (status, headers, body) =
        get(&state, Some(&format!("Bearer {}", token_for(id, token::now())))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["id"], id.to_string());
    assert_eq!(body["username"], "alice");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["full_name"], "Test User");
    assert!(
        body["created_at"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')),
        "{body}"
    );
    assert_eq!(body["last_login_at"], Value::Null);
    assert_eq!(body["email_verified"], true);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "exactly the documented members, never a hash: {body}");
    assert!(!body.to_string().contains("pbkdf2"));

    let c = p.test_db.client().await;
    c.execute("UPDATE users SET last_login_at = now(), full_name = NULL", &[]).await.unwrap();
    let (_, _, body) = get(&state, Some(&format!("bearer {}", token_for(id, token::now())))).await;
    assert!(body["last_login_at"].is_string());
    assert_eq!(body["full_name"], Value::Null);
}

#[tokio::test]
async fn missing_and_malformed_authorization_is_refused() {
    let (_p, state, id) = setup().await;
    assert_refused(&get(&state, None).await, false, "no header");
    let good = token_for(id, token::now());
    let long = format!("Bearer {}.{}.{}", "a".repeat(3000), "b".repeat(3000), "c".repeat(100));
    for (case, auth) in [
        ("empty", String::new()),
        ("scheme only", "Bearer".into()),
        ("basic", "Basic YWxpY2U6cHc=".into()),
        ("not a jwt", "Bearer not.a.token".into()),
        ("two segments", "Bearer abc.def".into()),
        ("four segments", format!("Bearer {good}.x")),
        ("spaces inside", format!("Bearer {} x", good)),
        ("non-base64", "Bearer !!!.???.***".into()),
        ("huge", long),
        ("token without scheme", good.clone()),
        ("two tokens", format!("Bearer {good}, Bearer {good}")),
    ] {
        assert_refused(&get(&state, Some(&auth)).await, true, case);
    }
}

#[tokio::test]
async fn expired_future_and_foreign_tokens_are_refused() {
    let (_p, state, id) = setup().await;
    let now = token::now();
    let other_key = Key::new("local", &[7u8; 32]).unwrap();
    let other_kid = Key::new("v2", TEST_KEY.as_bytes()).unwrap();
    let foreign_iss =
        auth_shared::config::TokenConfig { issuer: "elsewhere".into(), ..token_config() };
    let foreign_aud =
        auth_shared::config::TokenConfig { audience: "elsewhere".into(), ..token_config() };
    for (case, tok) in [
        ("expired", token_for(id, now - 3600 - 60)),
        ("not yet valid", token_for(id, now + 120)),
        ("another key", token::issue(&token_config(), &other_key, id, "alice", None, now).unwrap()),
        ("unknown kid", token::issue(&token_config(), &other_kid, id, "alice", None, now).unwrap()),
        (
            "wrong issuer",
            token::issue(
                &foreign_iss,
                &Key::new("local", TEST_KEY.as_bytes()).unwrap(),
                id,
                "alice",
                None,
                now,
            )
            .unwrap(),
        ),
        (
            "wrong audience",
            token::issue(
                &foreign_aud,
                &Key::new("local", TEST_KEY.as_bytes()).unwrap(),
                id,
                "alice",
                None,
                now,
            )
            .unwrap(),
        ),
        ("unknown user", token_for(Uuid::from_u128(42), now)),
    ] {
        assert_refused(&get(&state, Some(&format!("Bearer {tok}"))).await, true, case);
    }
    // Within the 30 s leeway a token is still good.
    let (status, _, _) = get(&state, Some(&format!("Bearer {}", token_for(id, now + 20)))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn deleted_disabled_and_password_changed_accounts_lose_their_tokens() {
    let (p, state, id) = setup().await;
    let c = p.test_db.client().await;
    let bearer = format!("Bearer {}", token_for(id, token::now()));
    assert_eq!(get(&state, Some(&bearer)).await.0, 200);

    users::set_disabled(&c, "alice", true).await.unwrap();
    assert_refused(&get(&state, Some(&bearer)).await, true, "disabled");
    users::set_disabled(&c, "alice", false).await.unwrap();
    assert_eq!(get(&state, Some(&bearer)).await.0, 200, "enabled again");

    users::set_password(
        &c,
        "alice",
        &auth_shared::password::hash("a new password", testkit::pg::TEST_POLICY),
    )
    .await
    .unwrap();
    assert_refused(&get(&state, Some(&bearer)).await, true, "issued before the password change");

    users::delete(&c, "alice").await.unwrap();
    let fresh = format!("Bearer {}", token_for(id, token::now() + 2));
    assert_refused(&get(&state, Some(&fresh)).await, true, "deleted");
}

#[tokio::test]
async fn tokens_are_checked_against_the_key_their_kid_names() {
    let (p, _state, id) = setup().await;
    // A key set is looked up by kid; a token naming no known version fails even if its
    // signature would verify with the current key.
    let keys = Arc::new(Keys::local(TEST_KEY.as_bytes()).unwrap());
    let state = profile::State::new(p.db.clone(), keys, p.tokens.clone());
    let renamed = token::issue(
        &token_config(),
        &Key::new("v9", TEST_KEY.as_bytes()).unwrap(),
        id,
        "alice",
        None,
        token::now(),
    )
    .unwrap();
    assert_refused(&get(&state, Some(&format!("Bearer {renamed}"))).await, true, "kid v9");
}

#[tokio::test]
async fn other_methods_get_405() {
    let (_p, state, _) = setup().await;
    for method in ["POST", "PUT", "DELETE", "HEAD"] {
        let (status, headers, _) = testkit::read(
            profile::handle(&state, testkit::request(method, "/profile", &[], "")).await,
        );
        assert_eq!(
            (status, &headers["allow"]),
            (405, &"GET".parse::<auth_shared::lambda_http::http::HeaderValue>().unwrap()),
            "{method}"
        );
    }
}

#[tokio::test]
async fn header_floods_get_a_401_not_a_crash() {
    let (_p, state, _) = setup().await;
    let names: Vec<String> = (0..2000).map(|i| format!("x-flood-{i}")).collect();
    let huge = format!("Bearer {}", "A".repeat(100_000));
    let mut headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    headers.push(("authorization", &huge));
    let resp = testkit::read(
        profile::handle(&state, testkit::request("GET", "/profile", &headers, "")).await,
    );
    assert_refused(&resp, true, "flood");
}
