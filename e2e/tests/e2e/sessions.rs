//! Sessions against a real PostgreSQL, through the real handlers: rotation and reuse
//! detection, logout in every scope, self-service password change, expiry, the races the
//! locking in `auth_shared::sessions` is written against, and malformed requests.

use std::sync::Arc;
use std::time::Duration;

use auth_shared::sessions::SessionConfig;
use auth_shared::state::{HashState, TokenState};
use serde_json::{Value, json};
use testkit::app::Parts;

const PASSWORD: &str = "correct horse battery staple";

/// Every handler that deals in sessions, over one database.
struct App {
    parts: Parts,
    hashing: HashState,
    token: TokenState,
}

impl App {
    async fn new(sessions: SessionConfig, pool: usize) -> Arc<Self> {
        let parts = Parts::new(pool).await;
        let hashing = HashState::new(
            parts.db.clone(),
            parts.keys.clone(),
            parts.tokens.clone(),
            parts.policy,
        )
        .with_sessions(sessions);
        let token = hashing.token.clone();
        Arc::new(Self { parts, hashing, token })
    }

    async fn user(&self, name: &str) {
        self.parts.test_db.create_user(name, &format!("{name}@example.com"), PASSWORD).await;
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        let req = testkit::request("POST", path, &h, &body.to_string());
        // Boxed: the handlers' futures are large in debug builds, and a test's own future holds
        // every one it awaits inline (the test thread's stack is 2 MiB).
        let resp = match path {
            "/login" => Box::pin(login::handle(&self.hashing, req)).await,
            "/refresh" => Box::pin(refresh::handle(&self.token, req)).await,
            "/logout" => Box::pin(logout::handle(&self.token, req)).await,
            "/password" => Box::pin(password::handle(&self.hashing, req)).await,
            other => panic!("{other}"),
        };
        let (status, _, doc) = testkit::read(resp);
        (status, doc)
    }

    /// Logs in; returns (access token, refresh token).
    async fn login(&self, name: &str, password: &str) -> (String, String) {
        let (status, doc) =
            self.post("/login", &[], &json!({"username": name, "password": password})).await;
        assert_eq!(status, 200, "login {name}: {doc}");
        assert_eq!(doc["refresh_token"].as_str().map(str::len), Some(43), "{doc}");
        assert!(doc["refresh_expires_in"].as_u64().is_some_and(|s| s > 0), "{doc}");
        (s(&doc["access_token"]), s(&doc["refresh_token"]))
    }

    async fn refresh(&self, token: &str) -> (u16, Value) {
        self.post("/refresh", &[], &json!({ "refresh_token": token })).await
    }

    async fn logout(&self, access: &str, scope: Option<&str>) -> u16 {
        let auth = format!("Bearer {access}");
        let body = scope.map_or(json!({}), |s| json!({ "scope": s }));
        self.post("/logout", &[("authorization", &auth)], &body).await.0
    }

    async fn profile(&self, access: &str) -> u16 {
        let auth = format!("Bearer {access}");
        let req = testkit::request("GET", "/profile", &[("authorization", &auth)], "");
        Box::pin(profile::handle(&self.token, req)).await.status().as_u16()
    }

