//! Passkeys through the real handlers and PostgreSQL, with an authenticator independent of the
//! service's WebAuthn library (`e2e/python/soft_authenticator.py`: Python's `fido2` for the
//! CBOR and COSE, `cryptography` for the P-256 keys): registration and sign-in, every refusal
//! (origin, RP ID, ceremony type, challenge used, forged or expired, no user verification, a
//! counter that goes back, a credential registered twice), bad input of every kind, and the
//! races the locks settle.

use std::sync::Arc;

use auth_shared::data_key::{DataKey, DataKeySource};
use auth_shared::lambda_http::{Body, Response};
use auth_shared::passkeys::{RelyingPartyConfig, challenge, response};
use auth_shared::state::{
    ChallengeState, HashState, MfaState, PasskeyLoginState, PasskeyState, TokenState,
};
use serde_json::{Value, json};
use testkit::app::Parts;

use crate::mfa::{app_code, claims};

const PASSWORD: &str = "correct horse battery staple";
const ORIGIN: &str = "http://localhost:3000";

struct Pk {
    parts: Parts,
    hash: HashState,
    register: PasskeyState,
    login: PasskeyLoginState,
    options: ChallengeState,
    mfa: MfaState,
}

impl Pk {
    async fn new() -> Self {
        let parts = Parts::new(8).await;
        let hash = HashState::new(
            parts.db.clone(),
            parts.keys.clone(),
            parts.tokens.clone(),
            parts.policy,
        );
        let keys = Arc::new(DataKey::new(DataKeySource::Local(vec![9; 32].into())).await);
        let rp = RelyingPartyConfig::new("localhost", ORIGIN, "Test App".into()).unwrap();
        let rp = Arc::new(rp.relying_party().unwrap());
        Self {
            register: PasskeyState::new(hash.clone(), rp.clone()),
            login: PasskeyLoginState::new(hash.token.clone(), keys.clone(), rp.clone()),
            options: ChallengeState::new(keys.clone(), rp),
            mfa: MfaState::new(hash.clone(), keys, "Test App".into()),
            hash,
            parts,
        }
    }

    fn token(&self) -> &TokenState {
        &self.hash.token
    }

    async fn user(&self, name: &str) -> uuid::Uuid {
        self.parts.test_db.create_user(name, &format!("{name}@example.com"), PASSWORD).await
    }

    async fn count(&self, sql: &str) -> i64 {
        self.parts.test_db.client().await.query_one(sql, &[]).await.unwrap().get(0)
    }

    async fn sql(&self, sql: &str) {
        self.parts.test_db.client().await.batch_execute(sql).await.unwrap();
    }

