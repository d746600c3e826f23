//! The function binaries as Lambda runs them, measured: cold start (exec to the end of init,
//! and to the first response, through the Runtime API emulator, reading the key from moto and
//! opening the first database connection), warm latency, CPU time per request and peak RSS.
//! Prints one JSON document.
//!
//! Every first invocation is one that succeeds (or, for the rows that say so, one that is
//! refused before any password hash), and no event is replayed where replaying would change
//! the answer:
//! - refresh: a chain started by a real login (the login binary, run by this harness): each
//!   invocation presents the refresh token the previous one returned, cold starts included;
//! - logout: `Authorization: Bearer` with the access token of a session of its own for each
//!   invocation (sessions opened in the database beforehand with the statement a login runs,
//!   access tokens signed with the same key);
//! - password: a real change, alternating between two passwords, each with the access token
//!   the previous change returned (the chain starts from a real login), and a locked account
//!   (429 before any hash) for the cold start without hashing.
//!
//! login and jwks also run with TOKEN_SIGNING_ALG=RS256 and a 2048-bit RSA key (PKCS#8 PEM,
//! generated here) in the secret, so their cold starts include parsing and checking it; jwks
//! reads its public half from the public keys' secret (SIGNING_PUBLIC_SECRET_ARN), as deployed.
//! Each cold-start row carries its samples (`init_ms.samples`, `first_response_ms.samples`) for
//! the charts.
//!
//!   DATABASE_URL=... cargo run --release -p auth-bench --bin lambda -- target/release [STARTS]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::TestDb;
use testkit::moto::Moto;
use testkit::runtime_api::Function;

const PW: &str = "correct horse battery staple";
/// The password the password chain alternates with [`PW`].
const PW2: &str = "a different horse, a different battery";

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

/// [`summary`] with the samples themselves (in the order they were taken).
fn summary_with_samples(v: Vec<f64>) -> Value {
    let mut s = summary(v.clone());
    s["samples"] = json!(v);
    s
}

/// A 2048-bit RSA private key in PKCS#8 PEM, the size auth-local and the rotation function
/// make. The `rsa` crate only generates it; ring signs.
fn rsa_pem() -> String {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
    key.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 PEM").to_string()
}

/// Which signing key a function's environment names.
#[derive(Clone, Copy)]
enum KeyKind {
    /// None (health, test-db).
    None,
    /// The HS256 secret.
    Hs256,
    /// The RS256 secret (an RSA key), with TOKEN_SIGNING_ALG=RS256.
    Rs256,
    /// The public keys' secret of that RSA key (jwks), with TOKEN_SIGNING_ALG=RS256.
    Rs256Public,
}

async fn start(bin: &Path, env: &[(String, String)]) -> Function {
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Function::start(bin, &refs).await
}

fn json_post(path: &str, headers: &[(&str, &str)], body: &Value) -> Value {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    testkit::events::apigw("POST", path, &h, Some(&body.to_string()))
}

fn response_json(resp: &Value) -> Value {
    serde_json::from_str(&testkit::events::response_body(resp)).unwrap_or(Value::Null)
}

/// Where each invocation's event comes from.
enum Feed {
    /// The same event every time (it changes nothing that would change the answer).
    Fixed(Value),
    /// POST /refresh with the refresh token the previous response handed out.
    Refresh { token: String },
    /// POST /logout with a bearer access token of a session not yet ended, one per invocation.
    Logout { access_tokens: VecDeque<String> },
    /// POST /password from the current password to the other one, with the access token the
    /// previous change returned.
    Password { access: String, current_is_first: bool },
}

