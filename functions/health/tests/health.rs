//! GET/HEAD /health against a real PostgreSQL, an unreachable one, and one that never answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_shared::db::{ConnectSettings, Db};
use serde_json::json;
use testkit::pg::{TestDb, db_config};

fn db_at(url: &str, health_timeout: Duration) -> Arc<Db> {
    let settings = ConnectSettings::from_url(url).unwrap();
    let mut cfg = db_config(settings.clone(), 1);
    cfg.health_timeout = health_timeout;
    Arc::new(Db::with_settings(settings, cfg).unwrap())
}

#[tokio::test]
async fn healthy_database_answers_200_with_latency() {
    let db = TestDb::new().await;
    let state = health::State::new(db.db(1));
    let (status, headers, body) =
        testkit::read(health::handle(&state, testkit::request("GET", "/health", &[], "")).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert!(body["checks"]["database"]["latency_ms"].as_f64().is_some_and(|l| l >= 0.0), "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    let (status, head_headers, head_body) =
        testkit::read(health::handle(&state, testkit::request("HEAD", "/health", &[], "")).await);
    assert_eq!(status, 200);
    assert_eq!(head_body, serde_json::Value::Null, "HEAD has no body");
    assert_eq!(head_headers["content-type"], headers["content-type"]);

    let (status, headers, _) =
        testkit::read(health::handle(&state, testkit::request("POST", "/health", &[], "")).await);
    assert_eq!((status, headers["allow"].to_str().unwrap()), (405, "GET, HEAD"));
}

#[tokio::test]
async fn unreachable_database_answers_503_unreachable() {
    let state = health::State::new(db_at(
        "postgres://u:p@127.0.0.1:1/x?sslmode=disable",
        Duration::from_secs(2),
    ));
    let started = Instant::now();
    let (status, headers, body) =
        testkit::read(health::handle(&state, testkit::request("GET", "/health", &[], "")).await);
    assert_eq!(status, 503);
    assert_eq!(
        body,
        json!({"status": "error", "checks": {"database": {"status": "error", "error": "unreachable"}}})
    );
    assert_eq!(
        headers["content-type"], "application/json",
        "health keeps its own shape, not a problem"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn silent_database_answers_503_timeout_within_the_deadline() {
    let (port, held) = testkit::silent_listener().await;
    let deadline = Duration::from_millis(500);
    let state = health::State::new(db_at(
        &format!("postgres://u:p@127.0.0.1:{port}/x?sslmode=disable"),
        deadline,
    ));
    for method in ["GET", "HEAD"] {
        let started = Instant::now();
        let (status, _, body) = testkit::read(
            health::handle(&state, testkit::request(method, "/health", &[], "")).await,
        );
        let took = started.elapsed();
        assert_eq!(status, 503, "{method}");
        if method == "GET" {
            assert_eq!(body["checks"]["database"]["error"], "timeout");
        }
        // The contract is the deadline; the margin is generous because machines are shared.
        assert!(
            took >= deadline && took < deadline + Duration::from_millis(1500),
            "{method} took {took:?}"
        );
    }
    held.abort();
}
