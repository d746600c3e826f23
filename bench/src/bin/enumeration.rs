//! Login timing by outcome: does a failed login take the same time whether the identifier is
//! unknown, the password wrong, the stored hash a cheaper legacy one, or the account disabled?
//!
//! Runs the real login handler against a real PostgreSQL at the default policy (600,000
//! iterations), interleaving the cases round by round so drift on a shared machine hits them
//! alike, and prints a Markdown table of medians and spreads with each case's ratio to the
//! unknown-identifier median. A benchmark, not a test: nothing here asserts a time.
//!
//! Besides, one account per foreign hash format at its library's own default work factor
//! (made by the real libraries: e2e/python/foreign_hashes.py, so the test virtual environment
//! is needed), whose wrong passwords cost the foreign hash plus one policy hash
//! (shared/src/password/), and for which every failure then waits (the failure floor,
//! shared/src/failure_floor.rs, calibrated here as `auth-admin import` does); and a second table of each format's verification time for the
//! right password beside the current policy's. Figures: bench/HASH_FORMATS.md.
//!
//!   cargo run --release -p auth-bench --bin enumeration [ROUNDS]

use std::time::Instant;

use auth_shared::password::{self, Policy};
use serde_json::json;
use testkit::app::Parts;

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(40);
    let mut p = Parts::new(4).await;
    p.policy = Policy::default();
    let state = login::State::new(p.db.clone(), p.keys.clone(), p.tokens.clone(), p.policy);
    let current = password::hash("the right password", p.policy);
    let werkzeug = {
        // Werkzeug 2.x's format and default work factor (260,000 iterations).
        let mut out = [0u8; 32];
        auth_shared::kdf::pbkdf2_hmac_sha256(
            b"the right password",
            b"NmYOv2kIZZWmgwPj",
            260_000,
            &mut out,
        );
        format!("pbkdf2:sha256:260000$NmYOv2kIZZWmgwPj${}", hex(&out))
    };
    let passlib = password::hash_with_salt("the right password", b"0123456789abcdef", 29_000)
        .replace("$pbkdf2-sha256$i=29000,l=32$", "$pbkdf2-sha256$29000$")
        .replace('+', ".");
    p.test_db.create_user_with_hash("known", "known@example.com", &current).await;
    p.test_db.create_user_with_hash("legacy", "legacy@example.com", &werkzeug).await;
    p.test_db.create_user_with_hash("cheap", "cheap@example.com", &passlib).await;
    p.test_db.create_user_with_hash("off", "off@example.com", &current).await;
    p.test_db
        .client()
        .await
        .execute("UPDATE users SET disabled_at = now() WHERE username = 'off'", &[])
        .await
        .unwrap();
    let mut cases: Vec<(String, String, &str)> = [
        ("unknown identifier", "nobody", "the right password"),
        ("wrong password, current hash", "known", "a wrong password"),
        ("wrong password, Werkzeug 260k hash", "legacy", "a wrong password"),
        ("wrong password, passlib 29k hash", "cheap", "a wrong password"),
        ("disabled account, right password", "off", "the right password"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
    .collect();
    let foreign = foreign_defaults();
    for (i, (lib, hash)) in foreign.iter().enumerate() {
        let name = format!("foreign{i}");
        p.test_db.create_user_with_hash(&name, &format!("{name}@example.com"), hash).await;
        cases.push((format!("wrong password, {lib}"), name, "a wrong password"));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut c = p.test_db.client().await;
    // What `auth-admin import` and `migrate` do after writing hashes: measure the failed-login
    // cost of each kind of stored hash, so every failure waits for the costliest.
    let cal = auth_shared::failure_floor::calibrate(&mut c, p.policy).await.unwrap();
    if let Some((class, ratio)) = cal.classes.first() {
        eprintln!("failure floor: {ratio:.2} policy hashes ({class}, {} kinds)", cal.classes.len());
    }
    for round in 0..rounds + 2 {
        for (i, (_, user, pw)) in cases.iter().enumerate() {
            // Failures would soon lock these keys: clear the counts between attempts.
            c.execute("DELETE FROM login_throttle", &[]).await.unwrap();
            let body = json!({"username": user, "password": pw}).to_string();
            let req =
                testkit::request("POST", "/login", &[("content-type", "application/json")], &body);
            let started = Instant::now();
            let resp = login::handle(&state, req).await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(resp.status(), 401);
            if round >= 2 {
                samples[i].push(ms); // the first two rounds warm caches and the pool
            }
        }
    }
    let base = auth_bench::summarise(&mut samples[0].clone()).median;
    println!(
        "| failed login ({rounds} rounds, PBKDF2_ITERATIONS=600000) | median ms | p10 ms | p90 ms | ratio to unknown identifier |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for ((name, _, _), s) in cases.iter().zip(samples.iter_mut()) {
        let s = auth_bench::summarise(s);
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.3} |",
            s.median,
            s.p10,
            s.p90,
            s.median / base
        );
    }
    verification_times(p.policy, &foreign, rounds);
}

/// (library, hash) of the right password "the right password" at each library's default.
fn foreign_defaults() -> Vec<(String, String)> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/python/foreign_hashes.py");
    let out = std::process::Command::new(testkit::venv_python())
        .arg(script)
        .arg("--defaults-only")
        .env("FOREIGN_HASHES_PASSWORD", "the right password")
        .output()
        .expect("run foreign_hashes.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    all.iter()
        .filter(|v| v["password"] == "the right password")
        .map(|v| {
            (v["library"].as_str().unwrap().to_owned(), v["hash"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// Median time of `password::verify` with the right password, per format, beside one
/// current-policy hash.
fn verification_times(policy: Policy, foreign: &[(String, String)], rounds: usize) {
    let current = password::hash("the right password", policy);
    let time = |stored: &str| {
        let mut v: Vec<f64> = (0..rounds.clamp(3, 15))
            .map(|_| {
                let t = Instant::now();
                let verdict = password::verify("the right password", stored, policy);
                assert!(matches!(verdict, password::Verdict::Match { .. }), "{stored}");
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        auth_bench::summarise(&mut v).median
    };
    let base = time(&current);
    println!();
    println!("| right password, verification only | median ms | ratio to the policy hash |");
    println!("| --- | --- | --- |");
    println!(
        "| current policy (PBKDF2-SHA256, {} iterations) | {base:.1} | 1.00 |",
        policy.iterations
    );
    for (lib, hash) in foreign {
        let ms = time(hash);
        println!("| {lib} | {ms:.1} | {:.2} |", ms / base);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
