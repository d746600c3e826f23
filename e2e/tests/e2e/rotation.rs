//! Key rotation end to end against moto: the rotate-key function's four steps through the
//! Runtime API with the events Secrets Manager sends, repeated; a failed testSecret leaves
//! AWSCURRENT where it was; during and after a rotation old tokens verify, new tokens carry
//! the new kid only after JWKS_PUBLISH_LEAD_SECONDS, and the JWKS lists pending, current and
//! previous keys; a secret with no value gets its first key from a rotation (a new RS256 stack).
//!
//! With RS256 the rotation also keeps the public keys' secret (SIGNING_PUBLIC_SECRET_ARN) in
//! step: the same version ids and stages, each version the public half of the key of that id.
//! jwks is given that secret only, never the signing secret's ARN, and publishes from it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use testkit::TestDb;
use testkit::moto::Moto;
use testkit::runtime_api::{Function, Outcome};

const PW: &str = "correct horse battery staple";
/// The publishing lead in this test: short, but longer than a cache refresh and than the
/// rotation steps take on a loaded machine (RSA key generation, several invocations).
const LEAD_SECONDS: u64 = 12;

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

/// The JWKS jwks serves: its keys, and its Cache-Control.
async fn jwks_keys(f: &Function) -> (Vec<Value>, String) {
    let resp = f.invoke(testkit::events::apigw("GET", "/.well-known/jwks.json", &[], None)).await;
    let resp = resp.response();
    assert_eq!(resp["statusCode"], 200, "{resp}\n{}", f.output());
    let body: Value = serde_json::from_str(&testkit::events::response_body(&resp)).unwrap();
    let cache = testkit::events::response_header(&resp, "cache-control").unwrap_or_default();
    (body["keys"].as_array().unwrap().clone(), cache)
}

async fn jwks_kids(f: &Function) -> Vec<String> {
    let mut kids: Vec<String> =
        jwks_keys(f).await.0.iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
    kids.sort();
    kids
}

/// The public half of an RS256 key, as the JWKS must list it under `kid`.
fn public_half(kid: &str, pem: &str) -> Value {
    let key = auth_shared::signing::Key::rsa_pem(kid, pem).unwrap();
    serde_json::to_value(key.jwk().unwrap()).unwrap()
}

