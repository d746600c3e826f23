//! `auth-local` exercised as a process: its own PostgreSQL and demo user, a given database and
//! key, the whole login → profile → password change flow, CORS, and a clean Ctrl-C.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use testkit::TestDb;
use testkit::client::send;
use testkit::local::LocalServer;

const BIN: &str = env!("CARGO_BIN_EXE_auth-local");
const KEY: &str = "a-local-signing-key-with-more-than-32-bytes";

async fn login(server: &LocalServer, body: Value) -> testkit::client::Reply {
    send("POST", &server.url("/login"), &[("content-type", "application/json")], body.to_string())
        .await
}

#[tokio::test]
async fn without_database_url_it_runs_its_own_postgres_and_stops_cleanly() {
    let mut server = LocalServer::start(Path::new(BIN), &[]).await.unwrap();
    let out = server.output();
    assert!(out.contains("SECRET_KEY is not set"), "{out}");
    let password = server.demo_password.clone().expect("demo password printed");
    let data_dir = server.data_dir.clone().expect("cluster directory printed");
    assert!(Path::new(&data_dir).exists());

    let health = send("GET", &server.url("/health"), &[], "").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let head = send("HEAD", &server.url("/health"), &[], "").await;
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(send("GET", &server.url("/test-db"), &[], "").await.status, 200);

    let ok = login(&server, json!({"username": "demo", "password": password})).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let token = ok.json()["access_token"].as_str().unwrap().to_owned();
    let by_email = login(&server, json!({"email": "DEMO@example.com", "password": password})).await;
    assert_eq!(by_email.status, 200);
    let profile =
        send("GET", &server.url("/profile"), &[("authorization", &format!("Bearer {token}"))], "")
            .await;
    assert_eq!(profile.status, 200);
    assert_eq!(profile.json()["username"], "demo");
    assert!(profile.json()["last_login_at"].is_string());

    let missing = send("GET", &server.url("/nowhere"), &[], "").await;
    assert_eq!((missing.status, missing.json()["error"].as_str()), (404, Some("not_found")));
    assert_eq!(missing.header("content-type"), Some("application/problem+json"));
    assert!(missing.header("x-request-id").is_some());
    let wrong = send("GET", &server.url("/login"), &[], "").await;
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("POST")));
    let trailing = send("GET", &server.url("/health/"), &[], "").await;
    assert_eq!(trailing.status, 404, "routes are exact, as in API Gateway");

    // Ctrl-C: the server and its PostgreSQL stop, and the cluster's files go.
    assert_eq!(server.interrupt(Duration::from_secs(30)).await, Some(0), "{}", server.output());
    assert!(!Path::new(&data_dir).exists(), "cluster directory left behind");
    let ps = std::process::Command::new("pgrep").args(["-f", &data_dir]).output().unwrap();
    assert!(
        ps.stdout.is_empty(),
        "a PostgreSQL process is still running: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
}

#[tokio::test]
async fn with_database_url_and_key_it_migrates_and_serves_that_database() {
    let db = TestDb::empty().await;
    let server = LocalServer::start(
        Path::new(BIN),
        &[("DATABASE_URL", &db.url), ("SECRET_KEY", KEY), ("PBKDF2_ITERATIONS", "100000")],
    )
    .await
    .unwrap();
    let out = server.output();
    assert!(out.contains("applied migration 0001 users"), "{out}");
    assert!(server.demo_password.is_none() && !out.contains("SECRET_KEY is not set"), "{out}");
    db.create_user("erin", "erin@example.com", "erin's password").await;

    let ok = login(&server, json!({"username": "erin", "password": "erin's password"})).await;
    assert_eq!(ok.status, 200);
    // The token is signed with SECRET_KEY: check the HMAC here, independently.
    let token = ok.json()["access_token"].as_str().unwrap().to_owned();
    let (signed, sig) = token.rsplit_once('.').unwrap();
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    assert_eq!(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()), sig);
}

