//! Secrets Manager for real: the function binaries read their keys and database credentials
//! through the AWS SDK from moto (a local AWS API emulator), across rotations, outages, missing
//! and denied secrets.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use testkit::TestDb;
use testkit::aws_proxy::{AwsProxy, Misbehaviour};
use testkit::moto::Moto;
use testkit::runtime_api::Function;

const PW: &str = "correct horse battery staple";

fn login_event(user: &str) -> Value {
    testkit::events::apigw(
        "POST",
        "/login",
        &[("content-type", "application/json")],
        Some(&json!({"username": user, "password": PW}).to_string()),
    )
}

fn profile_event(token: &str) -> Value {
    testkit::events::apigw(
        "GET",
        "/profile",
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
}

/// Logs in through the login binary; returns (token, kid).
async fn login(f: &Function) -> (String, String) {
    let resp = f.invoke(login_event("alice")).await.response();
    assert_eq!(resp["statusCode"], 200, "{resp}\n{}", f.output());
    let body: Value = serde_json::from_str(&testkit::events::response_body(&resp)).unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap())
            .unwrap();
    (token.clone(), header["kid"].as_str().unwrap().to_owned())
}

async fn profile_status(f: &Function, token: &str) -> u64 {
    f.invoke(profile_event(token)).await.response()["statusCode"].as_u64().unwrap()
}

/// Signs a token with `key` under `kid` (an operator's or another trusted service's token).
fn token_with(key: &str, kid: &str, sub: uuid::Uuid) -> String {
    let k = auth_shared::signing::Key::new(kid, key.as_bytes()).unwrap();
    auth_shared::token::issue(
        &testkit::app::token_config(),
        &k,
        sub,
        "alice",
        None,
        auth_shared::token::now(),
    )
    .unwrap()
}

#[tokio::test]
async fn keys_come_from_secrets_manager_and_survive_rotation() {
    let moto = Moto::start().await;
    let sm = moto.client().await;
    let db = TestDb::new().await;
    let id = db.create_user("alice", "alice@example.com", PW).await;
    let key1 = "first-signing-key-0123456789abcdefghijklmnop";
    let created =
        sm.create_secret().name("auth/signing-key").secret_string(key1).send().await.unwrap();
    let arn = created.arn().unwrap().to_owned();
    let v1 = created.version_id().unwrap().to_owned();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("SECRET_ARN", arn.as_str()),
        ("SECRET_CACHE_TTL_SECONDS", "1"),
        ("PBKDF2_ITERATIONS", "100000"),
        // Sign with a new version at once (the lead time has its own test).
        ("JWKS_PUBLISH_LEAD_SECONDS", "0"),
    ];
    let login_fn = moto.function("login", &env).await;
    let profile_fn = moto.function("profile", &env).await;

    let (old_token, kid) = login(&login_fn).await;
    assert_eq!(kid, v1, "kid is the Secrets Manager version id");
    assert_eq!(profile_status(&profile_fn, &old_token).await, 200);

    // Rotation: a new AWSCURRENT in the JSON form; the old version becomes AWSPREVIOUS.
    let key2 = "second-signing-key-0123456789abcdefghijklmn";
    let put = sm
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(json!({"SECRET_KEY": key2}).to_string())
        .send()
        .await
        .unwrap();
    let v2 = put.version_id().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (new_token, kid) = login(&login_fn).await;
    assert_eq!(kid, v2, "new tokens carry the new version's kid");
    let (_, claims) = new_token.split_once('.').unwrap();
    assert!(!claims.is_empty());
    assert_eq!(profile_status(&profile_fn, &new_token).await, 200, "{}", profile_fn.output());
    assert_eq!(
        profile_status(&profile_fn, &old_token).await,
        200,
        "tokens of AWSPREVIOUS still verify"
    );
    // Tokens are signed with exactly the version their kid names.
    assert_eq!(profile_status(&profile_fn, &token_with(key2, &v1, id)).await, 401);
    assert_eq!(profile_status(&profile_fn, &token_with(key2, &v2, id)).await, 200);
    // A container started after the rotation reads only AWSCURRENT; a made-up kid arriving first
    // cannot make it refuse tokens of AWSPREVIOUS (that version is read once, outside the
    // once-a-minute refresh).
    let fresh = moto.function("profile", &env).await;
    let forged = token_with(key2, "no-such-version", id);
    assert_eq!(profile_status(&fresh, &forged).await, 401);
    assert_eq!(profile_status(&fresh, &old_token).await, 200, "{}", fresh.output());
    // Two rotations later v1 is neither current nor previous: its tokens stop working.
    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string("third-signing-key-0123456789abcdefghijklmno")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(profile_status(&profile_fn, &old_token).await, 401);
    assert_eq!(profile_status(&profile_fn, &new_token).await, 200);
}