    /// Sends `body` to `path` with `bearer`; (status, body).
    async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let req = testkit::json_request(method, path, bearer, body);
        // Each handler's future boxed: one match of them all inline overflows a test thread's stack.
        type Reply<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + 'a>>;
        let resp: Reply<'_> = match path {
            "/login" => Box::pin(login::handle(&self.hash, req)),
            "/profile" => Box::pin(profile::handle(self.token(), req)),
            "/mfa" => Box::pin(mfa_status::handle(self.token(), req)),
            "/mfa/totp" => Box::pin(mfa_totp::handle(&self.mfa, req)),
            "/mfa/totp/verify" => Box::pin(mfa_totp_verify::handle(&self.mfa, req)),
            "/passkeys/register/options" => {
                Box::pin(passkey_register_options::handle(&self.register, req))
            }
            "/passkeys/register" => Box::pin(passkey_register::handle(&self.register, req)),
            "/passkeys/login/options" => {
                Box::pin(passkey_login_options::handle(&self.options, req))
            }
            "/passkeys/login" => Box::pin(passkey_login::handle(&self.login, req)),
            p if p.starts_with("/passkeys") => Box::pin(passkeys::handle(&self.hash, req)),
            other => panic!("no route {other}"),
        };
        let resp = resp.await;
        let (status, h, body) = testkit::read(resp);
        assert_ne!(status, 500, "{path}: {body}");
        if status == 401 {
            assert!(h.contains_key("www-authenticate"), "{body}");
        }
        (status, body)
    }

    async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
        self.call("POST", path, bearer, &body.to_string()).await
    }

    /// A password login's access token.
    async fn signed_in(&self, name: &str) -> String {
        let (status, body) =
            self.post("/login", None, json!({"username": name, "password": PASSWORD})).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Registration options for the bearer of `token`, confirmed with the password.
    async fn creation_options(&self, token: &str) -> Value {
        let (status, body) = self
            .post("/passkeys/register/options", Some(token), json!({"password": PASSWORD}))
            .await;
        assert_eq!(status, 200, "{body}");
        body["publicKey"].clone()
    }

    async fn request_options(&self) -> Value {
        let (status, body) = self.post("/passkeys/login/options", None, json!({})).await;
        assert_eq!(status, 200, "{body}");
        body["publicKey"].clone()
    }

    /// Registers a new passkey for `token`'s account: (the authenticator's key, the 201 body).
    async fn registered(&self, token: &str) -> (Value, Value) {
        let options = self.creation_options(token).await;
        let made = authenticator(json!({"op": "create", "options": options, "origin": ORIGIN}));
        let (status, body) = self
            .post(
                "/passkeys/register",
                Some(token),
                json!({"credential": made["credential"], "name": "Laptop"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (made["key"].clone(), body)
    }

    /// An assertion of `key` for fresh login options, with `extra` members for the
    /// authenticator (counter, uv, type, origin, ...).
    async fn assertion(&self, key: &Value, extra: Value) -> Value {
        let options = self.request_options().await;
        let mut req = json!({"op": "get", "options": options, "origin": ORIGIN, "key": key});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        authenticator(req)["credential"].clone()
    }

    /// Sends two registration answers at once; their statuses, in order.
    async fn register_both_at_once(&self, token: &str, [a, b]: [Value; 2]) -> [u16; 2] {
        let (x, y) = tokio::join!(
            self.post("/passkeys/register", Some(token), a),
            self.post("/passkeys/register", Some(token), b),
        );
        let mut statuses = [x.0, y.0];
        statuses.sort();
        statuses
    }

    async fn sign_in(&self, credential: &Value) -> (u16, Value) {
        self.post("/passkeys/login", None, json!({ "credential": credential })).await
    }
}

/// One request to the software authenticator; its answer.
fn authenticator(req: Value) -> Value {
    use std::io::Write;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/soft_authenticator.py");
    let mut child = std::process::Command::new(testkit::venv_python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child.stdin.take().unwrap().write_all(req.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_passkey_registers_and_signs_in_through_an_independent_authenticator() {
    let pk = Pk::new().await;
    let alice = pk.user("alice").await;
    let token = pk.signed_in("alice").await;
    let options = pk.creation_options(&token).await;
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["rp"]["name"], "Test App");
    assert_eq!(options["user"]["name"], "alice");
    assert_eq!(options["user"]["id"], response::encode(alice.as_bytes()));
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(options["excludeCredentials"], json!([]));
    assert_eq!(response::decode(options["challenge"].as_str().unwrap()).unwrap().len(), 32);

    let (key, made) = pk.registered(&token).await;
    assert_eq!(made["name"], "Laptop");
    let (status, list) = pk.call("GET", "/passkeys", Some(&token), "").await;
    assert_eq!(status, 200);
    assert_eq!(list["passkeys"].as_array().unwrap().len(), 1);
    assert_eq!(list["passkeys"][0]["id"], made["id"]);
    assert_eq!(list["passkeys"][0]["last_used_at"], Value::Null);
    assert!(!list.to_string().contains(key["id"].as_str().unwrap()), "no credential id shown");
    // The next registration excludes it.
    let again = pk.creation_options(&token).await;
    assert_eq!(again["excludeCredentials"][0]["id"], key["id"]);

    // Sign-in: options that name no account, then the assertion.
    let request = pk.request_options().await;
    assert_eq!(request["userVerification"], "required");
    assert_eq!(request["rpId"], "localhost");
    assert!(request.get("allowCredentials").is_none(), "{request}");
    let credential = pk.assertion(&key, json!({})).await;
    let (status, body) = pk.sign_in(&credential).await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], alice.to_string());
    assert_eq!(c["amr"], json!(["hwk", "user", "mfa"]));
    assert!(body["refresh_token"].is_string());
    let (status, profile) =
        pk.call("GET", "/profile", Some(body["access_token"].as_str().unwrap()), "").await;
    assert_eq!((status, profile["username"].as_str()), (200, Some("alice")));
    let (_, list) = pk.call("GET", "/passkeys", Some(&token), "").await;
    assert!(list["passkeys"][0]["last_used_at"].is_string(), "{list}");
    let (_, factors) = pk.call("GET", "/mfa", Some(&token), "").await;
    assert_eq!(factors["passkeys"], 1);
    // The same assertion again: its challenge is used.
    assert_eq!(pk.sign_in(&credential).await.0, 401);
    // An unauthenticated call for options writes nothing; only the answered challenge is kept.
    let used = pk.count("SELECT count(*) FROM passkey_challenges_used").await;
    for _ in 0..5 {
        pk.request_options().await;
    }
    assert_eq!(pk.count("SELECT count(*) FROM passkey_challenges_used").await, used);
    assert_eq!(used, 1);
}

#[tokio::test]
async fn registration_needs_the_password_or_a_sign_in_with_the_second_factor() {
    let pk = Pk::new().await;
    pk.user("alice").await;
    let token = pk.signed_in("alice").await;
    let path = "/passkeys/register/options";
    let (status, body) = pk.post(path, Some(&token), json!({})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, body) = pk.post(path, Some(&token), json!({"password": "wrong"})).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_credentials")), "{body}");
    let (status, body) = pk.post(path, None, json!({"password": PASSWORD})).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "{body}");
    assert_eq!(pk.count("SELECT count(*) FROM passkey_registrations").await, 0);

    // With a TOTP factor, a password-only token may not add a way in; one with mfa may, and
    // needs no password.
    let (status, body) = pk.post("/mfa/totp", Some(&token), json!({"password": PASSWORD})).await;
    assert_eq!(status, 200, "{body}");
    let code = app_code(body["secret"].as_str().unwrap(), 0);
    let (status, body) = pk.post("/mfa/totp/verify", Some(&token), json!({"code": code})).await;
    assert_eq!(status, 200, "{body}");
    let with_mfa = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) =
        pk.post("/login", None, json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("mfa_required")));
    let (status, body) = pk.post(path, Some(&with_mfa), json!({})).await;
    assert_eq!(status, 200, "{body}");

    // An account whose address is not verified adds none.
    pk.user("carol").await;
    let carol = pk.signed_in("carol").await;
    pk.sql("UPDATE users SET email_verified = false WHERE username = 'carol'").await;
    let (status, body) = pk.post(path, Some(&carol), json!({"password": PASSWORD})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
}

#[tokio::test]
async fn refused_registrations_are_invalid_passkey_and_store_nothing() {
    let pk = Pk::new().await;
    pk.user("alice").await;
    pk.user("bob").await;
    let token = pk.signed_in("alice").await;
    let bob = pk.signed_in("bob").await;
    let cases: Vec<(&str, Value)> = vec![
        ("no user verification", json!({"uv": false})),
        ("another origin", json!({"origin": "https://evil.example"})),
        ("a subdomain not allowed", json!({"origin": "http://app.localhost:3000"})),
        ("another RP ID", json!({"rp_id": "example.com"})),
        ("the wrong ceremony", json!({"type": "webauthn.get"})),
        ("another challenge", json!({"challenge": response::encode(&[7; 32])})),
    ];
    for (what, extra) in cases {
        let options = pk.creation_options(&token).await;
        let mut req = json!({"op": "create", "options": options, "origin": ORIGIN});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        let made = authenticator(req);
        let (status, body) = pk
            .post("/passkeys/register", Some(&token), json!({"credential": made["credential"]}))
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_passkey")),
            "{what}: {body}"
        );
    }
    // Client data that is not JSON; credential ids outside 16 to 1023 bytes.
    let options = pk.creation_options(&token).await;
    let mut made = authenticator(json!({"op": "create", "options": options, "origin": ORIGIN}));
    made["credential"]["response"]["clientDataJSON"] = json!(response::encode(b"{not json"));
    let (status, body) = pk
        .post("/passkeys/register", Some(&token), json!({"credential": made["credential"]}))
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_passkey")), "{body}");
    for bytes in [4, 15, 1024, 1100] {
        let options = pk.creation_options(&token).await;
        let made = authenticator(
            json!({"op": "create", "options": options, "origin": ORIGIN, "credential_id_bytes": bytes}),
        );
        let (status, body) = pk
            .post("/passkeys/register", Some(&token), json!({"credential": made["credential"]}))
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_passkey")),
            "{bytes}: {body}"
        );
    }
    assert_eq!(pk.count("SELECT count(*) FROM passkeys").await, 0);
    // A used challenge, an expired one, another account's.
    let options = pk.creation_options(&token).await;
    let made = authenticator(json!({"op": "create", "options": options, "origin": ORIGIN}));
    let answer = json!({"credential": made["credential"]});
    assert_eq!(pk.post("/passkeys/register", Some(&token), answer.clone()).await.0, 201);
    let (status, body) = pk.post("/passkeys/register", Some(&token), answer).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_passkey")), "used: {body}");

    let options = pk.creation_options(&token).await;
    pk.sql("UPDATE passkey_registrations SET expires_at = now() - interval '1 second'").await;
    let made = authenticator(json!({"op": "create", "options": options, "origin": ORIGIN}));
    let (status, _) = pk
        .post("/passkeys/register", Some(&token), json!({"credential": made["credential"]}))
        .await;
    assert_eq!(status, 400, "expired");

    // Bob's challenge with alice's token: refused, and bob's challenge stays his.
    let options = pk.creation_options(&bob).await;
    let made = authenticator(json!({"op": "create", "options": options, "origin": ORIGIN}));
    let answer = json!({"credential": made["credential"]});
    let (status, _) = pk.post("/passkeys/register", Some(&token), answer.clone()).await;
    assert_eq!(status, 400, "bob's challenge with alice's token");
    assert_eq!(pk.post("/passkeys/register", Some(&bob), answer).await.0, 201);
    // The credential bob registered, again, for alice: refused (one credential, one account).
    let options = pk.creation_options(&token).await;
    let again = authenticator(
        json!({"op": "create", "options": options, "origin": ORIGIN, "key": made["key"]}),
    );
    let (status, body) = pk
        .post("/passkeys/register", Some(&token), json!({"credential": again["credential"]}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("registered already"), "{body}");
    assert_eq!(pk.count("SELECT count(*) FROM passkeys").await, 2);
}

