//! A Lambda Runtime API emulator, and the function process that talks to it.
//!
//! The real function binary is started with AWS_LAMBDA_RUNTIME_API pointing here, exactly as
//! Lambda (or `sam local invoke`) starts `bootstrap`: it long-polls `invocation/next`, gets the
//! event, and posts to `invocation/{id}/response` or `/error`. `init/error` is recorded too.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Notify, oneshot};

/// What the function answered to one invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Posted to `/response`.
    Response(Value),
    /// Posted to `/error`, with the `Lambda-Runtime-Function-Error-Type` header and body.
    Error {
        /// The error type header, if any.
        error_type: Option<String>,
        /// The error document.
        body: Value,
    },
}

impl Outcome {
    /// The response, or a panic naming the error.
    pub fn response(self) -> Value {
        match self {
            Self::Response(v) => v,
            Self::Error { body, .. } => panic!("the function answered with an error: {body}"),
        }
    }
}

struct Pending {
    id: String,
    event: Value,
    deadline_ms: u128,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<Pending>>,
    ready: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<Value>>,
    polls: Mutex<u64>,
    first_poll: Mutex<Option<Instant>>,
}

/// The emulator: an HTTP server on 127.0.0.1.
#[derive(Clone)]
pub struct RuntimeApi {
    addr: String,
    inner: Arc<Inner>,
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn serve(
    inner: Arc<Inner>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let parse = |b: &Bytes| {
        serde_json::from_slice(b).unwrap_or(Value::String(String::from_utf8_lossy(b).into()))
    };
    let rest = path.strip_prefix("/2018-06-01/runtime/").unwrap_or("");
    if method == hyper::Method::GET && rest == "invocation/next" {
        *inner.polls.lock().unwrap() += 1;
        inner.first_poll.lock().unwrap().get_or_insert_with(Instant::now);
        let next = loop {
            let notified = inner.ready.notified();
            if let Some(p) = inner.queue.lock().unwrap().pop_front() {
                break p;
            }
            notified.await;
        };
        let mut r = reply(StatusCode::OK, serde_json::to_vec(&next.event).unwrap_or_default());
        let h = r.headers_mut();
        h.insert("lambda-runtime-aws-request-id", next.id.parse().unwrap());
        h.insert("lambda-runtime-deadline-ms", next.deadline_ms.to_string().parse().unwrap());
        h.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:test".parse().unwrap(),
        );
        h.insert(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Sampled=0".parse().unwrap(),
        );
        h.insert("content-type", "application/json".parse().unwrap());
        return Ok(r);
    }
    if method == hyper::Method::POST && rest == "init/error" {
        *inner.init_error.lock().unwrap() = Some(parse(&body));
        return Ok(reply(StatusCode::ACCEPTED, "{}"));
    }
    if method == hyper::Method::POST
        && let Some(tail) = rest.strip_prefix("invocation/")
        && let Some((id, kind)) = tail.split_once('/')
    {
        let outcome = match kind {
            "response" => Outcome::Response(parse(&body)),
            "error" => Outcome::Error {
                error_type: headers
                    .get("lambda-runtime-function-error-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                body: parse(&body),
            },
            _ => return Ok(reply(StatusCode::NOT_FOUND, "{}")),
        };
        return Ok(match inner.waiting.lock().unwrap().remove(id) {
            Some(tx) => {
                let _ = tx.send(outcome);
                reply(StatusCode::ACCEPTED, "{}")
            }
            None => reply(StatusCode::BAD_REQUEST, r#"{"errorType":"InvalidRequestID"}"#),
        });
    }
    Ok(reply(StatusCode::NOT_FOUND, "{}"))
}

impl RuntimeApi {
    /// Starts the emulator on a free port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the runtime API");
        let addr = listener.local_addr().expect("local address").to_string();
        let inner = Arc::new(Inner::default());
        let server_inner = inner.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let inner = server_inner.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| serve(inner.clone(), req));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Self { addr, inner }
    }

    /// `host:port`, the value of AWS_LAMBDA_RUNTIME_API.
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// What the function posted to `init/error`, if anything.
    pub fn init_error(&self) -> Option<Value> {
        self.inner.init_error.lock().unwrap().clone()
    }

    /// When the function first asked for an invocation: the end of its init phase.
    pub fn first_poll(&self) -> Option<Instant> {
        *self.inner.first_poll.lock().unwrap()
    }

    /// How many times the function has asked for the next invocation.
    pub fn polls(&self) -> u64 {
        *self.inner.polls.lock().unwrap()
    }

    /// Queues `event` and waits up to `timeout` for the function's answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Option<Outcome> {
        let id = uuid::Uuid::from_bytes(auth_shared::random::bytes()).to_string();
        let (tx, rx) = oneshot::channel();
        self.inner.waiting.lock().unwrap().insert(id.clone(), tx);
        let deadline_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
                + timeout.as_millis();
        self.inner.queue.lock().unwrap().push_back(Pending { id: id.clone(), event, deadline_ms });
        self.inner.ready.notify_one();
        let result = tokio::time::timeout(timeout, rx).await.ok().and_then(Result::ok);
        self.inner.waiting.lock().unwrap().remove(&id);
        result
    }
}