    async fn password(&self, access: &str, current: &str, new: &str) -> (u16, Value) {
        let auth = format!("Bearer {access}");
        let body = json!({"current_password": current, "new_password": new});
        self.post("/password", &[("authorization", &auth)], &body).await
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The `sid` claim of an access token (read without verification: the handlers verified it).
fn sid(access: &str) -> String {
    use base64::Engine;
    let payload = access.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    s(&serde_json::from_slice::<Value>(&bytes).unwrap()["sid"])
}

fn config(reuse: u64) -> SessionConfig {
    SessionConfig { reuse_interval_seconds: reuse, ..SessionConfig::default() }
}

#[tokio::test]
async fn rotation_reuse_interval_and_reuse_detection() {
    let app = App::new(config(1), 2).await;
    app.user("ann").await;
    let (access, first) = app.login("ann", PASSWORD).await;
    let (status, doc) = app.refresh(&first).await;
    assert_eq!(status, 200, "{doc}");
    let (access2, second) = (s(&doc["access_token"]), s(&doc["refresh_token"]));
    assert_ne!(second, first, "a new refresh token");
    assert_ne!(access2, access, "a new access token");
    assert_eq!(sid(&access2), sid(&access), "the same session");
    assert_eq!(app.profile(&access2).await, 200);
    // A retry within the interval still works, and the session goes on.
    let (status, doc) = app.refresh(&first).await;
    assert_eq!(status, 200, "within the reuse interval: {doc}");
    assert_eq!(sid(&s(&doc["access_token"])), sid(&access));
    assert_eq!(s(&doc["refresh_token"]), second, "the same successor: one chain, no fork");
    let c = app.parts.test_db.client().await;
    let tokens: i64 = c.query_one("SELECT count(*) FROM refresh_tokens", &[]).await.unwrap().get(0);
    assert_eq!(tokens, 2, "the replay stored no second successor");
    let (status, doc) = app.refresh(&second).await;
    assert_eq!(status, 200, "{doc}");
    let (owner_access, owner_refresh) = (s(&doc["access_token"]), s(&doc["refresh_token"]));
    // After the interval the consumed token is taken as stolen: the whole session ends.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, doc) = app.refresh(&first).await;
    assert_eq!((status, doc["error"].as_str()), (401, Some("invalid_grant")), "{doc}");
    let (status, doc2) = app.refresh(&owner_refresh).await;
    assert_eq!(status, 401, "the owner's latest refresh token dies with the session");
    assert_eq!(doc, doc2, "one body for every refusal");
    assert_eq!(app.profile(&owner_access).await, 401, "and so do its access tokens");
    assert_eq!(app.profile(&access).await, 401);
    // A new login is a new session, unaffected.
    let (fresh, _) = app.login("ann", PASSWORD).await;
    assert_ne!(sid(&fresh), sid(&access));
    assert_eq!(app.profile(&fresh).await, 200);
    let c = app.parts.test_db.client().await;
    let reason: Option<String> = c
        .query_one("SELECT end_reason FROM sessions WHERE id = $1::text::uuid", &[&sid(&access)])
        .await
        .unwrap()
        .get(0);
    assert_eq!(reason.as_deref(), Some("refresh_token_reused"));
    let stored: i64 = c
        .query_one(
            "SELECT count(*) FROM refresh_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&first],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "only the SHA-256 of a refresh token is stored");
}

#[tokio::test]
async fn every_refusal_is_the_same_invalid_grant() {
    let app = App::new(config(0), 2).await;
    app.user("bo").await;
    let (access, token) = app.login("bo", PASSWORD).await;
    let (_, refreshed) = app.refresh(&token).await;
    let mut bodies = Vec::new();
    for presented in [
        "A".repeat(43),
        "short".into(),
        "x".repeat(1024),
        "not/base64url+chars!!!!!!!!!!!!!!!!!!!!!!!!".into(),
    ] {
        let (status, doc) = app.refresh(&presented).await;
        assert_eq!(status, 401, "{presented}: {doc}");
        bodies.push(doc);
    }
    // Logged out, then the token is refused like any other.
    assert_eq!(app.logout(&access, None).await, 204);
    let (status, doc) = app.refresh(&s(&refreshed["refresh_token"])).await;
    assert_eq!(status, 401);
    bodies.push(doc);
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(bodies[0]["error"], "invalid_grant");
}

#[tokio::test]
async fn logout_in_every_scope() {
    let app = App::new(config(10), 2).await;
    app.user("cy").await;
    app.user("other").await;
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(app.login("cy", PASSWORD).await);
    }
    let (other_access, _) = app.login("other", PASSWORD).await;
    // local: only this session.
    assert_eq!(app.logout(&sessions[0].0, None).await, 204);
    assert_eq!(app.profile(&sessions[0].0).await, 401);
    assert_eq!(app.refresh(&sessions[0].1).await.0, 401);
    assert_eq!(app.profile(&sessions[1].0).await, 200);
    // others: every other session of the user, not this one, and no other user's.
    assert_eq!(app.logout(&sessions[1].0, Some("others")).await, 204);
    assert_eq!(app.profile(&sessions[1].0).await, 200);
    for (access, refresh) in &sessions[2..] {
        assert_eq!(app.profile(access).await, 401);
        assert_eq!(app.refresh(refresh).await.0, 401);
    }
    assert_eq!(app.profile(&other_access).await, 200);
    // A refresh token ends its own session; 204 for an unknown one too (no oracle).
    let (a, r) = app.login("cy", PASSWORD).await;
    let (status, _) = app.post("/logout", &[], &json!({ "refresh_token": r })).await;
    assert_eq!(status, 204);
    assert_eq!(app.profile(&a).await, 401);
    for unknown in ["A".repeat(43), "nonsense".into()] {
        let (status, doc) = app.post("/logout", &[], &json!({ "refresh_token": unknown })).await;
        assert_eq!((status, doc), (204, Value::Null));
    }
    // global: all of them.
    let (b, _) = app.login("cy", PASSWORD).await;
    assert_eq!(app.logout(&sessions[1].0, Some("global")).await, 204);
    assert_eq!(app.profile(&sessions[1].0).await, 401);
    assert_eq!(app.profile(&b).await, 401);
    assert_eq!(app.profile(&other_access).await, 200);
    // An ended session's access token cannot log out again.
    assert_eq!(app.logout(&b, None).await, 401);
}

#[tokio::test]
async fn password_change_keeps_this_session_and_ends_the_others() {
    let app = App::new(config(10), 2).await;
    app.user("dee").await;
    let (here, here_refresh) = app.login("dee", PASSWORD).await;
    let (there, there_refresh) = app.login("dee", PASSWORD).await;
    let (status, doc) = app.password(&here, "wrong current", "a new and long passphrase").await;
    assert_eq!((status, doc["error"].as_str()), (401, Some("invalid_credentials")));
    for weak in ["password", "12345678", "short", PASSWORD] {
        let (status, doc) = app.password(&here, PASSWORD, weak).await;
        assert_eq!((status, doc["error"].as_str()), (400, Some("weak_password")), "{weak}: {doc}");
        assert!(doc["detail"].as_str().is_some_and(|d| d.len() > 25), "{doc}");
    }
    let (status, doc) = app.password(&here, PASSWORD, "a new and long passphrase").await;
    assert_eq!(status, 200, "{doc}");
    let (new_access, new_refresh) = (s(&doc["access_token"]), s(&doc["refresh_token"]));
    assert_ne!(sid(&new_access), sid(&here), "this session goes on under a new id");
    let c = app.parts.test_db.client().await;
    let row = c
        .query_one(
            "SELECT o.end_reason, o.created_at = n.created_at AND o.expires_at = n.expires_at \
             FROM sessions o, sessions n WHERE o.id = $1::text::uuid AND n.id = $2::text::uuid",
            &[&sid(&here), &sid(&new_access)],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("password_changed"));
    assert!(row.get::<_, bool>(1), "the successor keeps the session's start and absolute end");
    assert_eq!(app.profile(&new_access).await, 200, "the new token works at once");
    assert_eq!(app.profile(&here).await, 401, "old access tokens of this session stop working");
    assert_eq!(app.refresh(&here_refresh).await.0, 401, "and its old refresh token");
    assert_eq!(app.refresh(&new_refresh).await.0, 200);
    assert_eq!(app.profile(&there).await, 401, "other sessions end");
    assert_eq!(app.refresh(&there_refresh).await.0, 401);
    let (status, _) =
        app.post("/login", &[], &json!({"username": "dee", "password": PASSWORD})).await;
    assert_eq!(status, 401, "the old password no longer logs in");
    app.login("dee", "a new and long passphrase").await;
}

#[tokio::test]
async fn wrong_current_passwords_count_in_the_login_throttle() {
    let app = App::new(config(10), 2).await;
    app.user("eve").await;
    let (access, _) = app.login("eve", PASSWORD).await;
    for i in 0..5 {
        let (status, _) = app.password(&access, "wrong", "a new and long passphrase").await;
        assert_eq!(status, 401, "attempt {i}");
    }
    let (status, doc) = app.password(&access, "wrong", "a new and long passphrase").await;
    assert_eq!((status, doc["error"].as_str()), (429, Some("too_many_attempts")), "{doc}");
    let (status, _) =
        app.post("/login", &[], &json!({"username": "eve", "password": PASSWORD})).await;
    assert_eq!(status, 429, "the same lock as the account's logins");
}

#[tokio::test]
async fn twenty_concurrent_refreshes_with_one_token() {
    let app = App::new(config(30), 10).await;
    app.user("fay").await;
    let (access, token) = app.login("fay", PASSWORD).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { app.refresh(&token).await })
        })
        .collect();
    let mut fresh = Vec::new();
    for t in tasks {
        let (status, doc) = t.await.unwrap();
        assert_eq!(status, 200, "within the reuse interval every retry works: {doc}");
        assert_eq!(sid(&s(&doc["access_token"])), sid(&access));
        fresh.push(s(&doc["refresh_token"]));
    }
    fresh.sort();
    fresh.dedup();
    assert_eq!(fresh.len(), 1, "every retry got the same successor: one chain, never a fork");
    let c = app.parts.test_db.client().await;
    let consumed: i64 = c
        .query_one("SELECT count(*) FROM refresh_tokens WHERE consumed_at IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(consumed, 1, "the token was consumed once");
    assert_eq!(app.refresh(&fresh[0]).await.0, 200, "the session goes on");
}

