//! Second factors through the real handlers and PostgreSQL, with `pyotp` as the authenticator
//! app a user has: enrolment, confirmation, the login's second step, recovery codes, `amr` on
//! every token and through refresh, the credential changes a token without `mfa` may not make,
//! bad input of every kind, a garbled stored secret, the throttles, and the races the locks
//! settle.

use std::sync::Arc;

use auth_shared::data_key::{DataKey, DataKeySource};
use auth_shared::mfa::{MfaConfig, Policy};
use auth_shared::state::{HashState, MfaState, TokenState};
use serde_json::{Value, json};
use sha2::Digest;
use testkit::app::Parts;

const PASSWORD: &str = "correct horse battery staple";

struct Mfa {
    parts: Parts,
    state: MfaState,
}

impl Mfa {
    async fn new() -> Self {
        Self::with(MfaConfig::default()).await
    }

    /// With MFA_POLICY and MFA_TOKEN_TTL_SECONDS as `mfa` says.
    async fn with(mfa: MfaConfig) -> Self {
        let parts = Parts::new(8).await;
        let hash = HashState::new(
            parts.db.clone(),
            parts.keys.clone(),
            parts.tokens.clone(),
            parts.policy,
        )
        .with_mfa(mfa);
        let keys = Arc::new(DataKey::new(DataKeySource::Local(vec![7; 32].into())).await);
        let state = MfaState::new(hash, keys, "Test App".into());
        Self { parts, state }
    }

    fn token(&self) -> &TokenState {
        &self.state.hash.token
    }

    async fn user(&self, name: &str) -> uuid::Uuid {
        self.parts.test_db.create_user(name, &format!("{name}@example.com"), PASSWORD).await
    }

    /// The one value of the one row `sql` returns.
    async fn value<T: for<'a> auth_shared::tokio_postgres::types::FromSql<'a>>(
        &self,
        sql: &str,
    ) -> T {
        self.parts.test_db.client().await.query_one(sql, &[]).await.unwrap().get(0)
    }

    async fn sql(&self, sql: &str) {
        self.parts.test_db.client().await.batch_execute(sql).await.unwrap();
    }
}

type Handler<'a> = Box<
    dyn Fn(
            auth_shared::lambda_http::Request,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<
                        Output = auth_shared::lambda_http::Response<auth_shared::lambda_http::Body>,
                    > + 'a,
            >,
        > + 'a,
>;

fn route<'a>(m: &'a Mfa, path: &str) -> Handler<'a> {
    match path {
        "/login" => Box::new(move |r| Box::pin(login::handle(&m.state.hash, r))),
        "/login/mfa" => Box::new(move |r| Box::pin(login_mfa::handle(&m.state, r))),
        "/mfa/totp" => Box::new(move |r| Box::pin(mfa_totp::handle(&m.state, r))),
        "/mfa/totp/verify" => Box::new(move |r| Box::pin(mfa_totp_verify::handle(&m.state, r))),
        "/mfa/totp/disable" => Box::new(move |r| Box::pin(mfa_totp_disable::handle(&m.state, r))),
        "/mfa/recovery-codes" => {
            Box::new(move |r| Box::pin(mfa_recovery_codes::handle(&m.state, r)))
        }
        "/mfa" => Box::new(move |r| Box::pin(mfa_status::handle(m.token(), r))),
        "/refresh" => Box::new(move |r| Box::pin(refresh::handle(m.token(), r))),
        "/password" => Box::new(move |r| Box::pin(password::handle(&m.state.hash, r))),
        other => panic!("no route {other}"),
    }
}

/// Sends `body` (JSON) to `path`, with `bearer` when given; (status, body).
async fn call(
    m: &Mfa,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let text = if body.is_null() { String::new() } else { body.to_string() };
    let (status, h, body) =
        testkit::read(route(m, path)(testkit::json_request(method, path, bearer, &text)).await);
    if status == 429 {
        assert!(h.contains_key("retry-after"), "{body}");
    }
    if status == 401 {
        assert!(h.contains_key("www-authenticate"), "{body}");
    }
    (status, body)
}

async fn post(m: &Mfa, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
    call(m, "POST", path, bearer, &body).await
}

