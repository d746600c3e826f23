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
//! - the account routes: each first request is one answered before any hash (a source over
//!   its mail limit for signup and change-email, an unknown link token for verify-email and
//!   reset-password, an unknown address for resend-verification and forgot-password, each of
//!   those from a source address of its own, as a user's would be), and the mailer mails a
//!   forgot-password job through SES in moto (a different known user each invocation);
//! - the enumeration figures (`"enumeration"`): warm sign-ups for a taken address beside ones
//!   for a new address, and resets asked for a known address beside an unknown one, alternated,
//!   each from a source of its own.
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

use secrecy::SecretSlice;
use serde_json::{Value, json};
use testkit::TestDb;
use testkit::moto::Moto;
use testkit::runtime_api::Function;

const PW: &str = "correct horse battery staple";
/// Warm invocations of the mailer (each mails a user of its own).
const WARM_MAILER: usize = 100;
/// Requests of each kind in the enumeration figures.
const ENUMERATION_ROUNDS: usize = 200;
/// The source address whose mail limit is used up beforehand.
const LIMITED_SOURCE: &str = "203.0.113.250";
/// A link token of the right shape (`<selector>.<secret>`) that no mail carried: looked up, not found.
const UNKNOWN_TOKEN: &str = "AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
/// The SES identity the mailer sends from.
const EMAIL_FROM: &str = "no-reply@example.com";
/// The data key's value in moto.
const DATA_KEY: &str = "bench-data-key-0123456789abcdefghijklmnopqrstuvwxyz";
/// Warm invocations of /login/mfa measured (one enrolled account each).
const WARM_LOGIN_MFA: usize = 500;

/// An API response's status code, or for the mailer's partial batch response 200 when no
/// job failed and 500 when one did.
fn status_of(resp: &Value) -> u64 {
    match resp["statusCode"].as_u64() {
        Some(status) => status,
        None if resp["batchItemFailures"].as_array().is_some_and(Vec::is_empty) => 200,
        None => 500,
    }
}
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
    /// The HS256 secret, the data key's secret, the mail queue and SES (the account routes
    /// and the mailer).
    Account,
    /// The HS256 secret, the data key's secret and the relying party (the passkey routes).
    Passkey,
    /// The HS256 secret and the data key's secret (the second-factor routes).
    Mfa,
}

async fn start(bin: &Path, env: &[(String, String)]) -> Function {
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Function::start(bin, &refs).await
}

/// The JSON body of a sample event (`events/<file>`).
fn sample_body(file: &str) -> Value {
    let event = testkit::events::load(file);
    serde_json::from_str(event["body"].as_str().unwrap_or("{}")).unwrap_or(Value::Null)
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
    /// The same event from a new source address each time (the routes that mail count each
    /// source's requests).
    Sourced { event: Value, next: u32 },
    /// An SQS batch of one forgot-password job for the next of the users `m0`, `m1`, ...
    Mailer { next: u32 },
    /// POST /login/mfa for the next of the accounts `f0`, `f1`, ... (each with an active TOTP
    /// factor and a waiting login mfa_token): the token and the code its secret gives now, so
    /// every invocation is a real second step and no step is used twice.
    LoginMfa { waiting: VecDeque<(String, SecretSlice<u8>)> },
}

/// `event` as if sent from `source` (`requestContext.http.sourceIp`).
fn from_source(mut event: Value, source: &str) -> Value {
    event["requestContext"]["http"]["sourceIp"] = json!(source);
    event
}

/// The `k`-th of a range of documentation-free private addresses, one per request.
fn source(k: u32) -> String {
    let [_, a, b, c] = k.to_be_bytes();
    format!("10.{a}.{b}.{c}")
}