#[tokio::test]
async fn no_session_survives_a_logout_racing_refreshes() {
    let app = App::new(config(30), 6).await;
    app.user("gus").await;
    for round in 0..5 {
        let (access, token) = app.login("gus", PASSWORD).await;
        let refreshes: Vec<_> = (0..4)
            .map(|_| {
                let (app, token) = (app.clone(), token.clone());
                tokio::spawn(async move { app.refresh(&token).await })
            })
            .collect();
        let logout = {
            let (app, access) = (app.clone(), access.clone());
            tokio::spawn(async move { app.logout(&access, None).await })
        };
        assert_eq!(logout.await.unwrap(), 204);
        for r in refreshes {
            let (status, doc) = r.await.unwrap();
            if status == 200 {
                // Whatever a refresh returned, the logout ended its session.
                assert_eq!(app.profile(&s(&doc["access_token"])).await, 401, "round {round}");
                assert_eq!(app.refresh(&s(&doc["refresh_token"])).await.0, 401, "round {round}");
            } else {
                assert_eq!(status, 401, "round {round}: {doc}");
            }
        }
    }
}

#[tokio::test]
async fn a_password_change_racing_refreshes_leaves_no_old_token_alive() {
    let app = App::new(config(30), 6).await;
    app.user("hal").await;
    let (here, _) = app.login("hal", PASSWORD).await;
    let (_, other) = app.login("hal", PASSWORD).await;
    let refreshes: Vec<_> = (0..4)
        .map(|_| {
            let (app, other) = (app.clone(), other.clone());
            tokio::spawn(async move { app.refresh(&other).await })
        })
        .collect();
    let (status, doc) = app.password(&here, PASSWORD, "a new and long passphrase").await;
    assert_eq!(status, 200, "{doc}");
    for r in refreshes {
        let (status, doc) = r.await.unwrap();
        if status == 200 {
            assert_eq!(app.profile(&s(&doc["access_token"])).await, 401);
            assert_eq!(app.refresh(&s(&doc["refresh_token"])).await.0, 401);
        }
    }
    assert_eq!(app.refresh(&other).await.0, 401);
}