async fn login(m: &Mfa, name: &str) -> (u16, Value) {
    post(m, "/login", None, json!({"username": name, "password": PASSWORD})).await
}

/// The code `pyotp` (the authenticator app) shows for `secret`, `offset` seconds from now.
pub(crate) fn app_code(secret: &str, offset: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    app_code_at(secret, now as i64 + offset)
}

/// The code `pyotp` shows for `secret` at `unix` seconds.
fn app_code_at(secret: &str, unix: i64) -> String {
    let out = std::process::Command::new(testkit::venv_python())
        .args([
            "-c",
            "import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))",
            secret,
            &unix.to_string(),
        ])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// What `pyotp` reads from the otpauth URI: (secret, issuer, account name, digits, period).
fn app_reads(uri: &str) -> Value {
    let out = std::process::Command::new(testkit::venv_python())
        .args([
            "-c",
            "import json, pyotp, sys; t = pyotp.parse_uri(sys.argv[1]); \
             print(json.dumps([t.secret, t.issuer, t.name, t.digits, t.interval, t.digest().name]))",
            uri,
        ])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The claims of an access token (read without a check: the handlers checked it).
pub(crate) fn claims(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap())
        .unwrap()
}

/// Logs `name` in, enrols and confirms a TOTP factor; (secret, recovery codes, the access
/// token of the verify).
async fn enrolled(m: &Mfa, name: &str) -> (String, Vec<String>, String) {
    let (status, body) = login(m, name).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = post(m, "/mfa/totp", Some(&access), json!({"password": PASSWORD})).await;
    assert_eq!(status, 200, "{body}");
    let secret = body["secret"].as_str().unwrap().to_owned();
    let (status, body) =
        post(m, "/mfa/totp/verify", Some(&access), json!({"code": app_code(&secret, 0)})).await;
    assert_eq!(status, 200, "{body}");
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes, body["access_token"].as_str().unwrap().to_owned())
}

