//! The real login binary under the Lambda Runtime API: every bad configuration stops it at
//! start-up with exactly one log line naming the variable (never a panic, never a secret), and
//! an invocation that is not an HTTP event fails with a Runtime API error and one log line.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use testkit::events::TEST_KEY;
use testkit::runtime_api::{Function, Outcome, assert_start_up};

const BIN: &str = env!("CARGO_BIN_EXE_login");

async fn start_failure(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut f = Function::start(Path::new(BIN), env).await;
    // Valid configurations keep running; bad ones exit well within this.
    let code = f.exit_code(Duration::from_secs(5)).await;
    (code, f.output())
}

const DB: &str = "postgres://app:db-password-123@127.0.0.1:5432/auth?sslmode=disable";

#[tokio::test]
async fn bad_configuration_stops_start_up_with_one_line() {
    let short_key = "only-sixteen-byt";
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("SECRET_KEY", TEST_KEY)], "DATABASE_URL is not set"),
        (
            vec![("DATABASE_URL", "mysql://app:db-password-123@h/x"), ("SECRET_KEY", TEST_KEY)],
            "DATABASE_URL must be a postgres://",
        ),
        (
            vec![
                ("DATABASE_URL", "postgres://app:db-password-123@h:port/x"),
                ("SECRET_KEY", TEST_KEY),
            ],
            "DATABASE_URL is not a valid PostgreSQL URL",
        ),
        (
            vec![
                ("DATABASE_URL", "postgres://app:db-password-123@h/x?sslmode=verify-full"),
                ("SECRET_KEY", TEST_KEY),
            ],
            "DATABASE_URL has sslmode=verify-ca/verify-full without sslrootcert",
        ),
        (
            vec![
                ("DATABASE_URL", "postgres://app:db-password-123@h/x?sslmode=maybe"),
                ("SECRET_KEY", TEST_KEY),
            ],
            "DATABASE_URL has sslmode \"maybe\"",
        ),
        (
            vec![("DATABASE_URL", DB), ("DATABASE_SECRET_ARN", "arn:x"), ("SECRET_KEY", TEST_KEY)],
            "DATABASE_URL and DATABASE_SECRET_ARN are both set",
        ),
        (vec![("DATABASE_URL", DB)], "SECRET_ARN is not set"),
        (vec![("DATABASE_URL", DB), ("SECRET_KEY", short_key)], "SECRET_KEY is too short"),
        (
            vec![("DATABASE_URL", DB), ("SECRET_KEY", TEST_KEY), ("SECRET_ARN", "arn:x")],
            "SECRET_KEY and SECRET_ARN are both set",
        ),
        (
            vec![
                ("DATABASE_URL", DB),
                ("SECRET_KEY", TEST_KEY),
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ],
            "SECRET_KEY is refused inside AWS Lambda",
        ),
        (
            vec![("DATABASE_URL", DB), ("SECRET_KEY", TEST_KEY), ("TOKEN_TTL_SECONDS", "5")],
            "TOKEN_TTL_SECONDS must be a whole number from 60 to 86400",
        ),
        (
            vec![("DATABASE_URL", DB), ("SECRET_KEY", TEST_KEY), ("TOKEN_TTL_SECONDS", "one hour")],
            "TOKEN_TTL_SECONDS must be a whole number",
        ),
        (
            vec![("DATABASE_URL", DB), ("SECRET_KEY", TEST_KEY), ("PBKDF2_ITERATIONS", "1000")],
            "PBKDF2_ITERATIONS must be a whole number from 100000",
        ),
        (
            vec![("DATABASE_URL", DB), ("SECRET_KEY", TEST_KEY), ("DB_POOL_MAX_SIZE", "0")],
            "DB_POOL_MAX_SIZE must be",
        ),
        (
            vec![("DATABASE_URL", DB), ("SECRET_KEY", TEST_KEY), ("DB_CONNECT_TIMEOUT_MS", "-1")],
            "DB_CONNECT_TIMEOUT_MS must be",
        ),
        (
            vec![
                ("DATABASE_URL", DB),
                ("SECRET_KEY", TEST_KEY),
                ("HEALTH_DB_TIMEOUT_MS", "9999999"),
            ],
            "HEALTH_DB_TIMEOUT_MS must be",
        ),
        (
            vec![("DATABASE_URL", DB), ("SECRET_KEY", TEST_KEY), ("SECRET_CACHE_TTL_SECONDS", "x")],
            "SECRET_CACHE_TTL_SECONDS",
        ),
        (vec![("DATABASE_URL", DB), ("SECRET_KEY", TEST_KEY), ("SECRET_ARN", "")], ""),
    ];
    // The last case: an empty variable counts as unset, so that configuration is valid and
    // keeps running.
    for (env, want) in cases {
        assert_start_up(Path::new(BIN), &env, want, &["db-password-123", TEST_KEY, short_key])
            .await;
    }
}

#[tokio::test]
async fn json_log_format_gives_one_json_line() {
    let (code, out) =
        start_failure(&[("SECRET_KEY", TEST_KEY), ("AWS_LAMBDA_LOG_FORMAT", "JSON")]).await;
    assert_eq!(code, Some(1));
    let line = out.lines().find(|l| !l.trim().is_empty()).unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(doc["level"], "ERROR", "{doc}");
    assert!(doc["message"].as_str().unwrap().contains("DATABASE_URL"), "{doc}");
}

#[tokio::test]
async fn outside_lambda_the_binary_says_what_it_needs() {
    let out = tokio::process::Command::new(BIN).env_clear().output().await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("AWS_LAMBDA_RUNTIME_API is not set") && text.contains("auth-local"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

#[tokio::test]
async fn a_non_http_event_is_a_runtime_error_and_one_log_line() {
    let db = testkit::TestDb::new().await;
    let f = Function::start(Path::new(BIN), &[("DATABASE_URL", &db.url), ("SECRET_KEY", TEST_KEY)])
        .await;
    let before = f.output().lines().count();
    for event in [
        json!({"hello": "world"}),
        json!([1, 2, 3]),
        json!("text"),
        json!({"Records": [{"eventSource": "aws:sqs"}]}),
    ] {
        match f.invoke(event.clone()).await {
            Outcome::Error { body, .. } => {
                assert!(body.to_string().contains("expects a JSON payload"), "{body}")
            }
            Outcome::Response(r) => panic!("{event} got a response: {r}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = f.output();
    let new: Vec<&str> = out.lines().skip(before).filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(new.len(), 4, "one line per bad event:\n{out}");
    assert!(new.iter().all(|l| l.contains("ERROR")), "{out}");
    // The function keeps serving HTTP events afterwards.
    let ok = f
        .invoke(testkit::events::apigw(
            "POST",
            "/login",
            &[("content-type", "application/json")],
            Some("{}"),
        ))
        .await
        .response();
    assert_eq!(ok["statusCode"], 400);
}