#[tokio::test]
async fn sessions_expire_and_ended_ones_are_removed() {
    // Lifetimes far below what configuration allows, to see them pass in a test.
    // Margins of seconds, not milliseconds: a loaded CI machine takes hundreds of milliseconds
    // for a login and a refresh.
    let absolute =
        SessionConfig { ttl_seconds: 4, idle_timeout_seconds: 0, reuse_interval_seconds: 0 };
    let app = App::new(absolute, 2).await;
    app.user("ida").await;
    let (access, token) = app.login("ida", PASSWORD).await;
    let (status, doc) = app.refresh(&token).await;
    assert_eq!(status, 200);
    assert!(doc["refresh_expires_in"].as_u64().is_some_and(|s| s <= 4), "{doc}");
    tokio::time::sleep(Duration::from_millis(4200)).await;
    assert_eq!(app.refresh(&s(&doc["refresh_token"])).await.0, 401, "past the absolute end");
    assert_eq!(app.profile(&access).await, 401);

    let idle =
        SessionConfig { ttl_seconds: 3600, idle_timeout_seconds: 4, reuse_interval_seconds: 0 };
    let app = App::new(idle, 2).await;
    app.user("jo").await;
    let (_, token) = app.login("jo", PASSWORD).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, doc) = app.refresh(&token).await;
    assert_eq!(status, 200, "a refresh within the idle limit keeps it alive");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, doc) = app.refresh(&s(&doc["refresh_token"])).await;
    assert_eq!(status, 200, "{doc}");
    tokio::time::sleep(Duration::from_millis(4300)).await;
    assert_eq!(app.refresh(&s(&doc["refresh_token"])).await.0, 401, "idle too long");

    // Sessions over for a day are removed (logins run the purge now and then), their tokens
    // with them; live ones stay.
    let c = app.parts.test_db.client().await;
    c.execute("UPDATE sessions SET ended_at = now() - interval '2 days'", &[]).await.unwrap();
    let (live, _) = app.login("jo", PASSWORD).await;
    // (The login itself may have run it already: one in sixteen does.)
    auth_shared::sessions::purge(&c).await.unwrap();
    assert_eq!(app.profile(&live).await, 200);
    let tokens: i64 = c.query_one("SELECT count(*) FROM refresh_tokens", &[]).await.unwrap().get(0);
    assert_eq!(tokens, 1, "only the live session's token is left");
    let left: i64 = c
        .query_one("SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

/// (path, headers, body, status, error code).
type Case = (&'static str, Vec<(&'static str, String)>, String, u16, &'static str);

#[tokio::test]
async fn malformed_requests_get_their_problems() {
    let app = App::new(config(10), 2).await;
    app.user("kit").await;
    let (access, _) = app.login("kit", PASSWORD).await;
    let auth = format!("Bearer {access}");
    let raw = |path: &str, headers: Vec<(&'static str, String)>, body: String| {
        let app = app.clone();
        let path = path.to_owned();
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let req = testkit::request("POST", &path, &h, &body);
            let resp = match path.as_str() {
                "/refresh" => refresh::handle(&app.token, req).await,
                "/logout" => logout::handle(&app.token, req).await,
                _ => password::handle(&app.hashing, req).await,
            };
            let (status, headers, doc) = testkit::read(resp);
            (status, headers, doc)
        }
    };
    let json = ("content-type", "application/json".to_owned());
    let bearer = ("authorization", auth.clone());
    let cases: Vec<Case> = vec![
        ("/refresh", vec![json.clone()], String::new(), 400, "invalid_json"),
        ("/refresh", vec![json.clone()], "{".into(), 400, "invalid_json"),
        ("/refresh", vec![], r#"{"refresh_token":"x"}"#.into(), 415, "unsupported_media_type"),
        ("/refresh", vec![json.clone()], "{}".into(), 400, "invalid_request"),
        (
            "/refresh",
            vec![json.clone()],
            r#"{"refresh_token":null}"#.into(),
            400,
            "invalid_request",
        ),
        ("/refresh", vec![json.clone()], r#"{"refresh_token":7}"#.into(), 400, "invalid_request"),
        ("/refresh", vec![json.clone()], r#"{"refresh_token":""}"#.into(), 400, "invalid_request"),
        ("/refresh", vec![json.clone()], "[1]".into(), 400, "invalid_request"),
        ("/refresh", vec![json.clone()], "x".repeat(9000), 413, "payload_too_large"),
        (
            "/logout",
            vec![json.clone(), bearer.clone()],
            r#"{"scope":"everywhere"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/logout",
            vec![json.clone(), bearer.clone()],
            r#"{"scope":1}"#.into(),
            400,
            "invalid_request",
        ),
        ("/logout", vec![json.clone(), bearer.clone()], "{".into(), 400, "invalid_json"),
        (
            "/logout",
            vec![json.clone(), ("authorization", "Bearer a.b.c".into())],
            "{}".into(),
            401,
            "invalid_token",
        ),
        (
            "/logout",
            vec![json.clone(), ("authorization", "Basic abc".into())],
            "{}".into(),
            401,
            "invalid_token",
        ),
        ("/logout", vec![json.clone()], "{}".into(), 401, "invalid_token"),
        ("/logout", vec![json.clone()], r#"{"refresh_token":""}"#.into(), 400, "invalid_request"),
        ("/password", vec![json.clone(), bearer.clone()], "{}".into(), 400, "invalid_request"),
        (
            "/password",
            vec![json.clone(), bearer.clone()],
            r#"{"current_password":"x"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/password",
            vec![json.clone(), bearer.clone()],
            r#"{"current_password":"","new_password":"a long new passphrase"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/password",
            vec![json.clone(), bearer.clone()],
            r#"{"current_password":1,"new_password":"x"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/password",
            vec![json.clone()],
            r#"{"current_password":"x","new_password":"a long new passphrase"}"#.into(),
            401,
            "invalid_token",
        ),
        ("/password", vec![bearer.clone()], "{}".into(), 415, "unsupported_media_type"),
        (
            "/password",
            vec![json.clone(), bearer.clone()],
            format!(r#"{{"current_password":"x","new_password":"{}"}}"#, "y".repeat(1025)),
            400,
            "weak_password",
        ),
    ];
    for (path, headers, body, status, code) in cases {
        let shown = format!("{path} {headers:?} {}", &body[..body.len().min(60)]);
        let (got, h, doc) = raw(path, headers, body).await;
        assert_eq!((got, doc["error"].as_str()), (status, Some(code)), "{shown}: {doc}");
        assert_eq!(h["content-type"], "application/problem+json", "{shown}");
        if got == 401 {
            assert!(h.contains_key("www-authenticate"), "{shown}");
        }
    }
    // GET on the POST routes is 405 with Allow.
    for path in ["/refresh", "/logout", "/password"] {
        let req = testkit::request("GET", path, &[], "");
        let resp = match path {
            "/refresh" => refresh::handle(&app.token, req).await,
            "/logout" => logout::handle(&app.token, req).await,
            _ => password::handle(&app.hashing, req).await,
        };
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()["allow"], "POST");
    }
}

/// Invokes a real function binary with a JSON POST; returns the status and the body.
async fn call(
    f: &testkit::runtime_api::Function,
    path: &str,
    auth: Option<&str>,
    body: Value,
) -> (u64, Value) {
    let auth = auth.map(|a| format!("Bearer {a}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let event = testkit::events::apigw("POST", path, &headers, Some(&body.to_string()));
    let resp = f.invoke(event).await.response();
    let text = testkit::events::response_body(&resp);
    let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (resp["statusCode"].as_u64().unwrap_or_default(), doc)
}

/// The real binaries' logs (Lambda's JSON format) carry each audit event with its user and
/// session, and never a password, a refresh token or an access token.
#[tokio::test]
async fn audit_events_are_logged_and_no_secret_is() {
    use testkit::events::TEST_KEY;
    use testkit::runtime_api::Function;
    let db = testkit::TestDb::new().await;
    let user_id = db.create_user("lee", "lee@example.com", PASSWORD).await;
    let iterations = testkit::pg::TEST_POLICY.iterations.to_string();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("SECRET_KEY", TEST_KEY),
        ("PBKDF2_ITERATIONS", iterations.as_str()),
        ("REFRESH_REUSE_INTERVAL_SECONDS", "0"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
    ];
    let start =
        |name: &'static str| async move { Function::start(&testkit::binary(name), &env).await };
    let (login, refresh, logout, password) = (
        start("login").await,
        start("refresh").await,
        start("logout").await,
        start("password").await,
    );
    let (_, first) =
        call(&login, "/login", None, json!({"username": "lee", "password": PASSWORD})).await;
    let (_, wrong) =
        call(&login, "/login", None, json!({"username": "lee", "password": "nope-nope"})).await;
    assert_eq!(wrong["error"], "invalid_credentials");
    let (status, second) =
        call(&refresh, "/refresh", None, json!({"refresh_token": s(&first["refresh_token"])}))
            .await;
    assert_eq!(status, 200);
    let (status, _) =
        call(&refresh, "/refresh", None, json!({"refresh_token": s(&first["refresh_token"])}))
            .await;
    assert_eq!(status, 401, "reuse");
    let (_, third) =
        call(&login, "/login", None, json!({"username": "lee", "password": PASSWORD})).await;
    let new_password = "a new and long passphrase";
    let (status, fourth) = call(
        &password,
        "/password",
        Some(&s(&third["access_token"])),
        json!({"current_password": PASSWORD, "new_password": new_password}),
    )
    .await;
    assert_eq!(status, 200, "{fourth}");
    let (status, _) = call(&logout, "/logout", Some(&s(&fourth["access_token"])), json!({})).await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = [login.output(), refresh.output(), logout.output(), password.output()].join("\n");
    let events: Vec<Value> =
        logs.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect();
    for (event, with_session) in [
        ("login_succeeded", true),
        ("login_failed", false),
        ("token_refreshed", true),
        ("refresh_token_reused", true),
        ("password_changed", true),
        ("logged_out", true),
    ] {
        let line = events
            .iter()
            .find(|e| e["event"] == event)
            .unwrap_or_else(|| panic!("no {event} in the logs:\n{logs}"));
        assert_eq!(line["user_id"], user_id.to_string(), "{event}: {line}");
        if with_session {
            assert!(line["session_id"].is_string(), "{event}: {line}");
        }
    }
    for doc in [&first, &second, &third, &fourth] {
        for secret in [s(&doc["refresh_token"]), s(&doc["access_token"])] {
            assert!(!secret.is_empty() && !logs.contains(&secret), "a token in the logs");
        }
    }
    for secret in [PASSWORD, new_password, "nope-nope", TEST_KEY] {
        assert!(!logs.contains(secret), "{secret:?} in the logs");
    }
}

/// The session changing its password and a refresh of that same session's token, started a
/// little apart each round (the python client found this one): whatever the refresh got, it
/// must not outlive the change.
#[tokio::test]
async fn a_refresh_of_the_changing_session_does_not_outlive_the_change() {
    let app = App::new(config(30), 4).await;
    app.user("ira").await;
    let mut current = PASSWORD.to_owned();
    for round in 0..12u64 {
        let (access, token) = app.login("ira", &current).await;
        let next = format!("a new and long passphrase {round}");
        let change = {
            let (app, access, current, next) =
                (app.clone(), access.clone(), current.clone(), next.clone());
            tokio::spawn(async move { app.password(&access, &current, &next).await })
        };
        tokio::time::sleep(Duration::from_millis(round * 4)).await;
        let (status, doc) = app.refresh(&token).await;
        let (changed, _) = change.await.unwrap();
        assert_eq!(changed, 200, "round {round}");
        current = next;
        if status == 200 {
            let (after, _) = app.refresh(&s(&doc["refresh_token"])).await;
            assert_eq!(
                after, 401,
                "round {round}: a refresh token from before the change lives on"
            );
        }
        assert_eq!(app.refresh(&token).await.0, 401, "round {round}");
    }
}

/// While a deployment rolls out, functions of the previous release send their refresh
/// statement (which joined `sessions` again for the `amr`) to a database whose `auth_refresh`
/// now answers the `amr` itself: it still rotates, and the successor it was given works with
/// this release's /refresh.
#[tokio::test]
async fn the_previous_releases_refresh_statement_still_rotates() {
    let app = App::new(config(1), 2).await;
    app.user("pat").await;
    let (access, first) = app.login("pat", PASSWORD).await;
    let hash = auth_shared::sessions::refresh_token_hash(&first).expect("a refresh token");
    let salt = [7u8; 32];
    let (successor, new_hash) = auth_shared::sessions::successor_of(&first, &salt);
    let c = app.parts.test_db.client().await;
    let row = c
        .query_one(
            "SELECT r.outcome, r.session_id::text, r.successor_salt, coalesce(s.amr, '{pwd}') \
             FROM auth_refresh($1, $2, $3, $4, $5) r \
             LEFT JOIN sessions s ON s.id = r.session_id",
            &[&&hash[..], &&salt[..], &&new_hash[..], &1.0f64, &0.0f64],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "rotated");
    assert_eq!(row.get::<_, String>(1), sid(&access));
    assert_eq!(row.get::<_, &[u8]>(2), &salt[..]);
    assert_eq!(row.get::<_, Vec<String>>(3), vec!["pwd".to_owned()]);
    let (status, doc) = app.refresh(&successor).await;
    assert_eq!(status, 200, "the successor the old statement was given: {doc}");
    assert_eq!(sid(&s(&doc["access_token"])), sid(&access), "the same session");
}
