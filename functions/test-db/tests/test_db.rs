//! GET /test-db against a real PostgreSQL and an unreachable one.

use std::sync::Arc;

use auth_shared::db::{ConnectSettings, Db};
use testkit::pg::{TestDb, db_config};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[tokio::test]
async fn returns_the_database_clock() {
    let db = TestDb::new().await;
    let state = test_db::State::new(db.db(1));
    let (status, headers, body) =
        testkit::read(test_db::handle(&state, testkit::request("GET", "/test-db", &[], "")).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(headers["content-type"], "application/json");
    let ts = OffsetDateTime::parse(body["timestamp"].as_str().unwrap(), &Rfc3339).unwrap();
    let skew = (OffsetDateTime::now_utc() - ts).abs();
    assert!(skew < time::Duration::seconds(60), "database clock {ts} is far from ours");
    assert!(body["latency_ms"].as_f64().is_some());
    let (status, _, _) = testkit::read(
        test_db::handle(&state, testkit::request("DELETE", "/test-db", &[], "")).await,
    );
    assert_eq!(status, 405);
}

#[tokio::test]
async fn unreachable_database_is_a_503_problem() {
    let settings =
        ConnectSettings::from_url("postgres://u:secretpw@127.0.0.1:1/x?sslmode=disable").unwrap();
    let db = Arc::new(Db::with_settings(settings.clone(), db_config(settings, 1)).unwrap());
    let state = test_db::State::new(db);
    let (status, headers, body) =
        testkit::read(test_db::handle(&state, testkit::request("GET", "/test-db", &[], "")).await);
    assert_eq!((status, body["error"].as_str()), (503, Some("service_unavailable")));
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(!body.to_string().contains("secretpw") && !body.to_string().contains("127.0.0.1"));
}