#[tokio::test]
async fn refused_sign_ins_are_one_answer() {
    let pk = Pk::new().await;
    let alice = pk.user("alice").await;
    let bob = pk.user("bob").await;
    let token = pk.signed_in("alice").await;
    let (key, _) = pk.registered(&token).await;
    let cases: Vec<(&str, Value)> = vec![
        ("no user verification", json!({"uv": false})),
        ("another origin", json!({"origin": "https://evil.example"})),
        ("another RP ID", json!({"rp_id": "example.com"})),
        ("the wrong ceremony", json!({"type": "webauthn.create"})),
        ("a challenge never signed", json!({"challenge": response::encode(&[1; 90])})),
        ("random bytes", json!({"challenge": response::encode(&[0; 32])})),
    ];
    for (what, extra) in cases {
        let credential = pk.assertion(&key, extra).await;
        let (status, body) = pk.sign_in(&credential).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_credentials")), "{what}");
    }
    // An expired challenge, made as the options would have made it 400 s ago.
    let version = pk.login.keys.current().await.unwrap();
    let now = auth_shared::mfa::check::unix_now();
    let old = challenge::issue(&version, now - 400, 300);
    let credential = pk.assertion(&key, json!({"challenge": response::encode(&old)})).await;
    assert_eq!(pk.sign_in(&credential).await.0, 401, "expired");
    // A challenge naming a key version this function does not hold (same key bytes even).
    let retired = auth_shared::data_key::KeyVersion::new("retired-version", vec![9; 32]);
    let unknown = challenge::issue(&retired, now, 300);
    let credential = pk.assertion(&key, json!({"challenge": response::encode(&unknown)})).await;
    assert_eq!(pk.sign_in(&credential).await.0, 401, "a version not held");
    // A bad signature; another user's handle; a key never registered.
    let mut credential = pk.assertion(&key, json!({})).await;
    let mut sig = response::decode(credential["response"]["signature"].as_str().unwrap()).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    credential["response"]["signature"] = json!(response::encode(&sig));
    assert_eq!(pk.sign_in(&credential).await.0, 401, "bad signature");
    let mut other = key.clone();
    other["user"] = json!(response::encode(bob.as_bytes()));
    assert_eq!(pk.sign_in(&pk.assertion(&other, json!({})).await).await.0, 401, "bob's handle");
    let options = pk.creation_options(&token).await;
    let stranger = authenticator(json!({"op": "create", "options": options, "origin": ORIGIN}));
    let credential = pk.assertion(&stranger["key"], json!({})).await;
    assert_eq!(pk.sign_in(&credential).await.0, 401, "unknown credential");

    // The counter: forward is fine, back or the same is refused and changes nothing.
    let counter = || pk.count("SELECT (credential->'cred'->>'counter')::bigint FROM passkeys");
    assert_eq!(pk.sign_in(&pk.assertion(&key, json!({"counter": 5})).await).await.0, 200);
    assert_eq!(counter().await, 5);
    assert_eq!(pk.sign_in(&pk.assertion(&key, json!({"counter": 3})).await).await.0, 401);
    assert_eq!(pk.sign_in(&pk.assertion(&key, json!({"counter": 5})).await).await.0, 401);
    assert_eq!(counter().await, 5);
    assert_eq!(pk.sign_in(&pk.assertion(&key, json!({"counter": 6})).await).await.0, 200);

    // A disabled account signs in with no passkey.
    pk.sql(&format!("UPDATE users SET disabled_at = now() WHERE id = '{alice}'")).await;
    assert_eq!(pk.sign_in(&pk.assertion(&key, json!({"counter": 7})).await).await.0, 401);
}

