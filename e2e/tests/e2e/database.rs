//! Production-grade database connections, tested against real PostgreSQL clusters made for the
//! purpose: TLS with a CA made here (verify-full, verify-ca, require, wrong CA, wrong host name),
//! connections killed or lost to a restart between two requests, a real outage and the recovery
//! after it, and concurrency that must lose nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_shared::db::{ConnectSettings, Db, DbError};
use auth_shared::password::{self, Verdict};
use auth_shared::signing::keys::Keys;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::json;
use testkit::app::token_config;
use testkit::events::TEST_KEY;
use testkit::pg::{TEST_POLICY, db_config};

/// A CA, and a server certificate it signed for `names`.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn make_pki(names: &[&str]) -> Pki {
    make_pki_named("auth-service test CA", names)
}

fn make_pki_named(ca_name: &str, names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki { ca_pem: ca_cert.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

fn start_cluster(tls: Option<&Pki>) -> tempdb::Cluster {
    let opts = tempdb::Options {
        tls: tls.map(|p| tempdb::Tls { cert_pem: p.cert_pem.clone(), key_pem: p.key_pem.clone() }),
        ..Default::default()
    };
    tempdb::Cluster::start(opts).expect("cluster starts")
}

fn db(url: &str, pool: usize) -> Db {
    let settings = ConnectSettings::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let mut cfg = db_config(settings.clone(), pool);
    cfg.connect_timeout = Duration::from_secs(1);
    cfg.health_timeout = Duration::from_secs(1);
    Db::with_settings(settings, cfg).unwrap()
}

/// Whether the session is encrypted, as the server sees it.
async fn session_ssl(db: &Db) -> Result<bool, DbError> {
    db.run(|c| {
        Box::pin(async move {
            c.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
                .await?
                .try_get(0)
        })
    })
    .await
}

fn url(cluster: &tempdb::Cluster, host: &str, query: &str) -> String {
    format!("postgres://postgres:{}@{host}:{}/postgres?{query}", cluster.password(), cluster.port())
}

#[tokio::test]
async fn tls_modes_mean_what_they_mean_to_libpq() {
    let pki = make_pki(&["localhost"]);
    let cluster = start_cluster(Some(&pki));
    let dir = tempdir("tls");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    // Another CA, and an impostor: a different key under the very same CA name.
    let other = dir.join("other-ca.pem");
    std::fs::write(&other, make_pki_named("some other CA", &["localhost"]).ca_pem).unwrap();
    let impostor = dir.join("impostor-ca.pem");
    std::fs::write(&impostor, make_pki(&["localhost"]).ca_pem).unwrap();
    let ca = ca.to_str().unwrap();
    let other = other.to_str().unwrap();
    let impostor = impostor.to_str().unwrap();

    // verify-full with the right CA and the name on the certificate: encrypted.
    let full = db(&url(&cluster, "localhost", &format!("sslmode=verify-full&sslrootcert={ca}")), 1);
    assert!(session_ssl(&full).await.unwrap());
    // verify-full with a CA that did not sign the certificate: a clear refusal.
    let wrong_ca =
        db(&url(&cluster, "localhost", &format!("sslmode=verify-full&sslrootcert={other}")), 1);
    let e = session_ssl(&wrong_ca).await.unwrap_err().to_string();
    assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");
    let fake =
        db(&url(&cluster, "localhost", &format!("sslmode=verify-full&sslrootcert={impostor}")), 1);
    let e = session_ssl(&fake).await.unwrap_err().to_string();
    assert!(e.contains("invalid peer certificate: BadSignature"), "{e}");
    // verify-full to a name the certificate does not carry: a clear refusal.
    let wrong_host =
        db(&url(&cluster, "127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}")), 1);
    let e = session_ssl(&wrong_host).await.unwrap_err().to_string();
    assert!(
        e.contains("invalid peer certificate: certificate not valid for name \"127.0.0.1\""),
        "{e}"
    );
    // verify-ca checks the chain only, so the same connection is fine.
    let chain_only =
        db(&url(&cluster, "127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")), 1);
    assert!(session_ssl(&chain_only).await.unwrap());
    let e = session_ssl(&db(
        &url(&cluster, "127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={other}")),
        1,
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // require without a CA: encrypted, unverified (libpq's meaning).
    assert!(session_ssl(&db(&url(&cluster, "127.0.0.1", "sslmode=require"), 1)).await.unwrap());
    // ...but require with a root certificate verifies the chain, as libpq does.
    let e = session_ssl(&db(
        &url(&cluster, "127.0.0.1", &format!("sslmode=require&sslrootcert={other}")),
        1,
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // prefer takes TLS when offered; disable never does.
    assert!(session_ssl(&db(&url(&cluster, "127.0.0.1", "sslmode=prefer"), 1)).await.unwrap());
    assert!(!session_ssl(&db(&url(&cluster, "127.0.0.1", "sslmode=disable"), 1)).await.unwrap());

    // A server without TLS: require refuses, prefer falls back.
    let plain = start_cluster(None);
    let e = session_ssl(&db(&url(&plain, "127.0.0.1", "sslmode=require"), 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("TLS") || e.contains("tls") || e.contains("SSL"), "{e}");
    assert!(!session_ssl(&db(&url(&plain, "127.0.0.1", "sslmode=prefer"), 1)).await.unwrap());
}

#[tokio::test]
async fn the_health_binary_connects_with_verify_full() {
    let pki = make_pki(&["localhost"]);
    let cluster = start_cluster(Some(&pki));
    let dir = tempdir("tls-bin");
    let ca = dir.join("rds-like-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let good =
        url(&cluster, "localhost", &format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    let f = testkit::runtime_api::Function::start(
        &testkit::binary("health"),
        &[("DATABASE_URL", &good)],
    )
    .await;
    let resp = f.invoke(testkit::events::load("health-apigw.json")).await.response();
    assert_eq!(resp["statusCode"], 200, "{resp}\n{}", f.output());
    let bad =
        url(&cluster, "127.0.0.1", &format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    let f = testkit::runtime_api::Function::start(
        &testkit::binary("health"),
        &[("DATABASE_URL", &bad)],
    )
    .await;
    let resp = f.invoke(testkit::events::load("health-apigw.json")).await.response();
    assert_eq!(resp["statusCode"], 503, "{resp}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        f.output().contains("certificate not valid for name"),
        "the log says why: {}",
        f.output()
    );
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "auth-e2e-{name}-{}",
        uuid::Uuid::from_bytes(auth_shared::random::bytes()).simple()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Handlers over one pooled connection to `cluster`, as in a Lambda container.
struct Service {
    db: Arc<Db>,
    health: health::State,
    login: login::State,
    profile: profile::State,
    test_db: test_db::State,
}

async fn service(cluster: &tempdb::Cluster) -> Service {
    let admin = testkit::pg::connect(&cluster.url("postgres")).await;
    admin.batch_execute("CREATE DATABASE auth").await.ok();
    let url = cluster.url("auth");
    let mut c = testkit::pg::connect(&url).await;
    auth_shared::migrate::run(&mut c).await.unwrap();
    let hash = password::hash("pw of the user", TEST_POLICY);
    let new = auth_shared::users::NewUser {
        username: "ann",
        email: "ann@example.com",
        full_name: None,
        password_hash: &hash,
        email_verified: true,
    };
    auth_shared::users::create(&c, &new).await.ok();
    let db = Arc::new(db(&url, 1));
    let keys = Arc::new(Keys::local(TEST_KEY.as_bytes()).unwrap());
    Service {
        health: health::State::new(db.clone()),
        login: login::State::new(db.clone(), keys.clone(), token_config(), TEST_POLICY),
        profile: profile::State::new(db.clone(), keys, token_config()),
        test_db: test_db::State::new(db.clone()),
        db,
    }
}

impl Service {
    async fn login(&self) -> (u16, serde_json::Value) {
        let body = json!({"username": "ann", "password": "pw of the user"}).to_string();
        let req =
            testkit::request("POST", "/login", &[("content-type", "application/json")], &body);
        let (s, _, b) = testkit::read(login::handle(&self.login, req).await);
        (s, b)
    }

    async fn all(&self, token: &str) -> [u16; 4] {
        let get = |p: &str, a: Option<&str>| {
            let h: Vec<(&str, &str)> = a.map(|a| ("authorization", a)).into_iter().collect();
            testkit::request("GET", p, &h, "")
        };
        let bearer = format!("Bearer {token}");
        [
            health::handle(&self.health, get("/health", None)).await.status().as_u16(),
            test_db::handle(&self.test_db, get("/test-db", None)).await.status().as_u16(),
            self.login().await.0,
            profile::handle(&self.profile, get("/profile", Some(&bearer))).await.status().as_u16(),
        ]
    }
}

#[tokio::test]
async fn killed_backends_and_restarts_fail_no_request() {
    let cluster = start_cluster(None);
    let svc = service(&cluster).await;
    let (status, body) = svc.login().await;
    assert_eq!(status, 200);
    let token = body["access_token"].as_str().unwrap().to_owned();
    let admin = testkit::pg::connect(&cluster.url("postgres")).await;
    for round in 0..5 {
        assert_eq!(svc.all(&token).await, [200; 4], "round {round}, before");
        // Every other backend dies, as when RDS drops idle connections of a frozen container.
        admin
            .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'", &[])
            .await
            .unwrap();
        assert_eq!(svc.all(&token).await, [200; 4], "round {round}, after killing backends");
    }
    for round in 0..3 {
        cluster.restart().unwrap();
        assert_eq!(svc.all(&token).await, [200; 4], "request after restart {round}");
    }
}

#[tokio::test]
async fn an_outage_gets_503_in_time_and_service_resumes_by_itself() {
    let cluster = start_cluster(None);
    let svc = service(&cluster).await;
    let token = svc.login().await.1["access_token"].as_str().unwrap().to_owned();
    assert_eq!(svc.all(&token).await, [200; 4]);
    cluster.stop_server().unwrap();
    let deadline = svc.db.config().connect_timeout.max(svc.db.config().health_timeout);
    for _ in 0..3 {
        let started = Instant::now();
        let statuses = svc.all(&token).await;
        assert_eq!(statuses, [503; 4]);
        // Four requests, each within its deadline; the margin is generous for shared machines.
        assert!(
            started.elapsed() < 4 * deadline + Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    cluster.start_server().unwrap();
    assert_eq!(svc.all(&token).await, [200; 4], "service resumes when the database returns");
}

#[tokio::test]
async fn a_silent_database_gets_503_within_the_connect_deadline() {
    let (port, held) = testkit::silent_listener().await;
    let svc_db = Arc::new(db(&format!("postgres://u:p@127.0.0.1:{port}/x?sslmode=disable"), 1));
    let keys = Arc::new(Keys::local(TEST_KEY.as_bytes()).unwrap());
    let login_state = login::State::new(svc_db.clone(), keys.clone(), token_config(), TEST_POLICY);
    let body = json!({"username": "ann", "password": "x"}).to_string();
    let started = Instant::now();
    let req = testkit::request("POST", "/login", &[("content-type", "application/json")], &body);
    let (status, _, resp) = testkit::read(login::handle(&login_state, req).await);
    let took = started.elapsed();
    assert_eq!((status, resp["error"].as_str()), (503, Some("service_unavailable")));
    let deadline = svc_db.config().connect_timeout;
    assert!(took >= deadline && took < deadline + Duration::from_millis(1500), "{took:?}");
    held.abort();
}

#[tokio::test]
async fn two_hundred_concurrent_logins_lose_nothing() {
    let db = testkit::TestDb::new().await;
    // Waits long enough that a loaded machine queues rather than refuses: this test is about
    // losing nothing, not about deadlines (those have their own tests).
    let settings = ConnectSettings::from_url(&db.url).unwrap();
    let mut cfg = db_config(settings.clone(), 10);
    cfg.connect_timeout = Duration::from_secs(60);
    cfg.statement_timeout = Duration::from_secs(60);
    let pool = Arc::new(Db::with_settings(settings, cfg).unwrap());
    let keys = Arc::new(Keys::local(TEST_KEY.as_bytes()).unwrap());
    let state = Arc::new(login::State::new(pool, keys, token_config(), TEST_POLICY));
    let mut ids = Vec::new();
    for u in ["u1", "u2", "u3", "u4"] {
        ids.push(db.create_user(u, &format!("{u}@example.com"), "right password").await);
    }
    db.create_user("w", "w@example.com", "right password").await;
    let started = db
        .client()
        .await
        .query_one("SELECT now()", &[])
        .await
        .unwrap()
        .get::<_, time::OffsetDateTime>(0);
    let mut tasks = Vec::new();
    for i in 0..200 {
        // 160 right passwords spread over four users, 40 wrong ones for a fifth.
        let (user, pw) = if i % 5 == 4 {
            ("w".to_owned(), "wrong".to_owned())
        } else {
            (format!("u{}", i % 5 + 1), "right password".to_owned())
        };
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"username": user, "password": pw}).to_string();
            let req =
                testkit::request("POST", "/login", &[("content-type", "application/json")], &body);
            (user, login::handle(&state, req).await.status().as_u16())
        }));
    }
    let mut by_status = std::collections::BTreeMap::new();
    let launched = Instant::now();
    for t in tasks {
        let (user, status) = t.await.unwrap();
        *by_status.entry((user.starts_with('u'), status)).or_insert(0) += 1;
    }
    assert_eq!(
        by_status.get(&(true, 200)),
        Some(&160),
        "every right password succeeds: {by_status:?}"
    );
    // Five failures lock the key for 1 s, the sixth for 2 s, ...: on a machine slow enough for
    // the run to outlast a lock, a later attempt is rightly checked too.
    let elapsed = launched.elapsed().as_secs_f64();
    let allowed = 5 + (1..12).filter(|k| (2f64.powi(*k) - 1.0) <= elapsed).count();
    let checked = *by_status.get(&(false, 401)).unwrap_or(&0);
    assert!(
        (5..=allowed).contains(&checked),
        "{checked} wrong passwords checked in {elapsed:.1} s: {by_status:?}"
    );
    assert_eq!(by_status.get(&(false, 429)).copied().unwrap_or(0), 40 - checked, "{by_status:?}");
    let c = db.client().await;
    let rows =
        c.query("SELECT username, last_login_at FROM users ORDER BY username", &[]).await.unwrap();
    for r in rows {
        let (name, last): (String, Option<time::OffsetDateTime>) = (r.get(0), r.get(1));
        if name == "w" {
            assert!(last.is_none());
        } else {
            assert!(last.is_some_and(|t| t >= started), "{name}: {last:?}");
        }
    }
    let throttle = c.query("SELECT key, failures FROM login_throttle", &[]).await.unwrap();
    assert_eq!(throttle.len(), 1, "successes leave no rows; the wrong passwords one");
    assert_eq!(
        throttle[0].get::<_, i32>(1) as usize,
        checked,
        "the count is exactly the failures checked"
    );
}

#[tokio::test]
async fn hash_upgrade_racing_a_password_change_never_loses_the_new_password() {
    let db = testkit::TestDb::new().await;
    let pool = db.db(4);
    let keys = Arc::new(Keys::local(TEST_KEY.as_bytes()).unwrap());
    let state = Arc::new(login::State::new(pool, keys, token_config(), TEST_POLICY));
    let c = Arc::new(db.client().await);
    for round in 0..25 {
        let name = format!("racer{round}");
        // A cheap legacy hash, so every successful login upgrades it.
        let legacy = password::hash_with_salt("old password", b"legacy-salt", 1000)
            .replace("$pbkdf2-sha256$i=1000,l=32$", "$pbkdf2-sha256$1000$");
        db.create_user_with_hash(&name, &format!("{name}@example.com"), &legacy).await;
        let new_hash = password::hash("new password", TEST_POLICY);
        let login = {
            let (state, name) = (state.clone(), name.clone());
            tokio::spawn(async move {
                let body = json!({"username": name, "password": "old password"}).to_string();
                let req = testkit::request(
                    "POST",
                    "/login",
                    &[("content-type", "application/json")],
                    &body,
                );
                login::handle(&state, req).await.status().as_u16()
            })
        };
        let change = {
            let (c, name) = (c.clone(), name.clone());
            tokio::spawn(async move {
                if round % 2 == 0 {
                    tokio::time::sleep(Duration::from_micros(200 * round as u64)).await;
                }
                auth_shared::users::set_password(&*c, &name, &new_hash).await.unwrap()
            })
        };
        let status = login.await.unwrap();
        assert!(change.await.unwrap());
        assert!(status == 200 || status == 401, "{status}");
        let stored: String = c
            .query_one("SELECT password_hash FROM users WHERE username = $1", &[&name])
            .await
            .unwrap()
            .get(0);
        assert!(
            matches!(password::verify("new password", &stored, TEST_POLICY), Verdict::Match { .. }),
            "round {round}: the admin's new password was lost (login answered {status})"
        );
    }
}
