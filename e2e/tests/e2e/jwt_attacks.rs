//! The JWT attack suite: tokens forged by an independent library (PyJWT, cryptography) are sent
//! to `auth-local`'s /profile; every attack gets 401 `invalid_token` with the RFC 6750 challenge,
//! none a 500, and the two control tokens pass (so the harness can tell).

use std::path::Path;

use serde_json::Value;
use testkit::TestDb;
use testkit::client::send;
use testkit::local::LocalServer;

const KEY: &str = "jwt-attack-suite-key-of-more-than-32-bytes";

#[tokio::test]
async fn every_forged_token_is_refused() {
    let db = TestDb::new().await;
    let id = db.create_user("alice", "alice@example.com", "correct horse battery staple").await;
    let server = LocalServer::start(
        &testkit::binary("auth-local"),
        &[("DATABASE_URL", &db.url), ("SECRET_KEY", KEY)],
    )
    .await
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/forge_tokens.py");
    let out = tokio::process::Command::new(testkit::venv_python())
        .arg(script)
        .args([KEY, &id.to_string(), "local"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tokens: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(tokens.len() > 40);
    for t in tokens {
        let (name, token, ok) =
            (t["name"].as_str().unwrap(), t["token"].as_str().unwrap(), t["ok"].as_bool().unwrap());
        let r = send(
            "GET",
            &server.url("/profile"),
            &[("authorization", &format!("Bearer {token}"))],
            "",
        )
        .await;
        if ok {
            assert_eq!(r.status, 200, "{name}: {:?}", r.body);
            continue;
        }
        assert_eq!(r.status, 401, "{name}: {:?}", r.body);
        assert_eq!(r.json()["error"], "invalid_token", "{name}");
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="auth", error="invalid_token""#),
            "{name}"
        );
    }
    assert!(!server.output().contains("panicked"));
}
