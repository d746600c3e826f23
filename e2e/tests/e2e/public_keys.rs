//! Tokens other services verify without the secret: `auth-local` with RS256 serves OpenID
//! discovery and a JWKS from which an independent verifier (PyJWT's `PyJWKClient`) checks its
//! tokens, and refuses forged ones (HS256 over the public key, `none`, another RSA key); bad
//! signing settings stop the functions at start-up with one line naming the variable.

use std::path::Path;
use std::time::Duration;

use testkit::TestDb;
use testkit::local::LocalServer;
use testkit::runtime_api::Function;

const PW: &str = "correct horse battery staple";

fn rsa_pem(bits: usize) -> String {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).unwrap();
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

#[tokio::test]
async fn pyjwt_verifies_rs256_tokens_from_the_published_keys_alone() {
    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", PW).await;
    let port = LocalServer::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    // No SECRET_KEY: auth-local makes an RSA key for the run.
    let server = LocalServer::start_on(
        &testkit::binary("auth-local"),
        port,
        &[
            ("DATABASE_URL", &db.url),
            ("TOKEN_SIGNING_ALG", "RS256"),
            ("JWT_ISSUER", &issuer),
            ("JWT_AUDIENCE", "downstream-api"),
            ("PBKDF2_ITERATIONS", "100000"),
        ],
    )
    .await
    .unwrap();
    assert!(server.output().contains("new 2048-bit RSA key"), "{}", server.output());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/jwks_verify.py");
    let out = tokio::process::Command::new(testkit::venv_python())
        .arg(script)
        .args([&server.base, "alice", PW, "downstream-api"])
        .output()
        .await
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}\nserver output:\n{}", server.output());
    assert!(text.contains("all promises kept"), "{text}");
    assert!(!server.output().contains("panicked"));
}

#[tokio::test]
async fn an_hs256_deployment_publishes_no_keys_and_its_tokens_still_work() {
    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", PW).await;
    let server = LocalServer::start(
        &testkit::binary("auth-local"),
        &[
            ("DATABASE_URL", &db.url),
            ("SECRET_KEY", "hs256-deployment-key-of-more-than-32-bytes"),
            ("PBKDF2_ITERATIONS", "100000"),
        ],
    )
    .await
    .unwrap();
    let r = testkit::client::send("GET", &server.url("/.well-known/jwks.json"), &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"keys": []}));
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    let r = testkit::client::send("GET", &server.url("/.well-known/openid-configuration"), &[], "")
        .await;
    assert_eq!(r.json()["id_token_signing_alg_values_supported"], serde_json::json!(["HS256"]));
    assert_eq!(r.json()["issuer"], "auth-service");
}

/// Starts `binary` with `env` (plus a database) and returns its output once it has exited 1.
async fn startup_failure(binary: &str, db: &TestDb, env: &[(&str, &str)]) -> String {
    let mut all = vec![("DATABASE_URL", db.url.as_str())];
    all.extend_from_slice(env);
    let mut f = Function::start(&testkit::binary(binary), &all).await;
    assert_eq!(f.exit_code(Duration::from_secs(30)).await, Some(1), "{}", f.output());
    let out = f.output();
    assert_eq!(out.lines().filter(|l| !l.trim().is_empty()).count(), 1, "{out}");
    assert!(out.contains("start-up failed"), "{out}");
    out
}

#[tokio::test]
async fn bad_signing_settings_stop_start_up_with_one_line() {
    let db = TestDb::new().await;
    let short = rsa_pem(1024);
    for binary in ["profile", "login", "jwks"] {
        let out = startup_failure(binary, &db, &[("TOKEN_SIGNING_ALG", "RS512")]).await;
        assert!(out.contains("TOKEN_SIGNING_ALG must be HS256 or RS256"), "{binary}: {out}");
        let out =
            startup_failure(binary, &db, &[("TOKEN_SIGNING_ALG", "RS256"), ("SECRET_KEY", &short)])
                .await;
        assert!(
            out.contains("SECRET_KEY is too short: an RS256 key needs at least 2048 bits"),
            "{binary}: {out}"
        );
        assert!(!out.contains("PRIVATE KEY"), "the key is never echoed: {out}");
        let out = startup_failure(
            binary,
            &db,
            &[("TOKEN_SIGNING_ALG", "RS256"), ("SECRET_KEY", &"k".repeat(64))],
        )
        .await;
        assert!(
            out.contains("SECRET_KEY is not an RSA private key in PKCS#8 PEM"),
            "{binary}: {out}"
        );
    }
    // jwks publishes from the public keys' secret only: given the signing secret it refuses to
    // start, and with RS256 it needs SIGNING_PUBLIC_SECRET_ARN; so does the rotation function,
    // which writes it.
    let out = startup_failure(
        "jwks",
        &db,
        &[("TOKEN_SIGNING_ALG", "RS256"), ("SECRET_ARN", "arn:aws:secretsmanager:signing")],
    )
    .await;
    assert!(out.contains("SECRET_ARN is set, but jwks does not read the signing secret"), "{out}");
    let out = startup_failure("jwks", &db, &[("TOKEN_SIGNING_ALG", "RS256")]).await;
    assert!(out.contains("SIGNING_PUBLIC_SECRET_ARN is not set"), "{out}");
    let out = startup_failure("rotate-key", &db, &[("TOKEN_SIGNING_ALG", "RS256")]).await;
    assert!(out.contains("SIGNING_PUBLIC_SECRET_ARN is not set"), "{out}");
    // auth-local refuses the same, before it listens.
    let err = LocalServer::start(
        &testkit::binary("auth-local"),
        &[("DATABASE_URL", &db.url), ("TOKEN_SIGNING_ALG", "none")],
    )
    .await
    .err()
    .expect("auth-local refuses TOKEN_SIGNING_ALG=none");
    assert!(err.contains("TOKEN_SIGNING_ALG must be HS256 or RS256"), "{err}");
}