#[tokio::test]
async fn malformed_answers_are_a_4xx_never_a_500() {
    let pk = Pk::new().await;
    pk.user("alice").await;
    let token = pk.signed_in("alice").await;
    let (key, _) = pk.registered(&token).await;
    let good = pk.assertion(&key, json!({})).await;
    let mut cases: Vec<(&str, Value)> = vec![
        ("credential a string", json!({"credential": "x"})),
        ("credential an array", json!({"credential": [1, 2]})),
        ("no credential", json!({})),
        (
            "response missing",
            json!({"credential": {"id": "AQ", "rawId": "AQ", "type": "public-key"}}),
        ),
    ];
    let with = |pointer: &str, v: Value| {
        let mut c = good.clone();
        *c.pointer_mut(pointer).unwrap() = v;
        json!({ "credential": c })
    };
    let b64 = good["response"]["authenticatorData"].as_str().unwrap().to_owned();
    let bytes = response::decode(&b64).unwrap();
    use base64::Engine;
    let standard = base64::engine::general_purpose::STANDARD.encode(&bytes);
    cases.push((
        "standard base64 with padding",
        with("/response/authenticatorData", json!(format!("{standard}="))),
    ));
    cases.push(("a plus sign", with("/response/signature", json!("ab+c"))));
    cases.push(("a number for bytes", with("/rawId", json!(12))));
    cases.push(("id and rawId differ", with("/id", json!("AAAA"))));
    cases.push(("type password", with("/type", json!("password"))));
    for (what, body) in cases {
        let (status, b) = pk.post("/passkeys/login", None, body.clone()).await;
        assert_eq!((status, b["error"].as_str()), (400, Some("invalid_request")), "{what}: {b}");
        let (status, _) = pk.post("/passkeys/register", Some(&token), body).await;
        assert_eq!(status, 400, "register, {what}");
    }
    // Well-formed but wrong inside: a truncated authenticatorData, a clientDataJSON that is not
    // JSON, one of the wrong type: refused as any bad assertion.
    for (what, body) in [
        (
            "truncated authenticatorData",
            with("/response/authenticatorData", json!(response::encode(&bytes[..20]))),
        ),
        (
            "clientDataJSON not JSON",
            with("/response/clientDataJSON", json!(response::encode(b"not json"))),
        ),
        ("empty user handle", with("/response/userHandle", json!(response::encode(&[1, 2, 3])))),
    ] {
        let (status, b) = pk.post("/passkeys/login", None, body).await;
        assert_eq!(status, 401, "{what}: {b}");
    }
    // Not JSON, the wrong media type, and a 1 MB attestationObject.
    let (status, _) = pk.call("POST", "/passkeys/login", None, "{not json").await;
    assert_eq!(status, 400);
    let huge = response::encode(&vec![0xa5; 1 << 20]);
    let big = json!({"credential": {"id": "AQID", "rawId": "AQID", "type": "public-key",
        "response": {"clientDataJSON": "e30", "attestationObject": huge}}});
    let (status, b) = pk.post("/passkeys/register", Some(&token), big).await;
    assert_eq!((status, b["error"].as_str()), (413, Some("payload_too_large")));
    // A registration whose attestationObject is cut short: the library refuses it (400).
    let options = pk.creation_options(&token).await;
    let mut made = authenticator(json!({"op": "create", "options": options, "origin": ORIGIN}));
    let att =
        response::decode(made["credential"]["response"]["attestationObject"].as_str().unwrap())
            .unwrap();
    made["credential"]["response"]["attestationObject"] =
        json!(response::encode(&att[..att.len() / 2]));
    let (status, b) = pk
        .post("/passkeys/register", Some(&token), json!({"credential": made["credential"]}))
        .await;
    assert_eq!((status, b["error"].as_str()), (400, Some("invalid_passkey")), "{b}");
    // Names: too long, control characters, not a string.
    for name in [json!("x".repeat(65)), json!("a\u{7}b"), json!(5), json!("  ")] {
        let (status, b) = pk
            .post("/passkeys/register", Some(&token), json!({"credential": good, "name": name}))
            .await;
        assert_eq!((status, b["error"].as_str()), (400, Some("invalid_request")), "{name}");
    }
    assert_eq!(pk.count("SELECT count(*) FROM passkeys").await, 1);
}

