//! A database connection that goes silent (the host stops answering, the socket stays open: a
//! failover, an expired NAT or ENI flow) costs every function one 503 at most: whatever
//! deadline fires discards the connection it interrupted, so the warm process recovers on the
//! next request instead of timing out on the same dead socket for minutes. Each real function
//! binary runs behind the Runtime API emulator, its database reached through a relay that goes
//! silent on demand.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::events::{self, SAMPLE_USER, TEST_KEY};
use testkit::relay::Relay;
use testkit::runtime_api::Function;

/// Short deadlines, so each 503 comes quickly.
const DEADLINE_MS: &str = "1000";

struct Case {
    name: &'static str,
    event: Value,
}

fn cases(token: &str) -> Vec<Case> {
    let (username, _, password) = SAMPLE_USER;
    let body = json!({"username": username, "password": password}).to_string();
    vec![
        Case { name: "health", event: events::apigw("GET", "/health", &[], None) },
        Case { name: "test-db", event: events::apigw("GET", "/test-db", &[], None) },
        Case {
            name: "login",
            event: events::apigw(
                "POST",
                "/login",
                &[("content-type", "application/json")],
                Some(&body),
            ),
        },
        Case {
            name: "profile",
            event: events::apigw(
                "GET",
                "/profile",
                &[("authorization", &format!("Bearer {token}"))],
                None,
            ),
        },
    ]
}

async fn status(f: &Function, event: &Value) -> (u64, Duration) {
    let started = Instant::now();
    let resp = f.invoke(event.clone()).await.response();
    (resp["statusCode"].as_u64().unwrap_or_default(), started.elapsed())
}

/// The database URL with its host and port replaced by the relay's.
async fn through_relay(url: &str) -> (Relay, String) {
    let (before, rest) = url.split_once('@').expect("user@host in the URL");
    let (host_port, after) = rest.split_once('/').expect("host/db in the URL");
    let relay = Relay::start(host_port.to_owned()).await;
    let url = format!("{before}@127.0.0.1:{}/{after}", relay.port);
    (relay, url)
}

#[tokio::test]
async fn a_silent_connection_costs_one_503_at_most() {
    let db = testkit::TestDb::new().await;
    let (username, email, password) = SAMPLE_USER;
    let user_id = db.create_user(username, email, password).await;
    let token = events::fresh_token(user_id, username);
    let iterations = testkit::pg::TEST_POLICY.iterations.to_string();
    for case in cases(&token) {
        let (relay, url) = through_relay(&db.url).await;
        let binary = testkit::binary(case.name);
        let f = Function::start(
            Path::new(&binary),
            &[
                ("DATABASE_URL", &url),
                ("SECRET_KEY", TEST_KEY),
                ("PBKDF2_ITERATIONS", &iterations),
                ("DB_STATEMENT_TIMEOUT_MS", DEADLINE_MS),
                ("HEALTH_DB_TIMEOUT_MS", DEADLINE_MS),
                ("DB_CONNECT_TIMEOUT_MS", DEADLINE_MS),
            ],
        )
        .await;
        let name = case.name;
        assert_eq!(status(&f, &case.event).await.0, 200, "{name}: {}", f.output());

        // The database goes silent while a request is in flight: that request gets 503
        // within its deadline (login's transaction has three), and once the database answers
        // again the next request succeeds on a new connection.
        relay.silence();
        let (code, took) = status(&f, &case.event).await;
        assert_eq!(code, 503, "{name} while silent: {}", f.output());
        assert!(took < Duration::from_secs(10), "{name}: the 503 took {took:?}");
        relay.restore();
        for i in 0..3 {
            let (code, _) = status(&f, &case.event).await;
            assert_eq!(
                code,
                200,
                "{name}: request {i} after the database came back: {}",
                f.output()
            );
        }

        // The flow dies while the pooled connection is idle: the next request may spend its
        // deadline finding out (one 503), the one after it must succeed.
        relay.silence();
        relay.restore();
        let mut failures = 0;
        for _ in 0..4 {
            match status(&f, &case.event).await.0 {
                200 => {}
                503 => failures += 1,
                other => panic!("{name}: {other}"),
            }
        }
        assert!(failures <= 1, "{name}: {failures} 503s after an idle connection went silent");
        assert!(relay.connections() >= 3, "{name}: dead connections were not replaced");
    }
}

#[tokio::test]
async fn a_database_that_never_answers_costs_one_connect_deadline_cold_or_warm() {
    // Accepts TCP and never answers: the cold start's warm-up connection and the first request
    // wait on the same connection attempt, so the 503 comes after one deadline, not two.
    let (port, held) = testkit::silent_listener().await;
    let url = format!("postgres://u:p@127.0.0.1:{port}/x?sslmode=disable");
    let deadline = Duration::from_millis(DEADLINE_MS.parse().unwrap());
    let (username, _, password) = SAMPLE_USER;
    let body = json!({"username": username, "password": password}).to_string();
    let login =
        events::apigw("POST", "/login", &[("content-type", "application/json")], Some(&body));
    let f = Function::start(
        &testkit::binary("login"),
        &[
            ("DATABASE_URL", &url),
            ("SECRET_KEY", TEST_KEY),
            ("DB_CONNECT_TIMEOUT_MS", DEADLINE_MS),
            ("PBKDF2_ITERATIONS", "100000"),
        ],
    )
    .await;
    for when in ["cold", "warm"] {
        let (code, took) = status(&f, &login).await;
        assert_eq!(code, 503, "{when}: {}", f.output());
        assert!(
            took < deadline + Duration::from_millis(900),
            "{when}: the 503 took {took:?}, past one {deadline:?} deadline"
        );
    }
    held.abort();
}