impl Feed {
    fn event(&mut self) -> Value {
        match self {
            Self::Fixed(event) => event.clone(),
            Self::Refresh { token } => {
                json_post("/refresh", &[], &json!({ "refresh_token": token }))
            }
            Self::Logout { access_tokens } => {
                let token = access_tokens.pop_front().expect("enough sessions for logout");
                let auth = format!("Bearer {token}");
                testkit::events::apigw("POST", "/logout", &[("authorization", &auth)], None)
            }
            Self::Password { access, current_is_first } => {
                let (current, new) = if *current_is_first { (PW, PW2) } else { (PW2, PW) };
                let auth = format!("Bearer {access}");
                json_post(
                    "/password",
                    &[("authorization", &auth)],
                    &json!({"current_password": current, "new_password": new}),
                )
            }
        }
    }

    /// Before invocation `k` of a password change, waits (untimed) for a point of the clock's
    /// second that moves by the golden ratio from one invocation to the next. A successful change
    /// waits for the next whole second before it signs the new access token
    /// (`access::grant_response`); back to back, every change would start early in a second and
    /// wait most of one, where a user's change lands anywhere in it.
    async fn pace(&self, k: usize) {
        if let Self::Password { .. } = self {
            let target = (k as f64 * 0.618_033_988_75).fract();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos() as f64
                / 1e9;
            tokio::time::sleep(Duration::from_secs_f64((target - now).rem_euclid(1.0))).await;
        }
    }

    /// Takes what the next event needs from a response (chains only move on success).
    fn observe(&mut self, resp: &Value) {
        if resp["statusCode"].as_u64() != Some(200) {
            return;
        }
        match self {
            Self::Refresh { token } => {
                if let Some(t) = response_json(resp)["refresh_token"].as_str() {
                    *token = t.to_owned();
                }
            }
            Self::Password { access, current_is_first } => {
                if let Some(t) = response_json(resp)["access_token"].as_str() {
                    *access = t.to_owned();
                    *current_is_first = !*current_is_first;
                }
            }
            Self::Fixed(_) | Self::Logout { .. } => {}
        }
    }
}

