//! An independent client, written in Python from the contract alone (urllib + PyJWT), passes
//! against `auth-local`.

use std::path::Path;

use testkit::TestDb;
use testkit::local::LocalServer;

const KEY: &str = "python-client-test-key-of-more-than-32-bytes";

#[tokio::test]
async fn the_python_client_passes() {
    let db = TestDb::new().await;
    let pw = "correct horse battery staple";
    db.create_user("alice", "alice@example.com", pw).await;
    db.create_user("carol", "carol@example.com", pw).await;
    db.client()
        .await
        .execute("UPDATE users SET disabled_at = now() WHERE username = 'carol'", &[])
        .await
        .unwrap();
    let server = LocalServer::start(
        &testkit::binary("auth-local"),
        &[("DATABASE_URL", &db.url), ("SECRET_KEY", KEY), ("PBKDF2_ITERATIONS", "100000")],
    )
    .await
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/client_test.py");
    let out = tokio::process::Command::new(testkit::venv_python())
        .arg(script)
        .args([&server.base, KEY])
        .output()
        .await
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}\nserver output:\n{}", server.output());
    assert!(text.contains("all promises kept"), "{text}");
}