/// A function binary running against its own emulator, with its output captured.
pub struct Function {
    /// The emulator it polls.
    pub api: RuntimeApi,
    name: String,
    child: Child,
    output: crate::Output,
}

/// The variables Lambda sets for every function.
pub fn lambda_env(name: &str, api: &RuntimeApi) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.address()),
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A function binary and how to start it: directly (the x86-64 builds the tests run), or
/// under qemu-user (the arm64 bootstraps `sam build` makes for Graviton).
#[derive(Debug, Clone)]
pub struct Program {
    /// The function's name (AWS_LAMBDA_FUNCTION_NAME), for messages too.
    pub name: String,
    /// The command line: the binary itself, or the emulator and its arguments before it.
    pub command: Vec<std::ffi::OsString>,
}

/// The qemu-user binary that runs arm64 programs here (`make tools` installs it).
pub const QEMU_AARCH64: &str = "qemu-aarch64-static";
/// Where Debian's libc6-arm64-cross puts the arm64 C library (`make tools` installs it).
pub const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

impl Program {
    /// `binary`, run directly; named after its file.
    pub fn native(binary: &Path) -> Self {
        let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("function");
        Self { name: name.to_owned(), command: vec![binary.into()] }
    }

    /// An arm64 `binary` (a `bootstrap`), run under qemu-user with `cpu` (`max` has the ARMv8
    /// SHA-2 instructions and everything else qemu emulates) and the arm64 C library.
    pub fn arm64(name: &str, binary: &Path, cpu: &str) -> Self {
        assert!(
            Path::new(ARM64_SYSROOT).join("lib/ld-linux-aarch64.so.1").is_file(),
            "{ARM64_SYSROOT} lacks the arm64 C library: run `make tools` \
             (apt-get install qemu-user-static libc6-arm64-cross)"
        );
        let command = [QEMU_AARCH64, "-cpu", cpu, "-L", ARM64_SYSROOT]
            .into_iter()
            .map(std::ffi::OsString::from)
            .chain([binary.as_os_str().to_owned()])
            .collect();
        Self { name: name.to_owned(), command }
    }
}

impl Function {
    /// Starts `binary` with a clean environment: Lambda's variables plus `env`.
    pub async fn start(binary: &Path, env: &[(&str, &str)]) -> Self {
        Self::launch(&Program::native(binary), env).await
    }

    /// Starts `program` with a clean environment: Lambda's variables plus `env`.
    pub async fn launch(program: &Program, env: &[(&str, &str)]) -> Self {
        let api = RuntimeApi::start().await;
        let (first, args) = program.command.split_first().expect("a command line");
        let mut cmd = Command::new(first);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(lambda_env(&program.name, &api))
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {program:?}: {e}"));
        let output = crate::capture_output(&mut child);
        Self { api, name: program.name.clone(), child, output }
    }

    /// Sends one event and waits (up to 30 s) for the answer.
    pub async fn invoke(&self, event: Value) -> Outcome {
        match self.api.invoke(event, Duration::from_secs(30)).await {
            Some(outcome) => outcome,
            None => {
                panic!("{} did not answer within 30 s; its output:\n{}", self.name, self.output())
            }
        }
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        crate::output_text(&self.output)
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code.
    pub async fn exit_code(&mut self, timeout: Duration) -> Option<i32> {
        let status = tokio::time::timeout(timeout, self.child.wait()).await.ok()?.ok()?;
        // Let the readers drain what the process wrote last.
        let drained = Instant::now();
        while drained.elapsed() < Duration::from_millis(200) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        status.code()
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the process.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// Starts `binary` with `env` and checks how its start-up ends. With `want` empty the
/// configuration is good: the process is still running after 5 s. Otherwise it exits with code
/// 1 within 5 s, having written exactly one non-empty line: an ERROR `start-up failed` line that
/// contains `want`, with no panic, and none of `secrets` anywhere in what it wrote. Panics
/// (failing the test) with the process's output when it does not.
pub async fn assert_start_up(binary: &Path, env: &[(&str, &str)], want: &str, secrets: &[&str]) {
    let mut f = Function::start(binary, env).await;
    // Good configurations keep running; bad ones exit well within this.
    let code = f.exit_code(Duration::from_secs(5)).await;
    let out = f.output();
    if want.is_empty() {
        assert_eq!(code, None, "{env:?} should start: {out}");
        return;
    }
    assert_eq!(code, Some(1), "{env:?}: {out}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{env:?}: one line, got:\n{out}");
    assert!(lines[0].contains(want), "{env:?}: wanted {want:?} in {out}");
    assert!(lines[0].contains("ERROR") && lines[0].contains("start-up failed"), "{out}");
    assert!(!out.contains("panicked") && !out.contains("RUST_BACKTRACE"), "{out}");
    for secret in secrets {
        assert!(!out.contains(secret), "a secret leaked into the start-up line: {out}");
    }
}
