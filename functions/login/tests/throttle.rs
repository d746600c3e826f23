//! Brute-force throttling as the contract defines it, against a real PostgreSQL: five failures
//! then 429 with Retry-After for known and unknown identifiers alike, one count per account
//! whatever identifier form is used, no password check while locked, refused attempts neither
//! counting nor extending, success resetting, expiry after 15 quiet minutes, and concurrent
//! attempts unable to slip past the limit.

use std::sync::Arc;
use std::time::Duration;

use auth_shared::lambda_http::http::HeaderMap;
use serde_json::{Value, json};
use testkit::app::Parts;

const PW: &str = "correct horse battery staple";

async fn setup() -> (Parts, Arc<login::State>) {
    let p = Parts::new(8).await;
    let state = login::State::new(p.db.clone(), p.keys.clone(), p.tokens.clone(), p.policy);
    p.test_db.create_user("alice", "alice@example.com", PW).await;
    (p, Arc::new(state))
}

async fn post(state: &login::State, body: Value) -> (u16, HeaderMap, Value) {
    let req = testkit::request(
        "POST",
        "/login",
        &[("content-type", "application/json")],
        &body.to_string(),
    );
    testkit::read(login::handle(state, req).await)
}

async fn fail_times(state: &login::State, body: &Value, n: usize) {
    for i in 0..n {
        let (status, _, resp) = post(state, body.clone()).await;
        assert_eq!(status, 401, "failure {} should be a 401: {resp}", i + 1);
    }
}

async fn count(p: &Parts, like: &str) -> Vec<(String, i32)> {
    let c = p.test_db.client().await;
    c.query("SELECT key, failures FROM login_throttle WHERE key LIKE $1 ORDER BY key", &[&like])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn five_failures_then_429_for_known_and_unknown_identifiers_alike() {
    let (p, state) = setup().await;
    let mut seen = Vec::new();
    for who in ["alice", "nobody"] {
        let wrong = json!({"username": who, "password": "wrong"});
        fail_times(&state, &wrong, 5).await;
        let (status, mut headers, body) = post(&state, wrong.clone()).await;
        assert_eq!(status, 429, "{who}: {body}");
        assert_eq!(body["error"], "too_many_attempts");
        assert_eq!(headers["retry-after"], "1", "{who}: the first lock is one second");
        assert_eq!(headers["content-type"], "application/problem+json");
        headers.remove("x-request-id");
        seen.push((headers, body));
    }
    assert_eq!(seen[0], seen[1], "a 429 does not tell a known account from an unknown identifier");
    // Unknown identifiers are stored hashed, never in clear.
    let rows = count(&p, "%").await;
    assert!(rows.iter().all(|(k, _)| !k.contains("nobody")), "{rows:?}");
    assert_eq!(rows.len(), 2);
}

#[tokio::test]
async fn username_email_and_case_variants_share_one_count() {
    let (p, state) = setup().await;
    for body in [
        json!({"username": "alice", "password": "w1"}),
        json!({"username": "ALICE", "password": "w2"}),
        json!({"email": "alice@example.com", "password": "w3"}),
        json!({"email": "Alice@EXAMPLE.com", "password": "w4"}),
        json!({"username": "alice@example.com", "password": "w5"}),
    ] {
        assert_eq!(post(&state, body).await.0, 401);
    }
    let (status, _, _) = post(&state, json!({"username": "aLiCe", "password": "w6"})).await;
    assert_eq!(status, 429);
    assert_eq!(count(&p, "u:%").await.len(), 1);
    // Unknown identifiers are counted per lower-cased identifier too.
    fail_times(&state, &json!({"username": "Ghost", "password": "x"}), 4).await;
    assert_eq!(post(&state, json!({"username": "GHOST", "password": "x"})).await.0, 401);
    assert_eq!(post(&state, json!({"username": "ghost", "password": "x"})).await.0, 429);
}

#[tokio::test]
async fn a_locked_account_is_refused_even_with_the_right_password_and_waits_double_each_time() {
    let (p, state) = setup().await;
    let wrong = json!({"username": "alice", "password": "wrong"});
    let right = json!({"username": "alice", "password": PW});
    fail_times(&state, &wrong, 5).await;
    // Locked: the right password is not even checked.
    let (status, headers, _) = post(&state, right.clone()).await;
    assert_eq!(
        (status, &headers["retry-after"]),
        (429, &"1".parse::<auth_shared::lambda_http::http::HeaderValue>().unwrap())
    );
    // Refused attempts neither count nor extend the wait.
    for _ in 0..10 {
        assert_eq!(post(&state, wrong.clone()).await.0, 429);
    }
    assert_eq!(count(&p, "u:%").await[0].1, 5);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Failure 6 locks for 2 s.
    assert_eq!(post(&state, wrong.clone()).await.0, 401);
    let (status, headers, _) = post(&state, wrong.clone()).await;
    assert_eq!(status, 429);
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // After the wait, the right password works and clears the count.
    assert_eq!(post(&state, right.clone()).await.0, 200);
    assert!(count(&p, "u:%").await.is_empty(), "success resets the count");
    fail_times(&state, &wrong, 4).await;
    assert_eq!(post(&state, right).await.0, 200, "four failures do not lock");
}

#[tokio::test]
async fn counts_expire_after_fifteen_quiet_minutes_and_their_rows_go() {
    let (p, state) = setup().await;
    fail_times(&state, &json!({"username": "alice", "password": "wrong"}), 5).await;
    fail_times(&state, &json!({"username": "stale-unknown", "password": "x"}), 3).await;
    let c = p.test_db.client().await;
    // Move both counts 16 minutes into the past, as if nobody had tried since.
    c.execute("UPDATE login_throttle SET last_failure_at = now() - interval '16 minutes'", &[])
        .await
        .unwrap();
    // The next failure for alice starts from one; the other expired row is removed on the way.
    assert_eq!(post(&state, json!({"username": "alice", "password": "wrong"})).await.0, 401);
    let rows = count(&p, "%").await;
    assert_eq!(rows.len(), 1, "expired rows are removed: {rows:?}");
    assert_eq!(rows[0].1, 1);
    assert!(rows[0].0.starts_with("u:"));
}

#[tokio::test]
async fn concurrent_attempts_cannot_slip_past_the_limit() {
    let (p, state) = setup().await;
    let launched = std::time::Instant::now();
    let handles: Vec<_> = (0..24)
        .map(|i| {
            let state = state.clone();
            tokio::spawn(async move {
                post(&state, json!({"username": "alice", "password": format!("wrong {i}")})).await.0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    // Exactly five, unless the machine is so slow that the run outlasts the first lock (1 s,
    // then 2 s, ...), after which a later attempt is rightly checked too.
    let elapsed = launched.elapsed().as_secs_f64();
    let allowed = 5 + (1..12).filter(|k| (2f64.powi(*k) - 1.0) <= elapsed).count();
    assert!((5..=allowed).contains(&checked) && checked + refused == 24, "{statuses:?}");
    assert_eq!(count(&p, "u:%").await[0].1 as usize, checked);
}
