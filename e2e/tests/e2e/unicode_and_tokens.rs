//! The same text typed differently, and the same claims encoded differently, are the same to
//! the service. Sent to the real login and profile binaries through the Runtime API and to
//! auth-local, on a database whose locale is `C` (where PostgreSQL's `lower()` folds only
//! ASCII) and on one whose locale is `C.UTF-8`.
//!
//! - Unicode (NIST SP 800-63B §5.1.1.2): a password set in NFC and typed in NFD, a username made
//!   in NFC and typed in NFD, in another case, or in full-width forms, all log in; a hash made
//!   elsewhere from un-normalised text still verifies and is upgraded.
//! - Tokens (RFC 7519): `aud` as a one-element array, fractional NumericDates and `typ`
//!   spellings other than ours verify like the token this service would have issued.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use testkit::events::{self, TEST_KEY, response_body};
use testkit::local::LocalServer;
use testkit::runtime_api::Function;

const NFC_PASSWORD: &str = "p\u{e4}ssw\u{f6}rd-\u{3a9}mega";
const NFD_PASSWORD: &str = "pa\u{308}sswo\u{308}rd-\u{3a9}mega";
const NFC_USER: &str = "Jos\u{e9}_x";

/// How one identifier may be typed: NFD, other case (non-ASCII letters too), full-width.
const TYPED_USERS: &[&str] = &[
    "Jos\u{e9}_x",
    "Jose\u{301}_x",
    "JOS\u{c9}_X",
    "jose\u{301}_X",
    "\u{ff2a}\u{ff4f}\u{ff53}\u{e9}\u{ff3f}\u{ff58}",
];

/// One place to send a request: the real binary behind the Runtime API, or auth-local.
enum Target {
    Lambda(Function),
    Local(LocalServer),
}

impl Target {
    async fn login(&self, identifier: (&str, &str), password: &str) -> (u16, Value) {
        let body = json!({identifier.0: identifier.1, "password": password}).to_string();
        self.send("POST", "/login", &[("content-type", "application/json")], Some(&body)).await
    }

    async fn profile(&self, token: &str) -> (u16, Value) {
        self.send("GET", "/profile", &[("authorization", &format!("Bearer {token}"))], None).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, Value) {
        match self {
            Self::Lambda(f) => {
                let resp = f.invoke(events::apigw(method, path, headers, body)).await.response();
                let doc = serde_json::from_str(&response_body(&resp)).unwrap_or(Value::Null);
                (resp["statusCode"].as_u64().unwrap_or_default() as u16, doc)
            }
            Self::Local(s) => {
                let body = body.unwrap_or_default().to_owned();
                let reply = testkit::client::send(method, &s.url(path), headers, body).await;
                let doc = if reply.body.is_empty() { Value::Null } else { reply.json() };
                (reply.status, doc)
            }
        }
    }
}

async fn targets(url: &str) -> Vec<(&'static str, Target)> {
    let env = [("DATABASE_URL", url), ("SECRET_KEY", TEST_KEY), ("PBKDF2_ITERATIONS", "100000")];
    let mut out = Vec::new();
    for name in ["login", "profile"] {
        let f = Function::start(Path::new(&testkit::binary(name)), &env).await;
        out.push((name, Target::Lambda(f)));
    }
    let local = LocalServer::start(Path::new(&testkit::binary("auth-local")), &env).await.unwrap();
    out.push(("auth-local", Target::Local(local)));
    out
}

#[tokio::test]
async fn text_typed_in_another_form_or_case_matches_on_any_locale() {
    for locale in ["C", "C.UTF-8"] {
        let db = testkit::TestDb::with_locale(locale).await;
        db.create_user(NFC_USER, "Jos\u{e9}@Exampl\u{e9}.com", NFC_PASSWORD).await;
        db.create_user("\u{c5}SA", "asa@example.com", "correct horse").await;
        let all = targets(&db.url).await;
        for (name, t) in &all {
            if *name == "profile" {
                continue;
            }
            let at = format!("{name} on {locale}");
            for typed in TYPED_USERS {
                for pw in [NFC_PASSWORD, NFD_PASSWORD] {
                    let (status, doc) = t.login(("username", typed), pw).await;
                    assert_eq!(status, 200, "{at}: {typed:?} / {pw:?}: {doc}");
                }
            }
            for email in ["jos\u{e9}@exampl\u{e9}.com", "JOSE\u{301}@EXAMPLE\u{301}.COM"] {
                assert_eq!(t.login(("email", email), NFD_PASSWORD).await.0, 200, "{at}: {email:?}");
            }
            assert_eq!(t.login(("username", "\u{e5}sa"), "correct horse").await.0, 200, "{at}");
            let (status, doc) = t.login(("username", NFC_USER), "p\u{e4}ssword-wrong").await;
            assert_eq!((status, doc["error"].as_str()), (401, Some("invalid_credentials")), "{at}");
        }
    }
}

