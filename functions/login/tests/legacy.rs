//! Moving an existing users table over: hashes made by the real Werkzeug, Django and passlib
//! (generated at test time in the test virtual environment) verify, wrong passwords do not,
//! and a successful login replaces each with a current-policy PHC hash.

use std::path::Path;

use auth_shared::password::{self, Scheme, Verdict};
use serde_json::{Value, json};
use testkit::app::Parts;

fn library_hashes() -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/python/legacy_hashes.py");
    let out = std::process::Command::new(testkit::venv_python()).arg(script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

#[test]
fn hashes_from_the_real_libraries_verify() {
    let policy = testkit::pg::TEST_POLICY;
    let vectors = library_hashes();
    assert!(vectors.len() >= 30);
    for v in vectors {
        let (lib, pw, stored) = (
            v["library"].as_str().unwrap(),
            v["password"].as_str().unwrap(),
            v["hash"].as_str().unwrap(),
        );
        assert_eq!(
            password::verify(pw, stored, policy),
            Verdict::Match { needs_upgrade: true },
            "{lib}: {stored}"
        );
        assert_eq!(password::verify(&format!("{pw}x"), stored, policy), Verdict::Mismatch, "{lib}");
        let scheme = password::parse(stored).unwrap().scheme;
        let want = if lib.starts_with("werkzeug") {
            Scheme::WerkzeugPbkdf2
        } else if lib.starts_with("django") {
            Scheme::DjangoPbkdf2Sha256
        } else {
            Scheme::PasslibPbkdf2
        };
        assert_eq!(scheme, want, "{lib}");
    }
}

#[tokio::test]
async fn a_login_upgrades_each_legacy_hash() {
    let p = Parts::new(2).await;
    let state = login::State::new(p.db.clone(), p.keys.clone(), p.tokens.clone(), p.policy);
    let vectors: Vec<Value> = library_hashes()
        .into_iter()
        .filter(|v| v["password"] == "correct horse battery staple")
        .collect();
    for (i, v) in vectors.iter().enumerate() {
        let name = format!("user{i}");
        p.test_db
            .create_user_with_hash(
                &name,
                &format!("{name}@example.com"),
                v["hash"].as_str().unwrap(),
            )
            .await;
        let login = |pw: &str| {
            let body = json!({"username": name, "password": pw}).to_string();
            testkit::request("POST", "/login", &[("content-type", "application/json")], &body)
        };
        let (status, _, _) = testkit::read(login::handle(&state, login("wrong password")).await);
        assert_eq!(status, 401, "{}", v["library"]);
        let (status, _, body) =
            testkit::read(login::handle(&state, login("correct horse battery staple")).await);
        assert_eq!(status, 200, "{}: {body}", v["library"]);
        let c = p.test_db.client().await;
        let stored: String = c
            .query_one("SELECT password_hash FROM users WHERE username = $1", &[&name])
            .await
            .unwrap()
            .get(0);
        let parsed = password::parse(&stored).unwrap();
        assert_eq!(
            (parsed.scheme, parsed.iterations()),
            (Scheme::PhcPbkdf2, Some(p.policy.iterations)),
            "{}",
            v["library"]
        );
        assert_eq!(
            password::verify("correct horse battery staple", &stored, p.policy),
            Verdict::Match { needs_upgrade: false }
        );
        let (status, _, _) =
            testkit::read(login::handle(&state, login("correct horse battery staple")).await);
        assert_eq!(status, 200, "the upgraded hash works: {}", v["library"]);
    }
}

/// The SQL in docs/moving-users-in.md that rewrites raw `hashlib.pbkdf2_hmac` hashes (`<hex salt>$<hex hash>`)
/// into PHC strings does what it says.
#[tokio::test]
async fn the_readme_rewrite_of_raw_hashlib_hashes_works() {
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/moving-users-in.md"),
    )
    .unwrap();
    let start = readme
        .find("UPDATE users SET password_hash = format(")
        .expect("snippet in docs/moving-users-in.md");
    let sql = &readme[start..start + readme[start..].find("```").unwrap()];
    let p = Parts::new(1).await;
    let salt = b"0123456789abcdef";
    let mut out = [0u8; 32];
    auth_shared::kdf::pbkdf2_hmac_sha256(b"flask era password", salt, 260000, &mut out);
    let raw = format!("{}${}", hex::encode(salt), hex::encode(out));
    p.test_db.create_user_with_hash("gina", "gina@example.com", &raw).await;
    p.test_db.client().await.batch_execute(sql).await.unwrap();
    let stored: String = p
        .test_db
        .client()
        .await
        .query_one("SELECT password_hash FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert!(stored.starts_with("$pbkdf2-sha256$i=260000,l=32$"), "{stored}");
    assert!(
        matches!(password::verify("flask era password", &stored, p.policy), Verdict::Match { .. }),
        "{stored}"
    );
}
