//! An independent client, written in Python from the contract alone (urllib + PyJWT), passes
//! against `auth-local`: the Flask service's four routes, then sessions (refresh, reuse, logout
//! in every scope, password change) and the races between them.

use std::path::Path;

use testkit::TestDb;
use testkit::local::LocalServer;

const KEY: &str = "python-client-test-key-of-more-than-32-bytes";

/// Short enough for the client to wait out a consumed refresh token's grace period.
const REUSE_INTERVAL_SECONDS: &str = "2";

/// One account per session scenario of the client, so that none sees another's sessions
/// (client_test.py's docstring lists the same names).
const SESSION_USERS: [&str; 8] = [
    "lifecycle",
    "reuse",
    "refusals",
    "logout",
    "password",
    "race_refresh",
    "race_logout",
    "race_password",
];

#[tokio::test]
async fn the_python_client_passes() {
    let db = TestDb::new().await;
    let pw = "correct horse battery staple";
    db.create_user("alice", "alice@example.com", pw).await;
    db.create_user("carol", "carol@example.com", pw).await;
    for user in SESSION_USERS {
        db.create_user(user, &format!("{user}@example.com"), pw).await;
    }
    db.client()
        .await
        .execute("UPDATE users SET disabled_at = now() WHERE username = 'carol'", &[])
        .await
        .unwrap();
    let server = LocalServer::start(
        &testkit::binary("auth-local"),
        &[
            ("DATABASE_URL", &db.url),
            ("SECRET_KEY", KEY),
            ("PBKDF2_ITERATIONS", "100000"),
            ("REFRESH_REUSE_INTERVAL_SECONDS", REUSE_INTERVAL_SECONDS),
        ],
    )
    .await
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/client_test.py");
    let out = tokio::process::Command::new(testkit::venv_python())
        .arg(script)
        .args([&server.base, KEY, REUSE_INTERVAL_SECONDS])
        .output()
        .await
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}\nserver output:\n{}", server.output());
    assert!(text.contains("all promises kept"), "{text}");
    println!("{text}");
}