#[tokio::test]
async fn unknown_kids_refresh_at_most_once_a_minute() {
    let moto = Moto::start().await;
    let sm = moto.client().await;
    let db = TestDb::new().await;
    let id = db.create_user("alice", "alice@example.com", PW).await;
    let created = sm
        .create_secret()
        .name("auth/key")
        .secret_string("k1-0123456789abcdefghijklmnopqrstuvwxyz")
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_owned();
    // A long cache: only an unknown kid can make the function look again.
    let profile_fn = moto
        .function(
            "profile",
            &[
                ("DATABASE_URL", &db.url),
                ("SECRET_ARN", &arn),
                ("SECRET_CACHE_TTL_SECONDS", "3600"),
            ],
        )
        .await;
    assert_eq!(
        profile_status(
            &profile_fn,
            &token_with(
                "k1-0123456789abcdefghijklmnopqrstuvwxyz",
                created.version_id().unwrap(),
                id
            )
        )
        .await,
        200
    );

    let v2 = sm
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("k2-0123456789abcdefghijklmnopqrstuvwxyz")
        .send()
        .await
        .unwrap();
    let t2 = token_with("k2-0123456789abcdefghijklmnopqrstuvwxyz", v2.version_id().unwrap(), id);
    assert_eq!(
        profile_status(&profile_fn, &t2).await,
        200,
        "an unknown kid refreshes the cache once"
    );

    let v3 = sm
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("k3-0123456789abcdefghijklmnopqrstuvwxyz")
        .send()
        .await
        .unwrap();
    // A flood of made-up kids, then a genuine new one, all within the minute: no refresh.
    for i in 0..50 {
        let forged =
            token_with("k3-0123456789abcdefghijklmnopqrstuvwxyz", &format!("made-up-{i}"), id);
        assert_eq!(profile_status(&profile_fn, &forged).await, 401);
    }
    let t3 = token_with("k3-0123456789abcdefghijklmnopqrstuvwxyz", v3.version_id().unwrap(), id);
    assert_eq!(profile_status(&profile_fn, &t3).await, 401, "no second refresh within a minute");
    assert_eq!(profile_status(&profile_fn, &t2).await, 200, "known versions keep working");
}

#[tokio::test]
async fn a_warm_function_rides_out_a_secrets_manager_outage() {
    let mut moto = Moto::start().await;
    let sm = moto.client().await;
    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", PW).await;
    let created = sm
        .create_secret()
        .name("auth/key")
        .secret_string("k-0123456789abcdefghijklmnopqrstuvwxyz")
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_owned();
    let f = moto
        .function(
            "login",
            &[
                ("DATABASE_URL", &db.url),
                ("SECRET_ARN", &arn),
                ("SECRET_CACHE_TTL_SECONDS", "1"),
                ("PBKDF2_ITERATIONS", "100000"),
            ],
        )
        .await;
    let (_, kid) = login(&f).await;
    moto.stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, kid_after) = login(&f).await;
    assert_eq!(kid, kid_after, "still signing with the cached key");
    assert!(
        f.output().contains("signing key refresh failed; serving cached keys"),
        "{}",
        f.output()
    );
}