#[tokio::test]
async fn removal_is_the_owners_own() {
    let pk = Pk::new().await;
    pk.user("alice").await;
    pk.user("bob").await;
    let token = pk.signed_in("alice").await;
    let bob = pk.signed_in("bob").await;
    let (key, made) = pk.registered(&token).await;
    let id = made["id"].as_str().unwrap();
    for (who, path) in [
        (&bob, format!("/passkeys/{id}")),
        (&token, format!("/passkeys/{}", uuid::Uuid::nil())),
        (&token, "/passkeys/not-an-id".to_owned()),
        (&token, "/passkeys/".to_owned() + &"9".repeat(300)),
    ] {
        let (status, b) = pk.call("DELETE", &path, Some(who), "").await;
        assert_eq!((status, b["error"].as_str()), (404, Some("not_found")), "{path}");
    }
    let (status, _) = pk.call("POST", "/passkeys", Some(&token), "{}").await;
    assert_eq!(status, 405);
    let (status, _) = pk.call("DELETE", &format!("/passkeys/{id}"), Some(&token), "").await;
    assert_eq!(status, 204);
    let (_, list) = pk.call("GET", "/passkeys", Some(&token), "").await;
    assert_eq!(list["passkeys"], json!([]));
    assert_eq!(pk.sign_in(&pk.assertion(&key, json!({})).await).await.0, 401);
    let (status, _) = pk.call("DELETE", &format!("/passkeys/{id}"), Some(&token), "").await;
    assert_eq!(status, 404, "gone");
}

