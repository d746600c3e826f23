//! The arm64 bootstraps `sam build` made, run under qemu-user behind the Runtime API emulator:
//! the artifact users deploy to Graviton, held to the same contract as the x86-64 builds, and
//! sharing a database with them (hashes and tokens made on one architecture work on the other).

use std::path::Path;

use auth_shared::password::{self, Verdict};
use serde_json::{Value, json};
use testkit::TestDb;
use testkit::events::{self, SAMPLE_USER};
use testkit::runtime_api::{Function, Program};

/// An arm64 bootstrap under qemu's `max` CPU: every extension qemu emulates, so the ARMv8
/// SHA-2 instructions the PBKDF2 loop uses on Graviton are there.
pub fn program(binary: &str, bootstrap: &Path) -> Program {
    Program::arm64(binary, bootstrap, "max")
}

/// Every sample event of every function `bootstraps` (binary name, bootstrap) holds gets the
/// status `events/README.md` promises, checked by the same code as the x86-64 binaries' tests.
/// The functions run one after another: each one's qemu has both cores to itself.
pub async fn check_samples(bootstraps: &[(String, std::path::PathBuf)]) {
    let samples = events::samples();
    for (binary, bootstrap) in bootstraps {
        if samples.iter().any(|s| &s.function == binary) {
            events::check_program_samples(binary, &program(binary, bootstrap)).await;
        }
    }
    for sample in &samples {
        assert!(
            bootstraps.iter().any(|(b, _)| b == &sample.function),
            "{}: no arm64 bootstrap for {}",
            sample.file,
            sample.function
        );
    }
}

/// A function started the way the samples are sent to it: under qemu, or the x86-64 build.
async fn start(program: &Program, db: &TestDb) -> Function {
    let env = events::sample_env(db);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Function::launch(program, &env).await
}

/// Sends an API Gateway event and returns the status and the body as JSON (Null when empty).
async fn call(
    f: &Function,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u64, Value) {
    let body = body.map(|b| b.to_string());
    let resp = f.invoke(events::apigw(method, path, headers, body.as_deref())).await.response();
    let text = events::response_body(&resp);
    let doc = serde_json::from_str(&text).unwrap_or(Value::Null);
    (resp["statusCode"].as_u64().unwrap_or_default(), doc)
}

async fn login(f: &Function, username: &str, password: &str) -> (u64, Value) {
    let json = [("content-type", "application/json")];
    call(f, "POST", "/login", &json, Some(json!({"username": username, "password": password})))
        .await
}

async fn profile(f: &Function, access_token: &str) -> (u64, Value) {
    let auth = format!("Bearer {access_token}");
    call(f, "GET", "/profile", &[("authorization", &auth)], None).await
}

async fn stored_hash(db: &TestDb, username: &str) -> String {
    db.client()
        .await
        .query_one("SELECT password_hash FROM users WHERE username = $1", &[&username])
        .await
        .expect("the account")
        .get(0)
}

/// One database, the x86-64 login, profile and password binaries and their arm64 bootstraps
/// side by side: a hash made on either architecture verifies on the other, a legacy hash
/// upgraded on arm64 verifies on x86-64, and tokens minted by either login are accepted by the
/// other's profile.
pub async fn check_across_architectures(bootstrap: impl Fn(&str) -> std::path::PathBuf) {
    let db = TestDb::new().await;
    let x86 = |name: &str| Program::native(&testkit::binary(name));
    let arm = |name: &str| program(name, &bootstrap(name));
    let (x86_login, arm_login) = (start(&x86("login"), &db).await, start(&arm("login"), &db).await);
    let (x86_profile, arm_profile) =
        (start(&x86("profile"), &db).await, start(&arm("profile"), &db).await);
    let policy = testkit::pg::TEST_POLICY;

    // A hash made on x86-64 (this process) verifies on arm64, and a wrong password does not.
    let (alice, email, pw) = SAMPLE_USER;
    db.create_user(alice, email, pw).await;
    let x86_hash = stored_hash(&db, alice).await;
    let (status, body) = login(&arm_login, alice, pw).await;
    assert_eq!(status, 200, "arm64 login of an x86-64 hash: {body}");
    let arm_token = body["access_token"].as_str().expect("an access token").to_owned();
    assert_eq!(login(&arm_login, alice, "not the password").await.0, 401);
    assert_eq!(stored_hash(&db, alice).await, x86_hash, "a current hash is left alone");

    // Tokens cross both ways.
    let (status, body) = profile(&x86_profile, &arm_token).await;
    assert_eq!((status, body["username"].as_str()), (200, Some(alice)), "{body}");
    let (status, body) = login(&x86_login, alice, pw).await;
    assert_eq!(status, 200, "{body}");
    let x86_token = body["access_token"].as_str().expect("an access token").to_owned();
    let (status, body) = profile(&arm_profile, &x86_token).await;
    assert_eq!((status, body["username"].as_str()), (200, Some(alice)), "{body}");

    // A hash made on arm64 (the password function changing alice's password) verifies on
    // x86-64: in the x86-64 login binary and in this process.
    let new_pw = "a new and rather long passphrase 42";
    let arm_password = start(&arm("password"), &db).await;
    let auth = format!("Bearer {arm_token}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let change = json!({"current_password": pw, "new_password": new_pw});
    let (status, body) = call(&arm_password, "POST", "/password", &headers, Some(change)).await;
    assert_eq!(status, 200, "arm64 password change: {body}");
    let arm_hash = stored_hash(&db, alice).await;
    assert_ne!(arm_hash, x86_hash);
    assert_eq!(
        password::verify(new_pw, &arm_hash, policy),
        Verdict::Match { needs_upgrade: false }
    );
    let (status, body) = login(&x86_login, alice, new_pw).await;
    assert_eq!(status, 200, "x86-64 login of an arm64 hash: {body}");
    assert_eq!(login(&x86_login, alice, pw).await.0, 401, "the old password is refused");

    // A legacy hash (Werkzeug's PBKDF2, as the Flask original stored them) upgraded at an
    // arm64 login verifies on x86-64.
    let (bob, legacy_pw, salt) = ("bob", "flask era password", "s4ltFromFlask");
    let mut out = [0u8; 32];
    auth_shared::kdf::pbkdf2_hmac_sha256(legacy_pw.as_bytes(), salt.as_bytes(), 1000, &mut out);
    let legacy = format!("pbkdf2:sha256:1000${salt}${}", hex(&out));
    db.create_user_with_hash(bob, "bob@example.com", &legacy).await;
    let (status, body) = login(&arm_login, bob, legacy_pw).await;
    assert_eq!(status, 200, "arm64 login of a legacy hash: {body}");
    let upgraded = stored_hash(&db, bob).await;
    let parsed = password::parse(&upgraded).expect("a hash we read");
    assert_eq!(
        (parsed.scheme, parsed.iterations()),
        (password::Scheme::PhcPbkdf2, Some(policy.iterations)),
        "arm64 upgraded {legacy} to {upgraded}"
    );
    assert_eq!(
        password::verify(legacy_pw, &upgraded, policy),
        Verdict::Match { needs_upgrade: false }
    );
    let (status, body) = login(&x86_login, bob, legacy_pw).await;
    assert_eq!(status, 200, "x86-64 login of the hash arm64 upgraded: {body}");
    assert_eq!(login(&x86_login, bob, "flask era passwore").await.0, 401);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