#[tokio::test]
async fn missing_and_denied_secrets_stop_start_up_with_one_line() {
    let moto = Moto::start().await;
    let db = TestDb::new().await;
    let mut f = moto
        .function(
            "login",
            &[
                ("DATABASE_URL", &db.url),
                ("SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"),
            ],
        )
        .await;
    assert_eq!(f.exit_code(Duration::from_secs(30)).await, Some(1));
    let out = f.output();
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].contains("start-up failed") && lines[0].contains("ResourceNotFoundException"),
        "{out}"
    );

    // A too-short key in the secret is refused by name, without echoing it.
    let sm = moto.client().await;
    let short = sm
        .create_secret()
        .name("auth/short")
        .secret_string("short-key-value")
        .send()
        .await
        .unwrap();
    let mut f = moto
        .function("login", &[("DATABASE_URL", &db.url), ("SECRET_ARN", short.arn().unwrap())])
        .await;
    assert_eq!(f.exit_code(Duration::from_secs(30)).await, Some(1));
    assert!(
        f.output().contains("SECRET_ARN is too short") && !f.output().contains("short-key-value"),
        "{}",
        f.output()
    );

    // Denied: moto enforcing IAM, and credentials whose policy does not allow the read.
    let denied = Moto::start_with_iam().await;
    let (arn, access_key, secret_key) = denied
        .create_secret_and_powerless_user("auth/guarded", "g-0123456789abcdefghijklmnopqrstuvwxyz")
        .await;
    let mut env: Vec<(String, String)> = denied.env();
    env.retain(|(k, _)| {
        !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET_ACCESS_KEY")
    });
    env.push(("AWS_ACCESS_KEY_ID".into(), access_key));
    env.push(("AWS_SECRET_ACCESS_KEY".into(), secret_key));
    env.push(("DATABASE_URL".into(), db.url.clone()));
    env.push(("SECRET_ARN".into(), arn));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut f = Function::start(&testkit::binary("login"), &refs).await;
    assert_eq!(f.exit_code(Duration::from_secs(30)).await, Some(1));
    let out = f.output();
    assert_eq!(out.lines().filter(|l| !l.trim().is_empty()).count(), 1, "{out}");
    assert!(out.contains("was denied") && out.contains("AccessDenied"), "{out}");
}

#[tokio::test]
async fn an_rds_style_database_secret_works_and_follows_a_password_rotation() {
    let moto = Moto::start().await;
    let sm = moto.client().await;
    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", PW).await;
    // A role of its own, as an RDS-managed secret holds only username and password.
    let c = db.client().await;
    c.batch_execute(&format!(
        "CREATE ROLE app_{0} LOGIN PASSWORD 'first-db-password'; GRANT ALL ON ALL TABLES IN SCHEMA public TO app_{0};",
        db.name
    ))
    .await
    .unwrap();
    let role = format!("app_{}", db.name);
    let secret = sm
        .create_secret()
        .name("rds!db-0123")
        .secret_string(json!({"username": role, "password": "first-db-password"}).to_string())
        .send()
        .await
        .unwrap();
    let port =
        testkit::pg::server_url().split(':').nth(3).unwrap().split('/').next().unwrap().to_owned();
    let env = [
        ("DATABASE_SECRET_ARN", secret.arn().unwrap()),
        ("DATABASE_HOST", "127.0.0.1"),
        ("DATABASE_PORT", port.as_str()),
        ("DATABASE_NAME", db.name.as_str()),
        ("DATABASE_SSLMODE", "disable"),
        ("SECRET_KEY", testkit::events::TEST_KEY),
        ("PBKDF2_ITERATIONS", "100000"),
    ];
    let f = moto.function("login", &env).await;
    login(&f).await;

    // Rotation: the password changes in the database and in the secret; the pooled connection
    // is gone (as after a Lambda freeze), so the next one must use the new password.
    c.batch_execute(&format!("ALTER ROLE {role} PASSWORD 'second-db-password'")).await.unwrap();
    sm.put_secret_value()
        .secret_id(secret.arn().unwrap())
        .secret_string(json!({"username": role, "password": "second-db-password"}).to_string())
        .send()
        .await
        .unwrap();
    c.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
        &[&role],
    )
    .await
    .unwrap();
    // The secret was read at start-up; re-reads are spaced 10 s apart.
    tokio::time::sleep(Duration::from_secs(10)).await;
    login(&f).await;
    assert!(f.output().contains("re-reading DATABASE_SECRET_ARN"), "{}", f.output());
    assert!(
        !f.output().contains("second-db-password") && !f.output().contains("first-db-password")
    );
}

