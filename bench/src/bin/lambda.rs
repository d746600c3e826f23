//! The function binaries as Lambda runs them, measured: cold start (exec to the end of init,
//! and to the first response, through the Runtime API emulator, reading the key from moto and
//! opening the first database connection), warm latency, CPU time per request and peak RSS.
//! Prints one JSON document.
//!
//!   DATABASE_URL=... cargo run --release -p auth-bench --bin lambda -- target/release [STARTS]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::TestDb;
use testkit::moto::Moto;
use testkit::runtime_api::Function;

const PW: &str = "correct horse battery staple";

fn cpu_ns(pid: u32) -> u64 {
    // Every thread's on-CPU time (nanoseconds, the first field of schedstat).
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn summary(mut v: Vec<f64>) -> Value {
    let s = auth_bench::summarise(&mut v);
    json!({"median": s.median, "p10": s.p10, "p90": s.p90, "n": s.n})
}

async fn start(bin: &Path, env: &[(String, String)]) -> Function {
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Function::start(bin, &refs).await
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bindir = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("target/release"));
    let starts: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(25);
    let db = TestDb::new().await;
    let c = db.client().await;
    let hash = auth_shared::password::hash(PW, auth_shared::password::Policy::default());
    let new = auth_shared::users::NewUser {
        username: "alice",
        email: "alice@example.com",
        full_name: None,
        password_hash: &hash,
    };
    let id = auth_shared::users::create(&c, &new).await.unwrap().id;
    // An account whose key is locked: a login that opens the database connection but checks no
    // password, to show cold start without the (deliberately slow) hash.
    c.batch_execute("INSERT INTO login_throttle VALUES ('i:' || encode(sha256(convert_to('locked', 'UTF8')), 'hex'), 14, now())").await.unwrap();
    let moto = Moto::start().await;
    let sm = moto.client().await;
    let key = "bench-signing-key-0123456789abcdefghijklmnopqrstuvwxyz";
    let secret = sm.create_secret().name("bench/key").secret_string(key).send().await.unwrap();
    let kid = secret.version_id().unwrap().to_owned();
    let token = {
        let k = auth_shared::token::Key::new(&kid, key.as_bytes()).unwrap();
        let cfg = testkit::app::token_config();
        auth_shared::token::issue(&cfg, &k, id, "alice", None, auth_shared::token::now()).unwrap()
    };
    let login = |user: &str| {
        testkit::events::apigw(
            "POST",
            "/login",
            &[("content-type", "application/json")],
            Some(&json!({"username": user, "password": PW}).to_string()),
        )
    };
    let cases: Vec<(&str, &str, Value, bool)> = vec![
        ("health", "health", testkit::events::load("health-apigw.json"), false),
        ("test-db", "test-db", testkit::events::load("test-db.json"), false),
        (
            "profile",
            "profile",
            testkit::events::apigw(
                "GET",
                "/profile",
                &[("authorization", &format!("Bearer {token}"))],
                None,
            ),
            true,
        ),
        ("login (throttled: no hash)", "login", login("locked"), true),
        ("login", "login", login("alice"), true),
    ];
    let mut results = Vec::new();
    for (label, binary, event, needs_key) in cases {
        let bin = bindir.join(binary);
        let mut env: Vec<(String, String)> = moto.env();
        env.push(("DATABASE_URL".into(), db.url.clone()));
        if needs_key {
            env.push(("SECRET_ARN".into(), secret.arn().unwrap().to_owned()));
        }
        let (mut init, mut first) = (Vec::new(), Vec::new());
        let mut expected = None;
        for _ in 0..starts {
            let t0 = Instant::now();
            let mut f = start(&bin, &env).await;
            let resp = f
                .api
                .invoke(event.clone(), Duration::from_secs(30))
                .await
                .expect("first response")
                .response();
            first.push(t0.elapsed().as_secs_f64() * 1000.0);
            init.push(f.api.first_poll().map_or(0.0, |t| (t - t0).as_secs_f64() * 1000.0));
            let status = resp["statusCode"].as_u64().unwrap();
            assert_eq!(*expected.get_or_insert(status), status, "{label}: {resp}");
            f.kill().await;
        }
        // Warm: one process serving many invocations.
        let f = start(&bin, &env).await;
        for _ in 0..10 {
            f.invoke(event.clone()).await;
        }
        let pid = f.pid().unwrap();
        let n = if binary == "login" && label == "login" { 100 } else { 500 };
        let cpu0 = cpu_ns(pid);
        let mut warm = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            f.invoke(event.clone()).await;
            warm.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let cpu_ms = (cpu_ns(pid) - cpu0) as f64 / 1e6 / n as f64;
        results.push(json!({
            "function": label,
            "status": expected,
            "init_ms": summary(init),
            "first_response_ms": summary(first),
            "warm_ms": summary(warm),
            "cpu_ms_per_request": cpu_ms,
            "peak_rss_kib": peak_rss_kib(pid),
        }));
        eprintln!("lambda bench: {label} done");
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({"starts": starts, "functions": results})).unwrap()
    );
}
