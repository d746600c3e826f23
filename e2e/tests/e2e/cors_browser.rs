//! CORS in a real browser: headless Chromium loads a page from one origin whose script logs in
//! and reads the profile from `auth-local` on another origin. It works when that origin is
//! allowed (CORS_ALLOWED_ORIGINS) and the browser itself blocks it when it is not.

use std::convert::Infallible;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use testkit::TestDb;
use testkit::local::LocalServer;
use tokio::net::TcpListener;

const PAGE: &str = r#"<!doctype html>
<html><body><script>
const api = new URLSearchParams(location.search).get("api");
async function run() {
  const out = {};
  try {
    const login = await fetch(api + "/login", {
      method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({username: "alice", password: "correct horse battery staple"}),
    });
    out.login_status = login.status;
    out.request_id = login.headers.get("x-request-id");
    const token = (await login.json()).access_token;
    const profile = await fetch(api + "/profile", {headers: {authorization: "Bearer " + token}});
    out.profile_status = profile.status;
    out.username = (await profile.json()).username;
    const bad = await fetch(api + "/profile", {headers: {authorization: "Bearer nope"}});
    out.challenge = bad.headers.get("www-authenticate");
  } catch (e) {
    out.error = String(e);
  }
  await fetch("/result", {method: "POST", body: JSON.stringify(out)});
}
run();
</script></body></html>"#;

/// Serves the page and collects the result it posts back, on its own origin.
async fn origin_server() -> (String, Arc<Mutex<Option<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let result = Arc::new(Mutex::new(None));
    let slot = result.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let slot = slot.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let slot = slot.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let page = if path == "/result" {
                            *slot.lock().unwrap() = serde_json::from_slice(&body).ok();
                            Bytes::from_static(b"ok")
                        } else {
                            Bytes::from_static(PAGE.as_bytes())
                        };
                        let mut resp = hyper::Response::new(Full::new(page));
                        resp.headers_mut().insert("content-type", "text/html".parse().unwrap());
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    (origin, result)
}

fn chromium() -> String {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if std::process::Command::new("which").arg(c).output().is_ok_and(|o| o.status.success()) {
            return c.to_owned();
        }
    }
    panic!(
        "Chromium is not installed: `make tools` installs Debian's chromium (apt-get install chromium)"
    );
}

/// Opens the page in headless Chromium and waits for its result.
async fn browse(origin: &str, api: &str, result: &Arc<Mutex<Option<Value>>>) -> Value {
    let profile_dir = std::env::temp_dir().join(format!(
        "chromium-{}",
        uuid::Uuid::from_bytes(auth_shared::random::bytes()).simple()
    ));
    let mut child = tokio::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile_dir.display()))
        .arg("--remote-debugging-port=0")
        .arg(format!("{origin}/?api={api}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let value = loop {
        if let Some(v) = result.lock().unwrap().take() {
            break v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the page reported nothing within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&profile_dir);
    value
}

async fn service(db: &TestDb, allowed: &str) -> LocalServer {
    LocalServer::start(
        &testkit::binary("auth-local"),
        &[
            ("DATABASE_URL", &db.url),
            ("SECRET_KEY", "cors-browser-test-key-of-more-than-32-bytes"),
            ("PBKDF2_ITERATIONS", "100000"),
            ("CORS_ALLOWED_ORIGINS", allowed),
        ],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn an_allowed_origin_logs_in_and_reads_the_profile() {
    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", "correct horse battery staple").await;
    let (origin, result) = origin_server().await;
    let server = service(&db, &origin).await;
    let r = browse(&origin, &server.base, &result).await;
    assert_eq!(r["login_status"], 200, "{r}");
    assert_eq!(r["profile_status"], 200, "{r}");
    assert_eq!(r["username"], "alice", "{r}");
    assert!(
        r["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "x-request-id is exposed: {r}"
    );
    assert_eq!(
        r["challenge"], r#"Bearer realm="auth", error="invalid_token""#,
        "WWW-Authenticate is exposed: {r}"
    );
    assert!(server.output().contains("route=\"/profile\" status=200"));
}

#[tokio::test]
async fn another_origin_is_blocked_by_the_browser() {
    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", "correct horse battery staple").await;
    let (origin, result) = origin_server().await;
    let server = service(&db, "https://app.example.com").await;
    let r = browse(&origin, &server.base, &result).await;
    assert!(r["error"].as_str().is_some_and(|e| e.contains("Failed to fetch")), "{r}");
    assert!(r.get("login_status").is_none(), "the script never saw a response: {r}");
    // The preflight reached the server and was answered without CORS headers; the login
    // itself was never sent.
    assert!(!server.output().contains("route=\"/login\""), "{}", server.output());
}