/// A secret with `versions` key versions, the last AWSCURRENT and the one before AWSPREVIOUS;
/// returns its ARN and the version ids in order.
async fn secret_with_versions(
    sm: &aws_sdk_secretsmanager::Client,
    name: &str,
    versions: usize,
) -> (String, Vec<(String, String)>) {
    let key = |i: usize| format!("k{i}-0123456789abcdefghijklmnopqrstuvwxyz");
    let created = sm.create_secret().name(name).secret_string(key(0)).send().await.unwrap();
    let arn = created.arn().unwrap().to_owned();
    let mut ids = vec![(created.version_id().unwrap().to_owned(), key(0))];
    for i in 1..versions {
        let put = sm.put_secret_value().secret_id(&arn).secret_string(key(i)).send().await.unwrap();
        ids.push((put.version_id().unwrap().to_owned(), key(i)));
    }
    (arn, ids)
}

#[tokio::test]
async fn a_refresh_that_half_fails_drops_no_key() {
    let moto = Moto::start().await;
    let proxy = AwsProxy::start(&moto.endpoint).await;
    let sm = moto.client().await;
    let db = TestDb::new().await;
    let alice = db.create_user("alice", "alice@example.com", PW).await;
    let (arn, versions) = secret_with_versions(&sm, "auth/half", 2).await;
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("SECRET_ARN", arn.as_str()),
        ("SECRET_CACHE_TTL_SECONDS", "1"),
        ("JWKS_PUBLISH_LEAD_SECONDS", "0"),
    ];
    let profile_fn = moto.function_through(&proxy.endpoint, "profile", &env).await;
    let tokens: Vec<String> = versions.iter().map(|(id, k)| token_with(k, id, alice)).collect();
    for t in &tokens {
        assert_eq!(profile_status(&profile_fn, t).await, 200, "{}", profile_fn.output());
    }
    // AWSPREVIOUS reads are throttled (every attempt), past the cache's TTL: the version the
    // container holds keeps verifying.
    proxy.misbehave("AWSPREVIOUS", Misbehaviour::Throttle);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for t in &tokens {
        assert_eq!(profile_status(&profile_fn, t).await, 200, "{}", profile_fn.output());
    }
    assert!(
        profile_fn.output().contains("could not all be read; keeping every version held"),
        "{}",
        profile_fn.output()
    );
    // A rotation while the reads still fail: the new AWSCURRENT is taken in, nothing held is
    // given up.
    let put = sm
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("k2-0123456789abcdefghijklmnopqrstuvwxyz")
        .send()
        .await
        .unwrap();
    let newest =
        token_with("k2-0123456789abcdefghijklmnopqrstuvwxyz", put.version_id().unwrap(), alice);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for t in tokens.iter().chain([&newest]) {
        assert_eq!(profile_status(&profile_fn, t).await, 200, "{}", profile_fn.output());
    }
    // Once every read succeeds again, the set is what Secrets Manager says: the version no
    // stage names any more stops verifying.
    proxy.behave();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(profile_status(&profile_fn, &newest).await, 200);
    assert_eq!(profile_status(&profile_fn, &tokens[1]).await, 200, "AWSPREVIOUS");
    assert_eq!(profile_status(&profile_fn, &tokens[0]).await, 401, "{}", profile_fn.output());
}