/// A login's mfa_token (the password was right, a second step is due).
async fn mfa_token(m: &Mfa, name: &str) -> String {
    let (status, body) = login(m, name).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("mfa_required")), "{body}");
    body["mfa_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn enrol_with_the_app_confirm_and_log_in_in_two_steps() {
    let m = Mfa::new().await;
    m.user("alice").await;
    let (status, first) = login(&m, "alice").await;
    assert_eq!(status, 200);
    assert_eq!(claims(first["access_token"].as_str().unwrap())["amr"], json!(["pwd"]));
    let access = first["access_token"].as_str().unwrap();
    // A first factor needs the password: none, or a wrong one, adds nothing.
    let (status, body) = post(&m, "/mfa/totp", Some(access), json!({})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
    let (status, body) = post(&m, "/mfa/totp", Some(access), json!({"password": "wrong"})).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_credentials")));
    let (status, body) = post(&m, "/mfa/totp", Some(access), json!({"password": PASSWORD})).await;
    assert_eq!(status, 200, "{body}");
    let secret = body["secret"].as_str().unwrap();
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    // The app reads the URI as it was meant: the secret, APP_NAME, the username, SHA-1, 6, 30 s.
    assert_eq!(app_reads(uri), json!([secret, "Test App", "alice", 6, 30, "sha1"]));
    assert_eq!(secret.len(), 32, "160 bits in base32");
    // Pending: login is unchanged, and GET /mfa says so.
    let (status, _) = login(&m, "alice").await;
    assert_eq!(status, 200, "a pending factor changes nothing");
    let (status, body) = call(&m, "GET", "/mfa", Some(access), &Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(body["totp"]["enabled"], false);
    assert_eq!(body["totp"]["pending"], true);
    // A wrong code does not confirm; the app's does.
    let wrong = format!("{:06}", (app_code(secret, 0).parse::<u32>().unwrap() + 1) % 1_000_000);
    let (status, body) = post(&m, "/mfa/totp/verify", Some(access), json!({"code": wrong})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_code")));
    let (status, verified) =
        post(&m, "/mfa/totp/verify", Some(access), json!({"code": app_code(secret, 0)})).await;
    assert_eq!(status, 200, "{verified}");
    let codes = verified["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let mfa_access = verified["access_token"].as_str().unwrap();
    assert_eq!(claims(mfa_access)["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims(mfa_access)["sid"], claims(access)["sid"], "the same session goes on");
    // The other session (the second login above) ended.
    let (status, _) = login(&m, "alice").await;
    assert_eq!(status, 403);
    // The refresh keeps the session's amr.
    let (status, refreshed) =
        post(&m, "/refresh", None, json!({"refresh_token": verified["refresh_token"]})).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "otp", "mfa"])
    );
    let (_, body) = call(&m, "GET", "/mfa", Some(mfa_access), &Value::Null).await;
    assert_eq!(body["totp"]["enabled"], true);
    assert_eq!(body["recovery_codes_remaining"], 10);
    assert_eq!(body["passkeys"], 0);
    assert!(!body.to_string().contains(secret), "GET /mfa shows no secret");

    // The second step: a right password is not yet a login.
    let (status, body) = login(&m, "alice").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("mfa_required")), "{body}");
    assert_eq!(body["mfa_methods"], json!(["totp", "recovery_code"]));
    let token = body["mfa_token"].as_str().unwrap();
    assert!(token.len() >= 43, "at least 256 bits");
    assert!(body.get("access_token").is_none());
    // The step the verify used is never taken again; the next step's code is.
    let used: i64 = m.value("SELECT last_step FROM totp_factors WHERE NOT pending").await;
    let replayed = app_code_at(secret, used * 30);
    let (status, body) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": replayed})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_code")), "replay: {body}");
    let (status, done) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": app_code(secret, 30)}))
            .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(claims(done["access_token"].as_str().unwrap())["amr"], json!(["pwd", "otp", "mfa"]));
    // The mfa_token is single use.
    let (status, body) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": app_code(secret, -30)}))
            .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));

    // A recovery code, once.
    let code = codes[0].as_str().unwrap();
    let token = mfa_token(&m, "alice").await;
    let (status, body) = post(
        &m,
        "/login/mfa",
        None,
        json!({"mfa_token": token, "recovery_code": code.to_uppercase()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = mfa_token(&m, "alice").await;
    let (status, body) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "recovery_code": code})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_code")),
        "a used recovery code"
    );
    let (_, body) = call(&m, "GET", "/mfa", Some(mfa_access), &Value::Null).await;
    assert_eq!(body["recovery_codes_remaining"], 9);

    // A token without mfa (a password login's) may change no credential now.
    let pwd_only = pwd_token_for(&m, mfa_access);
    for (path, body) in [
        (
            "/password",
            json!({"current_password": PASSWORD, "new_password": "a new and rather long passphrase"}),
        ),
        ("/mfa/totp/disable", json!({"code": app_code(secret, 0)})),
        ("/mfa/recovery-codes", json!({"code": app_code(secret, 0)})),
        ("/mfa/totp", json!({"password": PASSWORD})),
    ] {
        let (status, got) = post(&m, path, Some(&pwd_only), body).await;
        assert_eq!((status, got["error"].as_str()), (403, Some("mfa_required")), "{path}: {got}");
        assert!(got.get("mfa_token").is_none(), "{path}: {got}");
    }

    // New recovery codes: the old set is void. (Every step of the window is used by now; the
    // factor's last step is moved back as if the next half-minute had come.)
    m.sql("UPDATE totp_factors SET last_step = 0").await;
    let (status, fresh) =
        post(&m, "/mfa/recovery-codes", Some(mfa_access), json!({"code": app_code(secret, -30)}))
            .await;
    assert_eq!(status, 200, "{fresh}");
    assert_eq!(fresh["recovery_codes"].as_array().unwrap().len(), 10);
    let token = mfa_token(&m, "alice").await;
    let (status, _) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "recovery_code": codes[1]})).await;
    assert_eq!(status, 400, "the old set is void");

    // Off, with a recovery code: login is one step again.
    let (status, body) = post(
        &m,
        "/mfa/totp/disable",
        Some(mfa_access),
        json!({"recovery_code": fresh["recovery_codes"][0]}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = login(&m, "alice").await;
    assert_eq!(status, 200);
    let (_, body) = call(&m, "GET", "/mfa", Some(mfa_access), &Value::Null).await;
    assert_eq!(body["totp"]["enabled"], false);
    assert_eq!(body["recovery_codes_remaining"], 0);
}

/// An access token for the same session as `mfa_access` but with `amr` `["pwd"]`, signed with
/// the test key: what a token from before the factor would be.
fn pwd_token_for(m: &Mfa, mfa_access: &str) -> String {
    let c = claims(mfa_access);
    let key =
        auth_shared::signing::Key::new("local", testkit::events::TEST_KEY.as_bytes()).unwrap();
    let sid = uuid::Uuid::parse_str(c["sid"].as_str().unwrap()).unwrap();
    let sub = uuid::Uuid::parse_str(c["sub"].as_str().unwrap()).unwrap();
    auth_shared::token::issue(
        &m.parts.tokens,
        &key,
        sub,
        "alice",
        Some(sid),
        c["iat"].as_i64().unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn under_mfa_policy_required_a_login_enrols_with_its_mfa_token() {
    let m = Mfa::with(MfaConfig { policy: Policy::Required, token_ttl_seconds: 300 }).await;
    m.user("hal").await;
    m.user("ivy").await;
    let (status, body) = login(&m, "hal").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("mfa_enrollment_required")), "{body}");
    assert!(body.get("access_token").is_none(), "no session before a factor: {body}");
    let token = body["mfa_token"].as_str().unwrap().to_owned();
    // The enrolment token is no login token, and no Bearer token either.
    let (status, body) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": "123456"})).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "{body}");
    for path in ["/mfa/totp/disable", "/mfa/recovery-codes"] {
        let (status, _) = post(&m, path, Some(&token), json!({"code": "123456"})).await;
        assert_eq!(status, 401, "{path} takes no enrolment token");
    }
    // Another user's, a forged or a truncated token enrols nothing.
    let (_, other) = login(&m, "ivy").await;
    let ivy_token = other["mfa_token"].as_str().unwrap().to_owned();
    for bad in [&token[..20], "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let (status, body) = post(&m, "/mfa/totp", None, json!({"mfa_token": bad})).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "{bad}: {body}");
    }
    // A second login's enrolment token, kept for later.
    let (_, later) = login(&m, "hal").await;
    let later = later["mfa_token"].as_str().unwrap().to_owned();
    // The token stands in for the Bearer token and the password.
    let (status, body) = post(&m, "/mfa/totp", None, json!({"mfa_token": token})).await;
    assert_eq!(status, 200, "{body}");
    let secret = body["secret"].as_str().unwrap().to_owned();
    assert_eq!(app_reads(body["otpauth_uri"].as_str().unwrap())[2], "hal");
    // ivy's token confirms nothing of hal's.
    let (status, _) = post(
        &m,
        "/mfa/totp/verify",
        None,
        json!({"mfa_token": ivy_token, "code": app_code(&secret, 0)}),
    )
    .await;
    assert_eq!(status, 400, "ivy has no pending factor");
    // A wrong code counts, as at every second step: in the login throttle and against the token.
    let right = app_code(&secret, 0);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 500_000) % 1_000_000);
    let (status, _) =
        post(&m, "/mfa/totp/verify", None, json!({"mfa_token": token, "code": wrong})).await;
    assert_eq!(status, 400);
    let c = m.parts.test_db.client().await;
    let counts: (i32, i32) = {
        let throttle = c.query_one("SELECT failures FROM login_throttle", &[]).await.unwrap();
        let token = c.query_one("SELECT max(failures) FROM mfa_tokens", &[]).await.unwrap();
        (throttle.get(0), token.get(0))
    };
    assert_eq!(counts, (1, 1), "a wrong verify code is counted");
    let (status, body) = post(
        &m,
        "/mfa/totp/verify",
        None,
        json!({"mfa_token": token, "code": app_code(&secret, 0)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recovery_codes"].as_array().map(Vec::len), Some(10));
    assert_eq!(claims(body["access_token"].as_str().unwrap())["amr"], json!(["pwd", "otp", "mfa"]));
    // Used up: the token enrols nothing more.
    let (status, _) = post(&m, "/mfa/totp", None, json!({"mfa_token": token})).await;
    assert_eq!(status, 401, "an enrolment token is good until its verify");
    // Nor does an older one of the same account: with a factor active, enrolling another needs
    // the second step.
    let (status, _) = post(&m, "/mfa/totp", None, json!({"mfa_token": later})).await;
    assert_eq!(status, 401, "no enrolment token outlives the first factor");
    // From now on hal's login is the ordinary second step.
    let token = mfa_token(&m, "hal").await;
    let (status, body) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": app_code(&secret, 30)}))
            .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn bad_codes_and_tokens_are_4xx_problems() {
    let m = Mfa::new().await;
    m.user("bob").await;
    m.user("carol").await;
    let (secret, _, _) = enrolled(&m, "bob").await;
    let (carol_secret, _, _) = enrolled(&m, "carol").await;
    let token = mfa_token(&m, "bob").await;
    let right = app_code(&secret, 30);
    // Codes of the wrong shape: 400 invalid_code, not counted against the token.
    for bad in [
        format!("{} {}", &right[..3], &right[3..]),
        format!("{}a", &right[..5]),
        right[..5].to_owned(),
        format!("{right}0"),
        "١٢٣٤٥٦".to_owned(),
        "１２３４５６".to_owned(),
        String::new(),
    ] {
        let (status, body) =
            post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": bad})).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_code")),
            "{bad:?}: {body}"
        );
    }
    for (body, want) in [
        (
            json!({"mfa_token": token, "code": right, "recovery_code": "abcde-fghjk"}),
            "invalid_request",
        ),
        (json!({"mfa_token": token}), "invalid_request"),
        (json!({"code": right}), "invalid_request"),
        (json!({"mfa_token": token, "code": 123456}), "invalid_request"),
        (json!({"mfa_token": 5, "code": right}), "invalid_request"),
        (json!([token, right]), "invalid_request"),
        (json!({"mfa_token": token, "recovery_code": "not-a-code!"}), "invalid_code"),
    ] {
        let (status, got) = post(&m, "/login/mfa", None, body.clone()).await;
        assert_eq!((status, got["error"].as_str()), (400, Some(want)), "{body}: {got}");
    }
    let (status, got) = call(&m, "POST", "/login/mfa", None, &json!("not an object")).await;
    assert_eq!(status, 400, "{got}");
    // Tokens truncated, forged, or expired: 401 invalid_token.
    let forged = "A".repeat(43);
    for t in [&token[..20], forged.as_str(), &format!("{token}x"), ""] {
        let (status, body) =
            post(&m, "/login/mfa", None, json!({"mfa_token": t, "code": right})).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "{t:?}: {body}");
    }
    // Another user's code on bob's token is a wrong code for bob.
    let (status, body) = post(
        &m,
        "/login/mfa",
        None,
        json!({"mfa_token": token, "code": app_code(&carol_secret, 30)}),
    )
    .await;
    if app_code(&carol_secret, 30) != right {
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_code")), "{body}");
    }
    // The token still works after one wrong code...
    let (status, body) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": right})).await;
    assert_eq!(status, 200, "{body}");
    // ... an expired one does not.
    let token = mfa_token(&m, "bob").await;
    m.sql("UPDATE mfa_tokens SET expires_at = now() - interval '1 second'").await;
    let (status, body) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": app_code(&secret, -30)}))
            .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "{body}");
}

