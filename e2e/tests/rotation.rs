//! Key rotation end to end against moto: the rotate-key function's four steps through the
//! Runtime API with the events Secrets Manager sends, repeated; a failed testSecret leaves
//! AWSCURRENT where it was; during and after a rotation old tokens verify, new tokens carry
//! the new kid only after JWKS_PUBLISH_LEAD_SECONDS, and the JWKS lists pending, current and
//! previous keys; a secret with no value gets its first key from a rotation (a new RS256 stack).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use testkit::TestDb;
use testkit::moto::Moto;
use testkit::runtime_api::{Function, Outcome};

const PW: &str = "correct horse battery staple";
/// The publishing lead in this test: short, but longer than a cache refresh.
const LEAD_SECONDS: u64 = 4;

async fn start(binary: &str, moto: &Moto, env: &[(&str, &str)]) -> Function {
    let mut all: Vec<(String, String)> = moto.env();
    all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Function::start(&testkit::binary(binary), &refs).await
}

async fn login(f: &Function) -> (String, String) {
    let event = testkit::events::apigw(
        "POST",
        "/login",
        &[("content-type", "application/json")],
        Some(&json!({"username": "alice", "password": PW}).to_string()),
    );
    let resp = f.invoke(event).await.response();
    assert_eq!(resp["statusCode"], 200, "{resp}\n{}", f.output());
    let body: Value = serde_json::from_str(&testkit::events::response_body(&resp)).unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap())
            .unwrap();
    assert_eq!(header["alg"], "RS256");
    (token, header["kid"].as_str().unwrap().to_owned())
}

async fn profile_status(f: &Function, token: &str) -> u64 {
    let event = testkit::events::apigw(
        "GET",
        "/profile",
        &[("authorization", &format!("Bearer {token}"))],
        None,
    );
    f.invoke(event).await.response()["statusCode"].as_u64().unwrap()
}

async fn jwks_kids(f: &Function) -> Vec<String> {
    let resp = f.invoke(testkit::events::apigw("GET", "/.well-known/jwks.json", &[], None)).await;
    let resp = resp.response();
    let body: Value = serde_json::from_str(&testkit::events::response_body(&resp)).unwrap();
    let mut kids: Vec<String> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

fn step(arn: &str, token: &str, step: &str) -> Value {
    json!({"SecretId": arn, "ClientRequestToken": token, "Step": step})
}

async fn stages(sm: &aws_sdk_secretsmanager::Client, arn: &str, version: &str) -> Vec<String> {
    let d = sm.describe_secret().secret_id(arn).send().await.unwrap();
    let mut s = d.version_ids_to_stages().and_then(|m| m.get(version)).cloned().unwrap_or_default();
    s.sort();
    s
}

async fn pending_value(sm: &aws_sdk_secretsmanager::Client, arn: &str, token: &str) -> String {
    sm.get_secret_value()
        .secret_id(arn)
        .version_id(token)
        .version_stage("AWSPENDING")
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_rs256_key_rotates_through_the_four_steps() {
    let moto = Moto::start().await;
    let sm = moto.client().await;
    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", PW).await;
    let first = rotate_key::new_key(auth_shared::config::SigningAlg::Rs256).unwrap();
    let created = sm.create_secret().name("auth/rs256").secret_string(first).send().await.unwrap();
    let arn = created.arn().unwrap().to_owned();
    let v1 = created.version_id().unwrap().to_owned();
    let lead = LEAD_SECONDS.to_string();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("SECRET_ARN", arn.as_str()),
        ("TOKEN_SIGNING_ALG", "RS256"),
        ("SECRET_CACHE_TTL_SECONDS", "1"),
        ("JWKS_PUBLISH_LEAD_SECONDS", lead.as_str()),
        ("PBKDF2_ITERATIONS", "100000"),
    ];
    let login_fn = start("login", &moto, &env).await;
    let profile_fn = start("profile", &moto, &env).await;
    let jwks_fn = start("jwks", &moto, &env).await;
    let rotate_fn = start("rotate-key", &moto, &[("TOKEN_SIGNING_ALG", "RS256")]).await;

    // The first key of a deployment signs at once: there is nothing before it.
    let (old_token, kid) = login(&login_fn).await;
    assert_eq!(kid, v1);
    assert_eq!(jwks_kids(&jwks_fn).await, vec![v1.clone()]);

    let token = auth_shared::random::uuid().to_string();
    // createSecret, twice: the second does nothing.
    for _ in 0..2 {
        rotate_fn.invoke(step(&arn, &token, "createSecret")).await.response();
    }
    let pending = pending_value(&sm, &arn, &token).await;
    assert!(pending.starts_with("-----BEGIN PRIVATE KEY-----"));
    rotate_fn.invoke(step(&arn, &token, "createSecret")).await.response();
    assert_eq!(pending_value(&sm, &arn, &token).await, pending, "createSecret is idempotent");
    rotate_fn.invoke(step(&arn, &token, "setSecret")).await.response();
    rotate_fn.invoke(step(&arn, &token, "testSecret")).await.response();
    rotate_fn.invoke(step(&arn, &token, "testSecret")).await.response();
    assert_eq!(stages(&sm, &arn, &v1).await, ["AWSCURRENT"]);

    // During the rotation the pending key is published, and does not sign.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut want = vec![v1.clone(), token.clone()];
    want.sort();
    assert_eq!(jwks_kids(&jwks_fn).await, want, "{}", jwks_fn.output());
    assert_eq!(login(&login_fn).await.1, v1);

    for _ in 0..2 {
        rotate_fn.invoke(step(&arn, &token, "finishSecret")).await.response();
    }
    assert!(stages(&sm, &arn, &token).await.contains(&"AWSCURRENT".to_owned()));
    assert_eq!(stages(&sm, &arn, &v1).await, ["AWSPREVIOUS"]);
    // Every step on a finished version does nothing.
    for s in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        rotate_fn.invoke(step(&arn, &token, s)).await.response();
    }
    assert!(stages(&sm, &arn, &token).await.contains(&"AWSCURRENT".to_owned()));

    // Right after: current and previous published; the previous key keeps signing until the
    // new one has been published for the lead time.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(jwks_kids(&jwks_fn).await, want);
    let (during, kid) = login(&login_fn).await;
    assert_eq!(kid, v1, "a new key does not sign before the lead time");
    assert_eq!(profile_status(&profile_fn, &old_token).await, 200);
    assert_eq!(profile_status(&profile_fn, &during).await, 200);
    tokio::time::sleep(Duration::from_secs(LEAD_SECONDS)).await;
    let (new_token, kid) = login(&login_fn).await;
    assert_eq!(kid, token, "after the lead time the new key signs");
    assert_eq!(profile_status(&profile_fn, &new_token).await, 200);
    assert_eq!(profile_status(&profile_fn, &old_token).await, 200, "old tokens still verify");

    // A failed testSecret stops the rotation with AWSCURRENT untouched.
    let bad = auth_shared::random::uuid().to_string();
    sm.put_secret_value()
        .secret_id(&arn)
        .client_request_token(&bad)
        .secret_string("not a key at all")
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    match rotate_fn.invoke(step(&arn, &bad, "testSecret")).await {
        Outcome::Error { body, .. } => {
            assert!(body.to_string().contains("not a usable RS256 key"), "{body}");
            assert!(!body.to_string().contains("not a key at all"), "the value is never echoed");
        }
        Outcome::Response(v) => panic!("a bad pending key passed testSecret: {v}"),
    }
    assert!(stages(&sm, &arn, &token).await.contains(&"AWSCURRENT".to_owned()));
    assert_eq!(profile_status(&profile_fn, &new_token).await, 200);
    assert!(!login_fn.output().contains("panicked"));
}