#[tokio::test]
async fn a_cold_login_that_cannot_read_awsprevious_answers_503_rather_than_sign_too_soon() {
    let moto = Moto::start().await;
    let proxy = AwsProxy::start(&moto.endpoint).await;
    let sm = moto.client().await;
    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", PW).await;
    // Two versions made just now: AWSCURRENT is far inside the publishing lead.
    let (arn, versions) = secret_with_versions(&sm, "auth/young", 2).await;
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("SECRET_ARN", arn.as_str()),
        ("JWKS_PUBLISH_LEAD_SECONDS", "7500"),
        ("PBKDF2_ITERATIONS", "100000"),
    ];
    proxy.misbehave("AWSPREVIOUS", Misbehaviour::Throttle);
    let f = moto.function_through(&proxy.endpoint, "login", &env).await;
    let resp = f.invoke(login_event("alice")).await.response();
    assert_eq!(resp["statusCode"], 503, "{resp}\n{}", f.output());
    let body: Value = serde_json::from_str(&testkit::events::response_body(&resp)).unwrap();
    assert_eq!(body["error"], "service_unavailable", "{body}");
    assert!(f.output().contains("no signing key can be used"), "{}", f.output());
    // With AWSPREVIOUS readable, the previous version signs until AWSCURRENT is old enough.
    proxy.behave();
    let f = moto.function_through(&proxy.endpoint, "login", &env).await;
    assert_eq!(login(&f).await.1, versions[0].0, "the previous version signs");
    // The first key of a deployment (no AWSPREVIOUS at all) signs at once.
    let (first, ids) = secret_with_versions(&sm, "auth/first", 1).await;
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("SECRET_ARN", first.as_str()),
        ("JWKS_PUBLISH_LEAD_SECONDS", "7500"),
        ("PBKDF2_ITERATIONS", "100000"),
    ];
    let f = moto.function_through(&proxy.endpoint, "login", &env).await;
    assert_eq!(login(&f).await.1, ids[0].0);
}

#[tokio::test]
async fn a_stalled_secrets_manager_costs_one_deadline_warm_and_cold() {
    use std::time::Instant;
    let moto = Moto::start().await;
    let proxy = AwsProxy::start(&moto.endpoint).await;
    let sm = moto.client().await;
    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", PW).await;
    let (arn, _) = secret_with_versions(&sm, "auth/stall", 1).await;
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("SECRET_ARN", arn.as_str()),
        ("SECRET_CACHE_TTL_SECONDS", "1"),
        ("PBKDF2_ITERATIONS", "100000"),
    ];
    let f = moto.function_through(&proxy.endpoint, "login", &env).await;
    let (_, kid) = login(&f).await;
    // The endpoint accepts every call and never answers. Past the TTL a warm function serves
    // on the keys it holds, after one deadline (the SDK's, well inside the 10 s timeout).
    proxy.misbehave("", Misbehaviour::Stall);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let started = Instant::now();
    let (_, kid_after) = login(&f).await;
    let took = started.elapsed();
    assert_eq!(kid_after, kid, "served on the cached key");
    assert!(took < Duration::from_secs(7), "the stalled refresh took {took:?}");
    let out = f.output();
    assert_eq!(
        out.matches("signing key refresh failed; serving cached keys").count(),
        1,
        "one line for the failed refresh: {out}"
    );
    // A cold start with nothing cached fails within one deadline, with one start-up line.
    let started = Instant::now();
    let mut cold = moto.function_through(&proxy.endpoint, "login", &env).await;
    assert_eq!(cold.exit_code(Duration::from_secs(30)).await, Some(1));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(7), "the cold start gave up after {took:?}");
    let out = cold.output();
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].contains("start-up failed") && lines[0].contains(&arn), "{out}");
}