#[tokio::test]
async fn hashes_of_unnormalised_text_still_verify_and_are_upgraded() {
    let db = testkit::TestDb::with_locale("C").await;
    // As another system would have stored it: PBKDF2 of the NFD bytes themselves.
    let salt = b"0123456789abcdef";
    let mut out = [0u8; 32];
    auth_shared::password::derive(NFD_PASSWORD.as_bytes(), salt, 100_000, &mut out);
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let stored = format!("$pbkdf2-sha256$i=100000,l=32${}${}", b64.encode(salt), b64.encode(out));
    db.create_user_with_hash("nfd", "nfd@example.com", &stored).await;
    let all = targets(&db.url).await;
    let (_, login) = &all[0];
    // The NFC form misses (the stored hash is of other bytes) until the NFD form upgrades it.
    assert_eq!(login.login(("username", "nfd"), NFC_PASSWORD).await.0, 401);
    assert_eq!(login.login(("username", "nfd"), NFD_PASSWORD).await.0, 200);
    let now: String = db
        .client()
        .await
        .query_one("SELECT password_hash FROM users WHERE username = 'nfd'", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(now, stored, "the hash was upgraded");
    for pw in [NFC_PASSWORD, NFD_PASSWORD] {
        assert_eq!(login.login(("username", "nfd"), pw).await.0, 200, "{pw:?} after the upgrade");
    }
}

#[tokio::test]
async fn accounts_copied_in_with_plain_sql_get_their_keys_at_the_next_migrate() {
    let db = testkit::TestDb::with_locale("C").await;
    let hash = auth_shared::password::hash(
        NFC_PASSWORD,
        auth_shared::password::Policy { iterations: 100_000 },
    );
    let mut c = db.client().await;
    c.execute(
        "INSERT INTO users (username, email, password_hash) VALUES ($1, $2, $3)",
        &[&"\u{d6}tzi", &"oetzi@example.com", &hash],
    )
    .await
    .unwrap();
    let report = auth_shared::migrate::run(&mut c).await.unwrap();
    assert_eq!(report.keys_filled, 1);
    let all = targets(&db.url).await;
    assert_eq!(all[0].1.login(("username", "\u{f6}TZI"), NFD_PASSWORD).await.0, 200);
}

/// A token signed with the test key from any header and claims.
fn sign(header: Value, claims: Value) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(TEST_KEY.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn every_rfc7519_encoding_of_our_claims_is_accepted() {
    let db = testkit::TestDb::new().await;
    let id = db.create_user("tok", "tok@example.com", "correct horse").await;
    let now = auth_shared::token::now();
    let ours = json!({
        "iss": "auth-service", "aud": "auth-service", "sub": id.to_string(), "username": "tok",
        "iat": now, "nbf": now, "exp": now + 600, "jti": "abcdefghijklmnop",
    });
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "local"});
    let mut accepted = vec![("ours".to_owned(), sign(header.clone(), ours.clone()))];
    for (claim, value) in [
        ("aud", json!(["auth-service"])),
        ("aud", json!(["another-api", "auth-service"])),
        ("iat", json!(now as f64 + 0.5)),
        ("nbf", json!(now as f64 - 0.25)),
        ("exp", json!(now as f64 + 600.5)),
        ("jti", json!("0f8fad5b-d9cb-469f-a165-70867728950e")),
    ] {
        let mut c = ours.clone();
        c[claim] = value.clone();
        accepted.push((format!("{claim} = {value}"), sign(header.clone(), c)));
    }
    for typ in ["jwt", "application/jwt", "application/JWT"] {
        let h = json!({"alg": "HS256", "typ": typ, "kid": "local"});
        accepted.push((format!("typ {typ}"), sign(h, ours.clone())));
    }
    let mut refused = Vec::new();
    for (claim, value) in [
        ("aud", json!(["another-api"])),
        ("aud", json!("another-api")),
        ("exp", json!(now as f64 - 40.5)),
        ("exp", json!(format!("{}", now + 600))),
    ] {
        let mut c = ours.clone();
        c[claim] = value.clone();
        refused.push((format!("{claim} = {value}"), sign(header.clone(), c)));
    }
    let crit = json!({"alg": "HS256", "typ": "JWT", "kid": "local", "crit": ["exp"]});
    refused.push(("crit".into(), sign(crit, ours.clone())));
    for (name, t) in targets(&db.url).await {
        if name == "login" {
            continue;
        }
        for (what, token) in &accepted {
            let (status, doc) = t.profile(token).await;
            assert_eq!(status, 200, "{name}: {what}: {doc}");
            assert_eq!(doc["username"], "tok");
        }
        for (what, token) in &refused {
            let (status, doc) = t.profile(token).await;
            assert_eq!(
                (status, doc["error"].as_str()),
                (401, Some("invalid_token")),
                "{name}: {what}"
            );
        }
    }
}