#[tokio::test]
async fn with_a_totp_factor_a_password_only_token_adds_and_removes_no_passkey() {
    let pk = Pk::new().await;
    pk.user("alice").await;
    let token = pk.signed_in("alice").await;
    let (key, made) = pk.registered(&token).await;
    let (_, body) = pk.post("/mfa/totp", Some(&token), json!({"password": PASSWORD})).await;
    let code = app_code(body["secret"].as_str().unwrap(), 0);
    assert_eq!(pk.post("/mfa/totp/verify", Some(&token), json!({"code": code})).await.0, 200);
    // `token` still names a live session (the verify raised it), but its own amr is ["pwd"].
    let path = format!("/passkeys/{}", made["id"].as_str().unwrap());
    let (status, body) = pk.call("DELETE", &path, Some(&token), "").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("mfa_required")), "{body}");
    let (status, body) =
        pk.post("/passkeys/register/options", Some(&token), json!({"password": PASSWORD})).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("mfa_required")), "{body}");
    // A passkey sign-in carries mfa: it may.
    let (status, body) = pk.sign_in(&pk.assertion(&key, json!({})).await).await;
    assert_eq!(status, 200, "{body}");
    let with_mfa = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(pk.call("DELETE", &path, Some(&with_mfa), "").await.0, 204);
}