struct Case {
    label: &'static str,
    binary: &'static str,
    feed: Feed,
    key: KeyKind,
    /// Warm invocations measured.
    warm: usize,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bindir = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("target/release"));
    let starts: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(25);
    let db = TestDb::new().await;
    let c = db.client().await;
    let hash = auth_shared::password::hash(PW, auth_shared::password::Policy::default());
    let mut ids = Vec::new();
    // alice: profile, login, refresh; bob: logout; carol: password changes; dave: locked.
    for name in ["alice", "bob", "carol", "dave"] {
        let email = format!("{name}@example.com");
        let new = auth_shared::users::NewUser {
            username: name,
            email: &email,
            full_name: None,
            password_hash: &hash,
            email_verified: true,
        };
        ids.push(auth_shared::users::create(&c, &new).await.unwrap().id);
    }
    let (alice, bob, dave) = (ids[0], ids[1], ids[3]);
    // An identifier whose key is locked: a login that opens the database connection but
    // checks no password, to show cold start without the (deliberately slow) hash. And an
    // account that is locked the same way, for a password change refused before its hash.
    c.batch_execute("INSERT INTO login_throttle VALUES ('i:' || encode(sha256(convert_to('locked', 'UTF8')), 'hex'), 14, now())").await.unwrap();
    c.execute("INSERT INTO login_throttle VALUES ('u:' || $1::uuid::text, 20, now())", &[&dave])
        .await
        .unwrap();
    let moto = Moto::start().await;
    let sm = moto.client().await;
    let key = "bench-signing-key-0123456789abcdefghijklmnopqrstuvwxyz";
    let secret = sm.create_secret().name("bench/key").secret_string(key).send().await.unwrap();
    let kid = secret.version_id().unwrap().to_owned();
    let rsa_key = rsa_pem();
    let rsa_secret =
        sm.create_secret().name("bench/rsa-key").secret_string(&rsa_key).send().await.unwrap();
    // Its public half, as the rotation function writes it: the same version id, AWSCURRENT.
    let rsa_kid = rsa_secret.version_id().unwrap();
    let public_secret = sm.create_secret().name("bench/rsa-public").send().await.unwrap();
    let public_value = auth_shared::signing::public_keys::public_value(
        &auth_shared::signing::Key::rsa_pem(rsa_kid, &rsa_key).unwrap(),
    )
    .unwrap();
    sm.put_secret_value()
        .secret_id(public_secret.arn().unwrap())
        .client_request_token(rsa_kid)
        .secret_string(public_value)
        .send()
        .await
        .unwrap();
    let signing = auth_shared::signing::Key::new(&kid, key.as_bytes()).unwrap();
    let cfg = testkit::app::token_config();
    let token =
        auth_shared::token::issue(&cfg, &signing, alice, "alice", None, auth_shared::token::now())
            .unwrap();
    let env_for = |key: KeyKind| {
        let mut env: Vec<(String, String)> = moto.env();
        env.push(("DATABASE_URL".into(), db.url.clone()));
        match key {
            KeyKind::None => {}
            KeyKind::Hs256 => env.push(("SECRET_ARN".into(), secret.arn().unwrap().to_owned())),
            KeyKind::Rs256 => {
                env.push(("SECRET_ARN".into(), rsa_secret.arn().unwrap().to_owned()));
                env.push(("TOKEN_SIGNING_ALG".into(), "RS256".into()));
            }
            KeyKind::Rs256Public => {
                let arn = public_secret.arn().unwrap().to_owned();
                env.push(("SIGNING_PUBLIC_SECRET_ARN".into(), arn));
                env.push(("TOKEN_SIGNING_ALG".into(), "RS256".into()));
            }
        }
        env
    };
    let login =
        |user: &str, pw: &str| json_post("/login", &[], &json!({"username": user, "password": pw}));
    // Real logins, through the login binary, start the refresh and password chains.
    let (refresh_start, password_start) = {
        let f = start(&bindir.join("login"), &env_for(KeyKind::Hs256)).await;
        let mut out = Vec::new();
        for user in ["alice", "carol"] {
            let resp = f.invoke(login(user, PW)).await.response();
            assert_eq!(resp["statusCode"], 200, "login of {user}: {resp}");
            out.push(response_json(&resp));
        }
        (
            out[0]["refresh_token"].as_str().unwrap().to_owned(),
            out[1]["access_token"].as_str().unwrap().to_owned(),
        )
    };
    let warm_logout = 500;
    // One session per logout invocation (cold starts, warm-up, warm), opened as a login opens
    // it, with an access token of it.
    let mut logout_tokens = VecDeque::new();
    let sessions_cfg = auth_shared::sessions::SessionConfig::default();
    for _ in 0..starts + 10 + warm_logout {
        let grant = auth_shared::sessions::open(&c, bob, &sessions_cfg).await.unwrap();
        let t = auth_shared::token::issue(
            &cfg,
            &signing,
            bob,
            "bob",
            Some(grant.session_id),
            auth_shared::token::now(),
        )
        .unwrap();
        logout_tokens.push_back(t);
    }
    let cases = vec![
        Case {
            label: "health",
            binary: "health",
            feed: Feed::Fixed(testkit::events::load("health-apigw.json")),
            key: KeyKind::None,
            warm: 500,
        },
        Case {
            label: "test-db",
            binary: "test-db",
            feed: Feed::Fixed(testkit::events::load("test-db.json")),
            key: KeyKind::None,
            warm: 500,
        },
        Case {
            label: "profile",
            binary: "profile",
            feed: Feed::Fixed(testkit::events::apigw(
                "GET",
                "/profile",
                &[("authorization", &format!("Bearer {token}"))],
                None,
            )),
            key: KeyKind::Hs256,
            warm: 500,
        },
        Case {
            label: "login (throttled: no hash)",
            binary: "login",
            feed: Feed::Fixed(login("locked", PW)),
            key: KeyKind::Hs256,
            warm: 500,
        },
        Case {
            label: "login",
            binary: "login",
            feed: Feed::Fixed(login("alice", PW)),
            key: KeyKind::Hs256,
            warm: 100,
        },
        Case {
            label: "login RS256 (throttled: no hash)",
            binary: "login",
            feed: Feed::Fixed(login("locked", PW)),
            key: KeyKind::Rs256,
            warm: 500,
        },
        Case {
            label: "login RS256",
            binary: "login",
            feed: Feed::Fixed(login("alice", PW)),
            key: KeyKind::Rs256,
            warm: 100,
        },
        Case {
            label: "jwks RS256",
            binary: "jwks",
            feed: Feed::Fixed(testkit::events::load("jwks-keys.json")),
            key: KeyKind::Rs256Public,
            warm: 500,
        },
        Case {
            label: "refresh (rotation)",
            binary: "refresh",
            feed: Feed::Refresh { token: refresh_start },
            key: KeyKind::Hs256,
            warm: 500,
        },
        Case {
            label: "logout (bearer, local scope)",
            binary: "logout",
            feed: Feed::Logout { access_tokens: logout_tokens },
            key: KeyKind::Hs256,
            warm: warm_logout,
        },
        Case {
            label: "password (locked account: no hash)",
            binary: "password",
            feed: Feed::Fixed(json_post(
                "/password",
                &[(
                    "authorization",
                    &format!(
                        "Bearer {}",
                        auth_shared::token::issue(
                            &cfg,
                            &signing,
                            dave,
                            "dave",
                            None,
                            auth_shared::token::now()
                        )
                        .unwrap()
                    ),
                )],
                &json!({"current_password": PW, "new_password": PW2}),
            )),
            key: KeyKind::Hs256,
            warm: 500,
        },
        Case {
            label: "password (real change)",
            binary: "password",
            feed: Feed::Password { access: password_start, current_is_first: true },
            key: KeyKind::Hs256,
            warm: 30,
        },
    ];
    let mut results = Vec::new();
    for Case { label, binary, mut feed, key, warm: n } in cases {
        let bin = bindir.join(binary);
        let env = env_for(key);
        let (mut init, mut first) = (Vec::new(), Vec::new());
        let mut expected = None;
        for k in 0..starts {
            let event = feed.event();
            feed.pace(k).await;
            let t0 = Instant::now();
            let mut f = start(&bin, &env).await;
            let resp = f
                .api
                .invoke(event, Duration::from_secs(30))
                .await
                .expect("first response")
                .response();
            first.push(t0.elapsed().as_secs_f64() * 1000.0);
            init.push(f.api.first_poll().map_or(0.0, |t| (t - t0).as_secs_f64() * 1000.0));
            let status = resp["statusCode"].as_u64().unwrap();
            assert_eq!(*expected.get_or_insert(status), status, "{label}: {resp}");
            feed.observe(&resp);
            f.kill().await;
        }
        // Warm: one process serving many invocations; every answer's status is checked.
        let f = start(&bin, &env).await;
        let mut unexpected = 0u64;
        let call = async |feed: &mut Feed| {
            let resp = f.invoke(feed.event()).await.response();
            feed.observe(&resp);
            resp["statusCode"].as_u64() != expected
        };
        for _ in 0..10 {
            unexpected += u64::from(call(&mut feed).await);
        }
        let pid = f.pid().unwrap();
        let cpu0 = cpu_ns(pid);
        let mut warm = Vec::new();
        for k in 0..n {
            feed.pace(k).await;
            let t = Instant::now();
            unexpected += u64::from(call(&mut feed).await);
            warm.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let cpu_ms = (cpu_ns(pid) - cpu0) as f64 / 1e6 / n as f64;
        results.push(json!({
            "function": label,
            "binary": binary,
            "status": expected,
            "init_ms": summary_with_samples(init),
            "first_response_ms": summary_with_samples(first),
            "warm_ms": summary(warm),
            "warm_unexpected_status": unexpected,
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
