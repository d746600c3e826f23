//! schemathesis generates requests from `openapi.yaml` (valid and invalid ones) against
//! `auth-local`, with and without a valid token, within a bounded budget: no server error, and
//! every response matches the document (status, content type, headers, schema).

use std::path::Path;

use testkit::TestDb;
use testkit::client::send;
use testkit::local::LocalServer;

const KEY: &str = "schemathesis-signing-key-of-more-than-32-bytes";

async fn schemathesis(base: &str, extra: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let st = root.join(".venv/bin/schemathesis");
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261128".into());
    let out = tokio::process::Command::new(&st)
        .current_dir(std::env::temp_dir())
        .arg("--config-file")
        .arg(root.join("e2e/schemathesis.toml"))
        .arg("run")
        .arg(root.join("openapi.yaml"))
        .args(["--url", base, "--checks", "all", "--max-examples", "150", "--seed", &seed])
        .args(["--no-color", "--generation-database", "none"])
        .args(extra)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}; run `make tools`", st.display()));
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found issues:\n{text}");
    // Without a token every /profile answer is 401 and schemathesis warns about it; warnings are
    // fine, failures are not.
    assert!(!text.contains('❌') && text.contains("passed"), "{text}");
    text
}

#[tokio::test]
async fn the_api_keeps_its_openapi_document() {
    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", "correct horse battery staple").await;
    let server = LocalServer::start(
        &testkit::binary("auth-local"),
        &[("DATABASE_URL", &db.url), ("SECRET_KEY", KEY), ("PBKDF2_ITERATIONS", "100000")],
    )
    .await
    .unwrap();
    let login = send(
        "POST",
        &server.url("/login"),
        &[("content-type", "application/json")],
        r#"{"username":"alice","password":"correct horse battery staple"}"#,
    )
    .await;
    let token = login.json()["access_token"].as_str().unwrap().to_owned();
    let with_token =
        schemathesis(&server.base, &["-H", &format!("Authorization: Bearer {token}")]).await;
    let without = schemathesis(&server.base, &[]).await;
    for run in [&with_token, &without] {
        let line = run.lines().find(|l| l.contains("generated")).unwrap_or_default();
        println!("schemathesis: {}", line.trim());
    }
    let log = server.output();
    assert!(!log.contains("status=500") && !log.contains("status=503"), "server errors in the log");
    assert!(log.contains("status=200") && log.contains("status=400") && log.contains("status=401"));
}