#[tokio::test]
async fn races_settle_as_the_locks_say() {
    let pk = Pk::new().await;
    pk.user("alice").await;
    let token = pk.signed_in("alice").await;
    let (key, _) = pk.registered(&token).await;

    // One challenge answered twice at once: one session.
    for round in 0..5 {
        let credential = pk.assertion(&key, json!({})).await;
        let sessions = pk.count("SELECT count(*) FROM sessions").await;
        let (a, b) = tokio::join!(pk.sign_in(&credential), pk.sign_in(&credential));
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 401], "round {round}");
        assert_eq!(pk.count("SELECT count(*) FROM sessions").await, sessions + 1);
    }

    // Two sign-ins of one account at once, each with its own challenge, with one passkey and
    // with two: both pass (they take the account's attempt lock in turn), neither deadlocks.
    let (second_key, _) = pk.registered(&token).await;
    for round in 0..4 {
        let other = if round % 2 == 0 { &key } else { &second_key };
        let (a, b) = (pk.assertion(&key, json!({})).await, pk.assertion(other, json!({})).await);
        let (x, y) = tokio::join!(pk.sign_in(&a), pk.sign_in(&b));
        assert_eq!((x.0, y.0), (200, 200), "round {round}: {x:?} {y:?}");
    }

    // One credential registered twice at once, with two challenges: one row.
    let (first, second) = (pk.creation_options(&token).await, pk.creation_options(&token).await);
    let a = authenticator(json!({"op": "create", "options": first, "origin": ORIGIN}));
    let b = authenticator(
        json!({"op": "create", "options": second, "origin": ORIGIN, "key": a["key"]}),
    );
    let body = |m: &Value| json!({"credential": m["credential"]});
    let answers = [body(&a), body(&b)];
    assert_eq!(pk.register_both_at_once(&token, answers).await, [201, 400]);
    // And one answer sent twice at once: one row.
    let options = pk.creation_options(&token).await;
    let c = authenticator(json!({"op": "create", "options": options, "origin": ORIGIN}));
    let answers = [body(&c), body(&c)];
    assert_eq!(pk.register_both_at_once(&token, answers).await, [201, 400]);
    assert_eq!(pk.count("SELECT count(*) FROM passkeys").await, 4);

    // Two answers at once when one passkey more is allowed: one is stored.
    pk.sql(&format!(
        "INSERT INTO passkeys (user_id, credential_id, name, credential)
         SELECT user_id, sha256(n::text::bytea), 'k' || n, '{{}}'::jsonb
           FROM (SELECT DISTINCT user_id FROM passkeys) u, generate_series(1, {}) AS n",
        auth_shared::passkeys::MAX_PASSKEYS - 5
    ))
    .await;
    let (first, second) = (pk.creation_options(&token).await, pk.creation_options(&token).await);
    let a = authenticator(json!({"op": "create", "options": first, "origin": ORIGIN}));
    let b = authenticator(json!({"op": "create", "options": second, "origin": ORIGIN}));
    let answers = [body(&a), body(&b)];
    assert_eq!(pk.register_both_at_once(&token, answers).await, [201, 400]);
    assert_eq!(
        pk.count("SELECT count(*) FROM passkeys").await,
        auth_shared::passkeys::MAX_PASSKEYS
    );
    pk.sql("DELETE FROM passkeys WHERE credential = '{}'::jsonb").await;

    // A sign-in racing the passkey's removal: the removal always lands; the sign-in either ran
    // before it (200) or finds no passkey (401); never a 500, never a passkey left.
    for round in 0..5 {
        let (key, made) = pk.registered(&token).await;
        let credential = pk.assertion(&key, json!({})).await;
        let path = format!("/passkeys/{}", made["id"].as_str().unwrap());
        let (login, removal) =
            tokio::join!(pk.sign_in(&credential), pk.call("DELETE", &path, Some(&token), ""));
        assert_eq!(removal.0, 204, "round {round}");
        assert!(login.0 == 200 || login.0 == 401, "round {round}: {login:?}");
        let left = pk
            .count(&format!(
                "SELECT count(*) FROM passkeys WHERE id = '{}'",
                made["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(left, 0);
        assert_eq!(pk.sign_in(&pk.assertion(&key, json!({})).await).await.0, 401);
    }
}

/// The subjects of the mails `a` delivered to `to`.
async fn subjects(a: &testkit::accounts::Accounts, to: &str) -> Vec<String> {
    a.deliver().await;
    a.mails_to(to).into_iter().map(|m| m.subject).collect()
}

#[tokio::test]
async fn adding_or_removing_a_passkey_or_a_factor_mails_a_security_notice() {
    let a = testkit::accounts::Accounts::new(auth_shared::accounts::AccountConfig::default()).await;
    let mut pk = Pk::new().await;
    // The same functions on the accounts harness's database, with its mail queue.
    let rp = pk.register.rp.clone();
    pk.hash = a.login.clone();
    pk.register = PasskeyState::new(a.login.clone(), rp.clone());
    pk.login = PasskeyLoginState::new(a.login.token.clone(), pk.login.keys.clone(), rp);
    pk.mfa = MfaState::new(a.login.clone(), pk.login.keys.clone(), "Test App".into());
    a.parts.test_db.create_user("nia", "nia@example.com", PASSWORD).await;
    let token = pk.signed_in("nia").await;
    let (_, made) = pk.registered(&token).await;
    let app = &a.account.accounts.app_name;
    assert!(
        subjects(&a, "nia@example.com")
            .await
            .contains(&format!("A passkey was added to your account at {app}")),
        "{:?}",
        a.mails_to("nia@example.com").iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    let path = format!("/passkeys/{}", made["id"].as_str().unwrap());
    assert_eq!(pk.call("DELETE", &path, Some(&token), "").await.0, 204);
    assert!(
        subjects(&a, "nia@example.com")
            .await
            .contains(&format!("A passkey was removed from your account at {app}"))
    );
    let (_, body) = pk.post("/mfa/totp", Some(&token), json!({"password": PASSWORD})).await;
    let secret = body["secret"].as_str().unwrap().to_owned();
    let (status, body) =
        pk.post("/mfa/totp/verify", Some(&token), json!({"code": app_code(&secret, 0)})).await;
    assert_eq!(status, 200, "{body}");
    let with_mfa = body["access_token"].as_str().unwrap().to_owned();
    assert!(
        subjects(&a, "nia@example.com")
            .await
            .contains(&format!("Two-step verification is on for your account at {app}"))
    );
    let code = body["recovery_codes"][0].as_str().unwrap().to_owned();
    let req = testkit::request(
        "POST",
        "/mfa/totp/disable",
        &[("content-type", "application/json"), ("authorization", &format!("Bearer {with_mfa}"))],
        &json!({ "recovery_code": code }).to_string(),
    );
    let (status, _, body) = testkit::read(mfa_totp_disable::handle(&pk.mfa, req).await);
    assert_eq!(status, 204, "{body}");
    assert!(
        subjects(&a, "nia@example.com")
            .await
            .contains(&format!("Two-step verification is off for your account at {app}"))
    );
}
