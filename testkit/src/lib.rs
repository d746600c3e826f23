//! Test support for the auth service: per-test PostgreSQL databases, a Lambda Runtime API
//! emulator that drives the real function binaries, Lambda event builders, moto for Secrets
//! Manager, and an HTTP client for the local server.

pub mod accounts;
pub mod app;
pub mod aws_proxy;
pub mod client;
pub mod events;
pub mod local;
pub mod moto;
pub mod pg;
pub mod relay;
pub mod runtime_api;

pub use pg::TestDb;

use auth_shared::lambda_http::{Body, Request, Response};
use serde_json::Value;

/// A request as a handler receives it.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
    let mut b = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = if body.is_empty() { Body::Empty } else { Body::Text(body.to_owned()) };
    b.body(body).expect("request builds")
}

/// A JSON request (`content-type: application/json`), with `Authorization: Bearer <token>`
/// when `bearer` is given.
pub fn json_request(method: &str, path: &str, bearer: Option<&str>, body: &str) -> Request {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    request(method, path, &headers, body)
}

/// A handler's response taken apart: status, headers, body as JSON (Null when empty).
pub fn read(resp: Response<Body>) -> (u16, http::HeaderMap, Value) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes: &[u8] = match resp.body() {
        Body::Empty => &[],
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into()))
    };
    (status, headers, value)
}

/// The path of a workspace binary built into the same target directory as the running test
/// (`cargo build` builds them before the tests run; see the Makefile).
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target directory");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built; run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// The Python of the repository's `.venv` (made by `make tools`), where the test-time Python
/// tools live.
pub fn venv_python() -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(p.is_file(), "{} is missing: run `make tools` (or `make test`)", p.display());
    p
}

/// A child's stdout and stderr, gathered as they arrive.
pub type Output = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

/// Starts gathering `child`'s stdout and stderr (both must be piped) into one buffer.
pub fn capture_output(child: &mut tokio::process::Child) -> Output {
    use tokio::io::AsyncReadExt;
    let output = Output::default();
    let streams: [Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>; 2] = [
        child.stdout.take().map(|s| Box::new(s) as _),
        child.stderr.take().map(|s| Box::new(s) as _),
    ];
    for mut stream in streams.into_iter().flatten() {
        let output = output.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                output.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(&buf[..n]);
            }
        });
    }
    output
}

/// Everything gathered so far, as text.
pub fn output_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// A TCP listener that accepts connections and never answers, as a database behind a dead
/// network would; returns its port and the task holding it (abort it when done).
pub async fn silent_listener() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local address").port();
    let task = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    (port, task)
}