#[tokio::test]
async fn a_password_change_or_disable_ends_old_tokens() {
    let db = TestDb::new().await;
    let server = LocalServer::start(
        Path::new(BIN),
        &[("DATABASE_URL", &db.url), ("SECRET_KEY", KEY), ("PBKDF2_ITERATIONS", "100000")],
    )
    .await
    .unwrap();
    db.create_user("frank", "frank@example.com", "old password").await;
    let bearer = |t: &str| format!("Bearer {t}");
    let profile = |t: String| {
        let url = server.url("/profile");
        async move { send("GET", &url, &[("authorization", &t)], "").await }
    };
    let old = login(&server, json!({"username": "frank", "password": "old password"})).await.json()
        ["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(profile(bearer(&old)).await.status, 200);

    let c = db.client().await;
    let hash = auth_shared::password::hash("new password", testkit::pg::TEST_POLICY);
    assert!(auth_shared::users::set_password(&c, "frank", &hash).await.unwrap());
    let refused = profile(bearer(&old)).await;
    assert_eq!((refused.status, refused.json()["error"].as_str()), (401, Some("invalid_token")));
    assert_eq!(
        refused.header("www-authenticate"),
        Some(r#"Bearer realm="auth", error="invalid_token""#)
    );
    assert_eq!(
        login(&server, json!({"username": "frank", "password": "old password"})).await.status,
        401
    );

    // A login right after the change gets a token that works at once.
    let new = login(&server, json!({"username": "frank", "password": "new password"})).await;
    assert_eq!(new.status, 200);
    let new = new.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(profile(bearer(&new)).await.status, 200);
    // ...and is not dated in the future, which strict verifiers (PyJWT) would refuse.
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(new.split('.').nth(1).unwrap()).unwrap())
            .unwrap();
    assert!(claims["iat"].as_i64().unwrap() <= auth_shared::token::now(), "{claims}");

    assert!(auth_shared::users::set_disabled(&c, "frank", true).await.unwrap());
    assert_eq!(profile(bearer(&new)).await.status, 401);
    assert_eq!(
        login(&server, json!({"username": "frank", "password": "new password"})).await.status,
        401
    );
}

#[tokio::test]
async fn cors_follows_the_allowed_origins() {
    let db = TestDb::new().await;
    let server = LocalServer::start(
        Path::new(BIN),
        &[
            ("DATABASE_URL", &db.url),
            ("SECRET_KEY", KEY),
            ("CORS_ALLOWED_ORIGINS", "http://app.example, https://other.example:8443"),
        ],
    )
    .await
    .unwrap();
    let preflight = |origin: &'static str| {
        let url = server.url("/login");
        async move {
            send(
                "OPTIONS",
                &url,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type"),
                ],
                "",
            )
            .await
        }
    };
    let ok = preflight("http://app.example").await;
    assert_eq!(ok.status, 204);
    assert_eq!(ok.header("access-control-allow-origin"), Some("http://app.example"));
    assert_eq!(ok.header("access-control-allow-methods"), Some("POST"));
    assert!(ok.header("access-control-allow-headers").unwrap().contains("authorization"));
    let denied = preflight("http://evil.example").await;
    assert!(denied.header("access-control-allow-origin").is_none());

    let actual =
        send("GET", &server.url("/health"), &[("origin", "https://other.example:8443")], "").await;
    assert_eq!(actual.header("access-control-allow-origin"), Some("https://other.example:8443"));
    assert_eq!(
        actual.header("access-control-expose-headers"),
        Some("Retry-After, WWW-Authenticate, x-request-id")
    );
    let foreign =
        send("GET", &server.url("/health"), &[("origin", "http://evil.example")], "").await;
    assert_eq!(foreign.status, 200);
    assert!(foreign.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_cors_configuration_no_cors_headers_are_sent() {
    let db = TestDb::new().await;
    let server =
        LocalServer::start(Path::new(BIN), &[("DATABASE_URL", &db.url), ("SECRET_KEY", KEY)])
            .await
            .unwrap();
    let pre = send(
        "OPTIONS",
        &server.url("/login"),
        &[("origin", "http://app.example"), ("access-control-request-method", "POST")],
        "",
    )
    .await;
    assert_eq!(pre.status, 405);
    assert!(pre.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn bad_configuration_stops_it_with_a_clear_message() {
    let db = TestDb::new().await;
    for (env, want) in [
        (
            vec![("DATABASE_URL", db.url.as_str()), ("CORS_ALLOWED_ORIGINS", "app.example/")],
            "CORS_ALLOWED_ORIGINS",
        ),
        (
            vec![("DATABASE_URL", db.url.as_str()), ("SECRET_KEY", "short")],
            "SECRET_KEY is too short",
        ),
        (
            vec![("DATABASE_URL", "postgres://u:hunter22@127.0.0.1:1/x?sslmode=disable")],
            "Connection refused",
        ),
    ] {
        let err = LocalServer::start(Path::new(BIN), &env).await.err().expect("start-up fails");
        assert!(err.contains(want), "{env:?}: {err}");
        assert!(!err.contains("hunter22") && !err.contains("panicked"), "{err}");
    }
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let db = TestDb::new().await;
    let server =
        LocalServer::start(Path::new(BIN), &[("DATABASE_URL", &db.url), ("SECRET_KEY", KEY)])
            .await
            .unwrap();
    for size in [9 * 1024, 2 * 1024 * 1024] {
        let body = format!("{{\"username\":\"a\",\"password\":\"{}\"}}", "x".repeat(size));
        let r = send("POST", &server.url("/login"), &[("content-type", "application/json")], body)
            .await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (413, Some("payload_too_large")),
            "{size}"
        );
    }
}

#[tokio::test]
async fn header_floods_are_refused_without_harm() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new().await;
    let server =
        LocalServer::start(Path::new(BIN), &[("DATABASE_URL", &db.url), ("SECRET_KEY", KEY)])
            .await
            .unwrap();
    let addr = server.base.trim_start_matches("http://").to_owned();
    for (case, extra) in [
        ("500 headers", (0..500).map(|i| format!("x-flood-{i}: {i}\r\n")).collect::<String>()),
        ("one 200 KiB header", format!("x-big: {}\r\n", "a".repeat(200 * 1024))),
        (
            "a 64 KiB Authorization header",
            format!("authorization: Bearer {}\r\n", "a".repeat(64 * 1024)),
        ),
    ] {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let req = format!("GET /profile HTTP/1.1\r\nhost: x\r\n{extra}connection: close\r\n\r\n");
        let _ = s.write_all(req.as_bytes()).await;
        let mut resp = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut resp)).await;
        let head = String::from_utf8_lossy(&resp[..resp.len().min(40)]).to_string();
        assert!(head.starts_with("HTTP/1.1 4"), "{case}: {head:?}");
    }
    // The server is still there.
    assert_eq!(send("GET", &server.url("/health"), &[], "").await.status, 200);
    assert!(!server.output().contains("panicked"));
}