#[tokio::test]
async fn five_wrong_codes_kill_the_token_and_count_in_the_login_throttle() {
    let m = Mfa::new().await;
    m.user("dan").await;
    let (secret, codes, _) = enrolled(&m, "dan").await;
    let token = mfa_token(&m, "dan").await;
    let right = app_code(&secret, 30);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 500_000) % 1_000_000);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, _) =
            post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": wrong})).await;
        statuses.push(status);
    }
    assert_eq!(statuses, [400; 5]);
    let (status, body) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": right})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token")),
        "dead after 5: {body}"
    );
    // The five counted in the account's login throttle (its lock starts at the fifth failure):
    // the next login is refused.
    m.sql("UPDATE login_throttle SET last_failure_at = now()").await;
    let (status, _) = login(&m, "dan").await;
    assert_eq!(status, 429, "wrong codes count in the login throttle");
    // Ten wrong codes in a day lock the second step, but a recovery code still passes.
    m.sql("DELETE FROM login_throttle; UPDATE mfa_failures SET failures = 10").await;
    let token = mfa_token(&m, "dan").await;
    let (status, _) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": app_code(&secret, 0)}))
            .await;
    assert_eq!(status, 429, "the daily lock refuses even a right code");
    let (status, body) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "recovery_code": codes[0]})).await;
    assert_eq!(status, 200, "a recovery code is the way out: {body}");
    let n: i64 = m.value("SELECT count(*) FROM mfa_failures").await;
    assert_eq!(n, 0, "the recovery code cleared the daily count");

    // Second steps never taken leave expired tokens, which the purge removes (logins answered
    // with an mfa_token run it now and then); a live one stays.
    let c = m.parts.test_db.client().await;
    let live = mfa_token(&m, "dan").await;
    let stale = mfa_token(&m, "dan").await;
    let stale_hash = sha2::Sha256::digest(stale.as_bytes()).to_vec();
    c.execute(
        "UPDATE mfa_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        &[&stale_hash],
    )
    .await
    .unwrap();
    auth_shared::mfa::store::purge_expired_tokens(&c).await.unwrap();
    let left: Vec<Vec<u8>> = c
        .query("SELECT token_hash FROM mfa_tokens", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!left.contains(&stale_hash), "the expired token is gone");
    assert!(left.contains(&sha2::Sha256::digest(live.as_bytes()).to_vec()), "the live one stays");
}