/// A new RS256 stack: the template creates the signing secret with no value (CloudFormation
/// makes no RSA keys) and its rotation schedule rotates it at deploy. The four steps on a secret
/// with no version at all make the first key, which then signs at once and is published.
#[tokio::test]
async fn an_empty_secret_gets_its_first_rs256_key_from_a_rotation() {
    let moto = Moto::start().await;
    let sm = moto.client().await;
    let created = sm.create_secret().name("auth/first").send().await.unwrap();
    let arn = created.arn().unwrap().to_owned();
    let before = sm.describe_secret().secret_id(&arn).send().await.unwrap();
    assert!(before.version_ids_to_stages().is_none_or(|m| m.is_empty()), "an empty secret");
    let rotate_fn = start("rotate-key", &moto, &[("TOKEN_SIGNING_ALG", "RS256")]).await;
    let token = auth_shared::random::uuid().to_string();
    for s in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        rotate_fn.invoke(step(&arn, &token, s)).await.response();
    }
    assert!(
        stages(&sm, &arn, &token).await.contains(&"AWSCURRENT".to_owned()),
        "{}",
        rotate_fn.output()
    );
    let current =
        sm.get_secret_value().secret_id(&arn).version_stage("AWSCURRENT").send().await.unwrap();
    assert!(current.secret_string().unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));

    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", PW).await;
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("SECRET_ARN", arn.as_str()),
        ("TOKEN_SIGNING_ALG", "RS256"),
        ("PBKDF2_ITERATIONS", "100000"),
    ];
    let login_fn = start("login", &moto, &env).await;
    let jwks_fn = start("jwks", &moto, &env).await;
    assert_eq!(login(&login_fn).await.1, token, "the first key signs at once");
    assert_eq!(jwks_kids(&jwks_fn).await, vec![token.clone()], "{}", jwks_fn.output());
}

#[tokio::test]
async fn an_hs256_key_rotates_too() {
    let moto = Moto::start().await;
    let sm = moto.client().await;
    let created = sm
        .create_secret()
        .name("auth/hs256")
        .secret_string("first-hs256-key-0123456789abcdefghijklmnopqrstuvwxyz")
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_owned();
    let rotate_fn = start("rotate-key", &moto, &[]).await;
    let token = auth_shared::random::uuid().to_string();
    for s in ["createSecret", "createSecret", "setSecret", "testSecret", "finishSecret"] {
        rotate_fn.invoke(step(&arn, &token, s)).await.response();
    }
    let current =
        sm.get_secret_value().secret_id(&arn).version_stage("AWSCURRENT").send().await.unwrap();
    let all = sm.describe_secret().secret_id(&arn).send().await.unwrap();
    assert_eq!(
        current.version_id(),
        Some(token.as_str()),
        "{:?}\n{}",
        all.version_ids_to_stages(),
        rotate_fn.output()
    );
    let key = current.secret_string().unwrap();
    assert!(key.len() >= 64, "HS256 keys are 64 characters or more");
    // A step Secrets Manager does not send fails the invocation.
    match rotate_fn
        .invoke(json!({"SecretId": arn, "ClientRequestToken": "x", "Step": "bogus"}))
        .await
    {
        Outcome::Error { .. } => {}
        Outcome::Response(v) => panic!("an unknown step passed: {v}"),
    }
}