/// The stages of every version of a secret, without AWSPENDING on an AWSCURRENT version (the
/// rotation function takes it off the public keys' secret at finishSecret; on the signing
/// secret Secrets Manager may leave it there when a rotation ends, and moto does).
async fn all_stages(
    sm: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let d = sm.describe_secret().secret_id(arn).send().await.unwrap();
    d.version_ids_to_stages()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|(v, mut s)| {
            if s.iter().any(|s| s == "AWSCURRENT") {
                s.retain(|s| s != "AWSPENDING");
            }
            s.sort();
            (v, s)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
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
    let first = rotate_key::new_key(auth_shared::signing::SigningAlg::Rs256).unwrap();
    let created = sm.create_secret().name("auth/rs256").secret_string(&first).send().await.unwrap();
    let arn = created.arn().unwrap().to_owned();
    let v1 = created.version_id().unwrap().to_owned();
    // The public keys' secret as the template creates it: no value. The signing key above was
    // made before it existed (a stack deployed before the public secret): its first rotation
    // copies the current key's public half there.
    let public = sm.create_secret().name("auth/rs256-public").send().await.unwrap();
    let public_arn = public.arn().unwrap().to_owned();
    let lead = LEAD_SECONDS.to_string();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("SECRET_ARN", arn.as_str()),
        ("TOKEN_SIGNING_ALG", "RS256"),
        ("SECRET_CACHE_TTL_SECONDS", "1"),
        ("JWKS_PUBLISH_LEAD_SECONDS", lead.as_str()),
        ("PBKDF2_ITERATIONS", "100000"),
    ];
    // jwks: the public keys' secret only; it is not told where the signing secret is.
    let jwks_env = [
        ("SIGNING_PUBLIC_SECRET_ARN", public_arn.as_str()),
        ("TOKEN_SIGNING_ALG", "RS256"),
        ("SECRET_CACHE_TTL_SECONDS", "1"),
    ];
    let rotate_env = [
        ("TOKEN_SIGNING_ALG", "RS256"),
        ("SIGNING_PUBLIC_SECRET_ARN", &public_arn),
        ("JWKS_PUBLISH_LEAD_SECONDS", &lead),
    ];
    let login_fn = moto.function("login", &env).await;
    let profile_fn = moto.function("profile", &env).await;
    let jwks_fn = moto.function("jwks", &jwks_env).await;
    let rotate_fn = moto.function("rotate-key", &rotate_env).await;

    // The first key of a deployment signs at once: there is nothing before it.
    let (old_token, kid) = login(&login_fn).await;
    assert_eq!(kid, v1);
    // Its public half is not in the public keys' secret yet: nothing published, not cacheable,
    // and one line says why.
    assert_eq!(jwks_keys(&jwks_fn).await, (vec![], "no-store".to_owned()), "{}", jwks_fn.output());
    assert!(jwks_fn.output().contains("has no AWSCURRENT version"), "{}", jwks_fn.output());

    let token = auth_shared::random::uuid().to_string();
    // createSecret, twice: the second does nothing.
    for _ in 0..2 {
        rotate_fn.invoke(step(&arn, &token, "createSecret")).await.response();
    }
    let pending = pending_value(&sm, &arn, &token).await;
    assert!(pending.starts_with("-----BEGIN PRIVATE KEY-----"));
    let public_pending = pending_value(&sm, &public_arn, &token).await;
    rotate_fn.invoke(step(&arn, &token, "createSecret")).await.response();
    assert_eq!(pending_value(&sm, &arn, &token).await, pending, "createSecret is idempotent");
    assert_eq!(pending_value(&sm, &public_arn, &token).await, public_pending);
    // The public keys' secret mirrors the signing one: the same versions and stages, each
    // holding only the public half of its key.
    assert_eq!(all_stages(&sm, &public_arn).await, all_stages(&sm, &arn).await);
    assert_eq!(
        serde_json::from_str::<Value>(&public_pending).unwrap(),
        public_half(&token, &pending)
    );
    assert!(!public_pending.contains("PRIVATE") && !public_pending.contains("\"d\""));
    rotate_fn.invoke(step(&arn, &token, "setSecret")).await.response();
    rotate_fn.invoke(step(&arn, &token, "testSecret")).await.response();
    rotate_fn.invoke(step(&arn, &token, "testSecret")).await.response();
    assert_eq!(stages(&sm, &arn, &v1).await, ["AWSCURRENT"]);

    // During the rotation the pending key is published, and does not sign.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut want = vec![v1.clone(), token.clone()];
    want.sort();
    assert_eq!(jwks_kids(&jwks_fn).await, want, "{}", jwks_fn.output());
    let (keys, cache) = jwks_keys(&jwks_fn).await;
    assert_eq!(cache, "public, max-age=300");
    assert!(keys.contains(&public_half(&v1, &first)), "the signing key's own public half");
    assert!(keys.contains(&public_half(&token, &pending)));
    assert_eq!(login(&login_fn).await.1, v1);

    for _ in 0..2 {
        rotate_fn.invoke(step(&arn, &token, "finishSecret")).await.response();
    }
    assert!(stages(&sm, &arn, &token).await.contains(&"AWSCURRENT".to_owned()));
    assert_eq!(stages(&sm, &arn, &v1).await, ["AWSPREVIOUS"]);
    assert_eq!(stages(&sm, &public_arn, &token).await, ["AWSCURRENT"]);
    assert_eq!(stages(&sm, &public_arn, &v1).await, ["AWSPREVIOUS"]);
    assert_eq!(all_stages(&sm, &public_arn).await, all_stages(&sm, &arn).await);
    // Every step on a finished version does nothing.
    for s in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        rotate_fn.invoke(step(&arn, &token, s)).await.response();
    }
    assert!(stages(&sm, &arn, &token).await.contains(&"AWSCURRENT".to_owned()));
    // A second rotation inside the lead is refused: AWSPREVIOUS signs through the lead, so it
    // must have been published long enough itself. Nothing is written.
    let early = auth_shared::random::uuid().to_string();
    match rotate_fn.invoke(step(&arn, &early, "createSecret")).await {
        Outcome::Error { body, .. } => {
            assert!(body.to_string().contains("inside JWKS_PUBLISH_LEAD_SECONDS"), "{body}")
        }
        Outcome::Response(v) => panic!("a rotation inside the lead started: {v}"),
    }
    assert!(stages(&sm, &arn, &early).await.is_empty(), "no pending version was made");

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

    // The next rotation under way: pending, current and previous are all published.
    let next = auth_shared::random::uuid().to_string();
    rotate_fn.invoke(step(&arn, &next, "createSecret")).await.response();
    assert_eq!(all_stages(&sm, &public_arn).await, all_stages(&sm, &arn).await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut want = vec![v1.clone(), token.clone(), next.clone()];
    want.sort();
    assert_eq!(jwks_kids(&jwks_fn).await, want, "{}", jwks_fn.output());
    // A public version that is not the pending key's public half fails testSecret.
    let mismatch = auth_shared::random::uuid().to_string();
    let (key, other) = (
        rotate_key::new_key(auth_shared::signing::SigningAlg::Rs256).unwrap(),
        rotate_key::new_key(auth_shared::signing::SigningAlg::Rs256).unwrap(),
    );
    for (secret, value) in [(&arn, key), (&public_arn, public_half(&mismatch, &other).to_string())]
    {
        sm.put_secret_value()
            .secret_id(secret)
            .client_request_token(&mismatch)
            .secret_string(value)
            .version_stages("AWSPENDING")
            .send()
            .await
            .unwrap();
    }
    match rotate_fn.invoke(step(&arn, &mismatch, "testSecret")).await {
        Outcome::Error { body, .. } => {
            assert!(body.to_string().contains("another key's public half"), "{body}")
        }
        Outcome::Response(v) => panic!("a pending key without its public half passed: {v}"),
    }
    assert!(stages(&sm, &arn, &token).await.contains(&"AWSCURRENT".to_owned()));

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
    let public = sm.create_secret().name("auth/first-public").send().await.unwrap();
    let public_arn = public.arn().unwrap().to_owned();
    let rotate_fn = moto
        .function(
            "rotate-key",
            &[("TOKEN_SIGNING_ALG", "RS256"), ("SIGNING_PUBLIC_SECRET_ARN", &public_arn)],
        )
        .await;
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
    assert_eq!(all_stages(&sm, &public_arn).await, all_stages(&sm, &arn).await);

    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", PW).await;
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("SECRET_ARN", arn.as_str()),
        ("TOKEN_SIGNING_ALG", "RS256"),
        ("PBKDF2_ITERATIONS", "100000"),
    ];
    let login_fn = moto.function("login", &env).await;
    let jwks_fn = moto
        .function(
            "jwks",
            &[("TOKEN_SIGNING_ALG", "RS256"), ("SIGNING_PUBLIC_SECRET_ARN", &public_arn)],
        )
        .await;
    assert_eq!(login(&login_fn).await.1, token, "the first key signs at once");
    assert_eq!(jwks_kids(&jwks_fn).await, vec![token.clone()], "{}", jwks_fn.output());
    let (keys, _) = jwks_keys(&jwks_fn).await;
    assert_eq!(keys, [public_half(&token, current.secret_string().unwrap())]);
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
    let rotate_fn = moto.function("rotate-key", &[]).await;
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