#[tokio::test]
async fn a_garbled_stored_secret_fails_closed_and_recovery_codes_still_work() {
    let m = Mfa::new().await;
    m.user("erin").await;
    let (secret, codes, _) = enrolled(&m, "erin").await;
    // One flipped bit in the sealed secret.
    m.sql("UPDATE totp_factors SET secret = set_bit(secret, 100, 1 - get_bit(secret, 100))").await;
    let token = mfa_token(&m, "erin").await;
    let (status, body) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": app_code(&secret, 30)}))
            .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_code")), "{body}");
    // A version of the data key that is not readable: the same.
    m.sql("UPDATE totp_factors SET key_version = 'gone'").await;
    let (status, _) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": app_code(&secret, 30)}))
            .await;
    assert_eq!(status, 400);
    let (status, body) =
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "recovery_code": codes[3]})).await;
    assert_eq!(status, 200, "{body}");
}

/// Two requests to `path` at once (each on its own pooled connection, so they meet in the
/// database); their (status, body), sorted by status.
async fn two_at_once(m: &Mfa, path: &str, a: Value, b: Value) -> Vec<(u16, Value)> {
    let (x, y) = tokio::join!(post(m, path, None, a), post(m, path, None, b));
    let mut out = vec![x, y];
    out.sort_by_key(|(s, _)| *s);
    out
}