/// One SQS record holding `body`, as Lambda's SQS polling delivers it.
fn sqs_batch(message_id: &str, body: &str) -> Value {
    json!({ "Records": [{
        "messageId": message_id,
        "receiptHandle": format!("receipt-{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795804581000",
            "SenderId": "AROAEXAMPLE:forgot-password",
            "ApproximateFirstReceiveTimestamp": "1795804581001"
        },
        "messageAttributes": {},
        "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:auth-service-MailQueue",
        "awsRegion": "us-east-1"
    }]})
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
            Self::Sourced { event, next } => {
                *next += 1;
                from_source(event.clone(), &source(*next))
            }
            Self::Mailer { next } => {
                let job = auth_shared::accounts::Job::Forgot {
                    id: auth_shared::accounts::Job::new_id(),
                    identifier: format!("m{next}"),
                };
                *next += 1;
                sqs_batch(&format!("msg-{next}"), &serde_json::to_string(&job).unwrap())
            }
            Self::LoginMfa { waiting } => {
                let (token, secret) = waiting.pop_front().expect("enough second-step accounts");
                let code =
                    auth_shared::mfa::totp::code_at(&secret, auth_shared::mfa::check::unix_now());
                json_post("/login/mfa", &[], &json!({"mfa_token": token, "code": code}))
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
            Self::Fixed(_)
            | Self::Logout { .. }
            | Self::Sourced { .. }
            | Self::Mailer { .. }
            | Self::LoginMfa { .. } => {}
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
    // Further arguments, when given, name the only binaries measured (while working on one
    // function's start-up; `make bench` measures them all).
    let only: Vec<&str> = args.iter().skip(3).map(String::as_str).collect();
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
    // m0, m1, ...: one user per mailer invocation (the per-address limit would hold back a
    // second mail to one address within a minute); e0, e1, ...: the taken and known addresses
    // of the enumeration figures.
    let mailer_users = starts + 10 + WARM_MAILER;
    for (prefix, n) in [("m", mailer_users), ("e", ENUMERATION_ROUNDS + 5)] {
        for k in 0..n {
            let (username, email) = (format!("{prefix}{k}"), format!("{prefix}{k}@example.com"));
            let new = auth_shared::users::NewUser {
                username: &username,
                email: &email,
                full_name: None,
                password_hash: &hash,
                email_verified: true,
            };
            auth_shared::users::create(&c, &new).await.unwrap();
        }
    }
    // A source address over its mail limit: signup and change-email refuse it (429) before
    // any hash.
    c.execute(
        "INSERT INTO mail_requests (source) SELECT $1 FROM generate_series(1, $2::int)",
        &[&LIMITED_SOURCE, &(auth_shared::accounts::limits::SOURCE_REQUESTS_PER_HOUR as i32)],
    )
    .await
    .unwrap();
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
    let data_key =
        sm.create_secret().name("bench/data-key").secret_string(DATA_KEY).send().await.unwrap();
    // f0, f1, ...: one account per second-step invocation, each with an active TOTP factor
    // sealed under the data key's version in moto (as /mfa/totp/verify leaves it) and a login
    // mfa_token (as /login answers a right password with).
    let data_version = auth_shared::data_key::KeyVersion::new(
        data_key.version_id().unwrap(),
        DATA_KEY.as_bytes().to_vec(),
    );
    let mut second_steps = VecDeque::new();
    for k in 0..starts + 10 + WARM_LOGIN_MFA {
        let (username, email) = (format!("f{k}"), format!("f{k}@example.com"));
        let new = auth_shared::users::NewUser {
            username: &username,
            email: &email,
            full_name: None,
            password_hash: &hash,
            email_verified: true,
        };
        let user = auth_shared::users::create(&c, &new).await.unwrap().id;
        let secret = auth_shared::mfa::totp::new_secret();
        let sealed = auth_shared::mfa::sealed::seal(&data_version, user, &secret);
        auth_shared::mfa::store::put_pending(&c, user, &sealed, &data_version.id).await.unwrap();
        auth_shared::mfa::store::activate(&c, user, 0).await.unwrap();
        let (token, token_hash) = auth_shared::sessions::new_refresh_token();
        auth_shared::mfa::store::new_token(&c, &token_hash, user, "login", 3600).await.unwrap();
        second_steps.push_back((token, secret));
    }
    let queue = moto.create_queue("mail").await;
    let sqs = moto.sqs_client().await;
    // Takes every message off the mail queue (PurgeQueue may run once a minute).
    let drain = async || {
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&queue)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive from the mail queue");
            if out.messages().is_empty() {
                return;
            }
            for m in out.messages() {
                sqs.delete_message()
                    .queue_url(&queue)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete from the mail queue");
            }
        }
    };
    moto.create_email_identity(EMAIL_FROM).await;
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
            KeyKind::Account => {
                env.push(("SECRET_ARN".into(), secret.arn().unwrap().to_owned()));
                env.push(("DATA_KEY_SECRET_ARN".into(), data_key.arn().unwrap().to_owned()));
                env.push(("MAIL_QUEUE_URL".into(), queue.clone()));
                env.push(("AWS_ENDPOINT_URL_SQS".into(), moto.endpoint.clone()));
                env.push(("AWS_ENDPOINT_URL_SESV2".into(), moto.endpoint.clone()));
                env.push(("EMAIL_FROM".into(), EMAIL_FROM.into()));
                env.push(("EMAIL_LINK_BASE_URL".into(), "https://app.example/".into()));
                env.push(("SIGNUP_MODE".into(), "open".into()));
            }
            KeyKind::Mfa => {
                env.push(("SECRET_ARN".into(), secret.arn().unwrap().to_owned()));
                env.push(("DATA_KEY_SECRET_ARN".into(), data_key.arn().unwrap().to_owned()));
            }
            KeyKind::Passkey => {
                env.push(("SECRET_ARN".into(), secret.arn().unwrap().to_owned()));
                env.push(("DATA_KEY_SECRET_ARN".into(), data_key.arn().unwrap().to_owned()));
                env.push(("WEBAUTHN_RP_ID".into(), "localhost".into()));
                env.push(("WEBAUTHN_ORIGINS".into(), "http://localhost:3000".into()));
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
    let dave_token =
        auth_shared::token::issue(&cfg, &signing, dave, "dave", None, auth_shared::token::now())
            .unwrap();
    let bearer = |t: &str| format!("Bearer {t}");
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
                &[("authorization", &bearer(&dave_token))],
                &json!({"current_password": PW, "new_password": PW2}),
            )),
            key: KeyKind::Hs256,
            warm: 500,
        },
        Case {
            label: "signup (source over its limit: no hash)",
            binary: "signup",
            feed: Feed::Fixed(from_source(
                json_post(
                    "/signup",
                    &[],
                    &json!({"username": "newcomer", "email": "newcomer@example.com", "password": PW}),
                ),
                LIMITED_SOURCE,
            )),
            key: KeyKind::Account,
            warm: 500,
        },
        Case {
            label: "verify-email (unknown link token: no hash)",
            binary: "verify-email",
            feed: Feed::Fixed(json_post("/verify-email", &[], &json!({"token": UNKNOWN_TOKEN}))),
            key: KeyKind::Account,
            warm: 500,
        },
        Case {
            label: "resend-verification (unknown address)",
            binary: "resend-verification",
            feed: Feed::Sourced {
                event: json_post(
                    "/verify-email/resend",
                    &[],
                    &json!({"email": "nobody@example.com"}),
                ),
                next: 0,
            },
            key: KeyKind::Account,
            warm: 500,
        },
        Case {
            label: "forgot-password (unknown address)",
            binary: "forgot-password",
            feed: Feed::Sourced {
                event: json_post("/password/forgot", &[], &json!({"email": "nobody@example.com"})),
                next: 0,
            },
            key: KeyKind::Account,
            warm: 500,
        },
        Case {
            label: "reset-password (unknown link token: no hash)",
            binary: "reset-password",
            feed: Feed::Fixed(json_post(
                "/password/reset",
                &[],
                &json!({"token": UNKNOWN_TOKEN, "new_password": PW2}),
            )),
            key: KeyKind::Account,
            warm: 500,
        },
        Case {
            label: "change-email (source over its limit: no hash)",
            binary: "change-email",
            feed: Feed::Fixed(from_source(
                json_post(
                    "/email",
                    &[("authorization", &format!("Bearer {token}"))],
                    &json!({"new_email": "alice.new@example.com", "password": PW}),
                ),
                LIMITED_SOURCE,
            )),
            key: KeyKind::Account,
            warm: 500,
        },
        Case {
            label: "login-mfa (a real second step)",
            binary: "login-mfa",
            feed: Feed::LoginMfa { waiting: second_steps },
            key: KeyKind::Mfa,
            warm: WARM_LOGIN_MFA,
        },
        Case {
            label: "mfa-status",
            binary: "mfa-status",
            feed: Feed::Fixed(testkit::events::apigw(
                "GET",
                "/mfa",
                &[("authorization", &bearer(&token))],
                None,
            )),
            key: KeyKind::Mfa,
            warm: 500,
        },
        Case {
            label: "mfa-totp (locked account: no hash)",
            binary: "mfa-totp",
            feed: Feed::Fixed(json_post(
                "/mfa/totp",
                &[("authorization", &bearer(&dave_token))],
                &json!({"password": PW}),
            )),
            key: KeyKind::Mfa,
            warm: 500,
        },
        Case {
            label: "mfa-totp-verify (nothing to confirm)",
            binary: "mfa-totp-verify",
            feed: Feed::Fixed(json_post(
                "/mfa/totp/verify",
                &[("authorization", &bearer(&token))],
                &json!({"code": "123456"}),
            )),
            key: KeyKind::Mfa,
            warm: 500,
        },
        Case {
            label: "mfa-totp-disable (locked account: no check)",
            binary: "mfa-totp-disable",
            feed: Feed::Fixed(json_post(
                "/mfa/totp/disable",
                &[("authorization", &bearer(&dave_token))],
                &json!({"code": "123456"}),
            )),
            key: KeyKind::Mfa,
            warm: 500,
        },
        Case {
            label: "mfa-recovery-codes (locked account: no check)",
            binary: "mfa-recovery-codes",
            feed: Feed::Fixed(json_post(
                "/mfa/recovery-codes",
                &[("authorization", &bearer(&dave_token))],
                &json!({"code": "123456"}),
            )),
            key: KeyKind::Mfa,
            warm: 500,
        },
        Case {
            label: "passkey-register-options (locked account: no hash)",
            binary: "passkey-register-options",
            feed: Feed::Fixed(json_post(
                "/passkeys/register/options",
                &[("authorization", &bearer(&dave_token))],
                &json!({"password": PW}),
            )),
            key: KeyKind::Passkey,
            warm: 500,
        },
        Case {
            label: "passkey-register (a challenge never issued)",
            binary: "passkey-register",
            feed: Feed::Fixed(json_post(
                "/passkeys/register",
                &[("authorization", &bearer(&token))],
                &sample_body("passkey-register-unknown-challenge.json"),
            )),
            key: KeyKind::Passkey,
            warm: 500,
        },
        Case {
            label: "passkey-login-options",
            binary: "passkey-login-options",
            feed: Feed::Fixed(json_post("/passkeys/login/options", &[], &json!({}))),
            key: KeyKind::Passkey,
            warm: 500,
        },
        Case {
            label: "passkey-login (a challenge never signed)",
            binary: "passkey-login",
            feed: Feed::Fixed(json_post(
                "/passkeys/login",
                &[],
                &sample_body("passkey-login-unsigned-challenge.json"),
            )),
            key: KeyKind::Passkey,
            warm: 500,
        },
        Case {
            label: "passkeys (list)",
            binary: "passkeys",
            feed: Feed::Fixed(testkit::events::apigw(
                "GET",
                "/passkeys",
                &[("authorization", &bearer(&token))],
                None,
            )),
            key: KeyKind::Mfa,
            warm: 500,
        },
        Case {
            label: "mailer (a reset mail through SES)",
            binary: "mailer",
            feed: Feed::Mailer { next: 0 },
            key: KeyKind::Account,
            warm: WARM_MAILER,
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
        if !only.is_empty() && !only.contains(&binary) {
            continue;
        }
        let bin = bindir.join(binary);
        let env = env_for(key);
        let (mut init, mut first) = (Vec::new(), Vec::new());
        let mut expected = None;
        // moto's SQS answers SendMessage in about 7 ms on an empty queue and about 60 ms once it
        // holds a thousand messages (nothing consumes them here): emptied before every timed
        // invocation of the functions that mail, so what is timed is the function, not moto.
        let empty_queue = async || {
            if matches!(key, KeyKind::Account) {
                drain().await;
            }
        };
        for _ in 0..starts {
            let event = feed.event();
            empty_queue().await;
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
            let status = status_of(&resp);
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
            Some(status_of(&resp)) != expected
        };
        for _ in 0..10 {
            unexpected += u64::from(call(&mut feed).await);
        }
        let pid = f.pid().unwrap();
        let cpu0 = cpu_ns(pid);
        let mut warm = Vec::new();
        for _ in 0..n {
            empty_queue().await;
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
    let enumeration = if !only.is_empty() {
        json!(null)
    } else {
        json!({
        "signup": enumeration(
            &bindir.join("signup"),
            &env_for(KeyKind::Account),
            ("taken address", "new address"),
            |k, taken| {
                let email = if taken { format!("e{k}@example.com") } else { format!("n{k}@example.com") };
                let username = format!("{}{k}", if taken { "st" } else { "sn" });
                json_post("/signup", &[], &json!({"username": username, "email": email, "password": PW}))
            },
            drain,
        )
        .await,
        "forgot": enumeration(
            &bindir.join("forgot-password"),
            &env_for(KeyKind::Account),
            ("known address", "unknown address"),
            |k, known| {
                let email = if known { format!("e{k}@example.com") } else { format!("u{k}@example.com") };
                json_post("/password/forgot", &[], &json!({"email": email}))
            },
            drain,
        )
        .await,
        })
    };
    println!(
        "{}",
        serde_json::to_string_pretty(
            &json!({"starts": starts, "functions": results, "enumeration": enumeration})
        )
        .unwrap()
    );
}

/// One warm process of `bin` answering [`ENUMERATION_ROUNDS`] requests of each of two kinds
/// (`event(k, true)` the first, `event(k, false)` the second), alternated in pairs whose order
/// alternates too, each from a source address of its own. Every answer must be 202. The
/// medians of each kind, and the first's over the second's.
async fn enumeration(
    bin: &Path,
    env: &[(String, String)],
    (first, second): (&str, &str),
    event: impl Fn(usize, bool) -> Value,
    empty_queue: impl AsyncFn(),
) -> Value {
    let f = start(bin, env).await;
    let mut times = [Vec::new(), Vec::new()];
    let mut n = 1_000_000u32;
    for k in 0..ENUMERATION_ROUNDS + 5 {
        let order = if k % 2 == 0 { [true, false] } else { [false, true] };
        for kind in order {
            n += 1;
            let e = from_source(event(k, kind), &source(n));
            empty_queue().await;
            let t = Instant::now();
            let resp = f.invoke(e).await.response();
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(resp["statusCode"], 202, "{bin:?}: {resp}\n{}", f.output());
            // The first five pairs warm up.
            if k >= 5 {
                times[usize::from(!kind)].push(ms);
            }
        }
    }
    let [a, b] = times;
    let (sa, sb) = (summary(a), summary(b));
    let ratio = sa["median"].as_f64().unwrap() / sb["median"].as_f64().unwrap();
    eprintln!("lambda bench: enumeration {bin:?} done");
    json!({"kinds": [first, second], "first_ms": sa, "second_ms": sb, "ratio": ratio})
}