#[tokio::test]
async fn one_code_one_token_and_one_recovery_code_each_win_once_at_the_same_time() {
    let m = Mfa::new().await;
    m.user("fay").await;
    let (secret, codes, _) = enrolled(&m, "fay").await;
    // The same TOTP code on two mfa_tokens at once: one session, never two.
    let code = app_code(&secret, 30);
    let (t1, t2) = (mfa_token(&m, "fay").await, mfa_token(&m, "fay").await);
    let got = two_at_once(
        &m,
        "/login/mfa",
        json!({"mfa_token": t1, "code": code}),
        json!({"mfa_token": t2, "code": code}),
    )
    .await;
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [200, 400], "{got:?}");
    // One mfa_token twice at once (with two codes of the window): one success.
    let t = mfa_token(&m, "fay").await;
    let got = two_at_once(
        &m,
        "/login/mfa",
        json!({"mfa_token": t, "recovery_code": codes[0]}),
        json!({"mfa_token": t, "recovery_code": codes[1]}),
    )
    .await;
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [200, 401], "{got:?}");
    // One recovery code on two tokens at once: used once.
    let (t1, t2) = (mfa_token(&m, "fay").await, mfa_token(&m, "fay").await);
    let got = two_at_once(
        &m,
        "/login/mfa",
        json!({"mfa_token": t1, "recovery_code": codes[2]}),
        json!({"mfa_token": t2, "recovery_code": codes[2]}),
    )
    .await;
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [200, 400], "{got:?}");
    let sessions: i64 =
        m.value("SELECT count(*) FROM sessions WHERE 'mfa' = ANY(amr) AND ended_at IS NULL").await;
    // The verify's session, and one per race (the recovery-code race of one token used codes[0]
    // or codes[1]; the other stays unused).
    assert_eq!(sessions, 4);
}

#[tokio::test]
async fn a_login_racing_a_password_change_leaves_no_mfa_token_alive() {
    let m = Mfa::new().await;
    m.user("kit").await;
    let (secret, _, _) = enrolled(&m, "kit").await;
    // An operator's set-password (a reset is the same two statements) holds its transaction
    // open after updating the hash and voiding the mfa_tokens, while a login with the old
    // password checks it (reading the committed, old hash) and reaches its second step.
    let mut admin = m.parts.test_db.client().await;
    let tx = admin.transaction().await.unwrap();
    let new_hash = auth_shared::password::hash("another long passphrase", testkit::pg::TEST_POLICY);
    assert!(auth_shared::users::set_password(&tx, "kit", &new_hash).await.unwrap());
    let login = login(&m, "kit");
    let commit = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        tx.commit().await.unwrap();
    };
    let (login, ()) = tokio::join!(login, commit);
    // The login waits for the change and is refused; had it stored its mfa_token before the
    // change committed, the token would have outlived the password it was for.
    match login.0 {
        401 => assert_eq!(login.1["error"], "invalid_credentials", "{login:?}"),
        403 => {
            let token = login.1["mfa_token"].as_str().unwrap();
            let (status, body) = post(
                &m,
                "/login/mfa",
                None,
                json!({"mfa_token": token, "code": app_code(&secret, 30)}),
            )
            .await;
            panic!(
                "an mfa_token outlived the password change: /login/mfa answered {status} {body}"
            );
        }
        other => panic!("unexpected {other}: {login:?}"),
    }
}

#[tokio::test]
async fn a_verify_racing_a_disable_and_a_second_step_racing_a_password_change() {
    let m = Mfa::new().await;
    m.user("gus").await;
    let (secret, _, access) = enrolled(&m, "gus").await;
    // A new phone's pending factor, confirmed while the old one is turned off.
    let (status, body) = post(&m, "/mfa/totp", Some(&access), json!({})).await;
    assert_eq!(status, 200, "an mfa token enrols a new phone without the password: {body}");
    let new_secret = body["secret"].as_str().unwrap().to_owned();
    let (verify, disable) = tokio::join!(
        post(&m, "/mfa/totp/verify", Some(&access), json!({"code": app_code(&new_secret, 0)})),
        post(&m, "/mfa/totp/disable", Some(&access), json!({"code": app_code(&secret, 30)})),
    );
    let wins = [verify.0 == 200, disable.0 == 204].iter().filter(|w| **w).count();
    assert_eq!(wins, 1, "one of the two, never both: {verify:?} {disable:?}");
    let (_, body) = call(
        &m,
        "GET",
        "/mfa",
        Some(verify.1["access_token"].as_str().unwrap_or(&access)),
        &Value::Null,
    )
    .await;
    let enabled = body["totp"]["enabled"].as_bool();
    assert_eq!(enabled, Some(verify.0 == 200), "the state is the winner's: {body}");

    // Make sure a factor is active, then race the second step against a password change.
    m.sql("DELETE FROM totp_factors; DELETE FROM recovery_codes").await;
    m.sql("DELETE FROM sessions").await;
    let (secret, _, access) = enrolled(&m, "gus").await;
    let token = mfa_token(&m, "gus").await;
    let (step, change) = tokio::join!(
        post(&m, "/login/mfa", None, json!({"mfa_token": token, "code": app_code(&secret, 30)})),
        post(
            &m,
            "/password",
            Some(&access),
            json!({"current_password": PASSWORD, "new_password": "a new and rather long passphrase"}),
        ),
    );
    assert_eq!(change.0, 200, "{change:?}");
    match step.0 {
        // The step went first: the change ended its session.
        200 => {
            let (status, _) =
                post(&m, "/refresh", None, json!({"refresh_token": step.1["refresh_token"]})).await;
            assert_eq!(status, 401, "the second step's session did not outlive the change");
        }
        // The change went first: the token died with it.
        401 => assert_eq!(step.1["error"], "invalid_token"),
        other => panic!("unexpected {other}: {step:?}"),
    }
}
