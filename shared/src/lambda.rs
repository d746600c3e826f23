//! The glue every function's `main` is made of: logging, state built once per container, the
//! Lambda runtime loop, and start-up errors reported as one log line and a non-zero exit.
//!
//! Each invocation's event is read as plain JSON, repaired where lambda_http could not convert
//! it ([`crate::event::sanitize`]), then converted and handed to the handler; the response goes
//! back in the form its origin (API Gateway, Function URL, ALB) expects. No event can end the
//! process: one that is not an HTTP event at all, or that still fails to convert, becomes a
//! Runtime API invocation error and one log line, and the next event is served as usual.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;

use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request, RequestExt, Response, TransformResponse};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::event::{self, MalformedBody};

/// Anything that stops a function at start-up (bad configuration, unreadable secret).
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

/// Variables the Lambda runtime interface needs; without them the runtime crate would panic.
const RUNTIME_VARS: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// Builds the state with `init`, then serves invocations with `handler` until the runtime
/// stops. Returns a failing exit code, after one error log line, if start-up fails.
pub async fn run<S, I, H, F>(init: I, handler: H) -> ExitCode
where
    S: Send + Sync + 'static,
    I: Future<Output = Result<S, StartupError>>,
    H: Fn(&'static S, Request) -> F + Copy + Send + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    crate::telemetry::init();
    // A panic anywhere is one log line (the runtime turns it into an invocation error and
    // carries on), not a multi-line trace on stderr.
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(at, "panic: {}", panic_message(info.payload()));
    }));
    for var in RUNTIME_VARS {
        if std::env::var_os(var).is_none() {
            tracing::error!(
                "start-up failed: {var} is not set; this binary runs inside AWS Lambda (or sam local / cargo lambda watch); run auth-local for a local server"
            );
            return ExitCode::FAILURE;
        }
    }
    let state: &'static S = match init.await {
        Ok(state) => Box::leak(Box::new(state)),
        Err(e) => {
            tracing::error!("start-up failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let service = service_fn(move |event: LambdaEvent<Value>| invoke(state, handler, event));
    match lambda_runtime::run(service).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Why an invocation got no HTTP response. The runtime logs it (one line, in this `Debug`
/// form, which is the message) and reports it to the Runtime API.
#[derive(thiserror::Error)]
enum InvokeError {
    /// Not an event of API Gateway, a Function URL or an ALB.
    #[error("not an HTTP event: {0}")]
    NotHttp(serde_json::Error),
    /// lambda_http could not convert it even after repair.
    #[error("the HTTP event could not be converted into a request")]
    Unconvertible,
}

impl std::fmt::Debug for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl From<InvokeError> for lambda_runtime::Diagnostic {
    fn from(e: InvokeError) -> Self {
        let error_type = match e {
            InvokeError::NotHttp(_) => "NotAnHttpEvent",
            InvokeError::Unconvertible => "UnconvertibleHttpEvent",
        };
        Self { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// One invocation: repair, convert, handle, and answer in the origin's response format.
async fn invoke<S, H, F>(
    state: &'static S,
    handler: H,
    event: LambdaEvent<Value>,
) -> Result<impl serde::Serialize, InvokeError>
where
    S: Send + Sync + 'static,
    H: Fn(&'static S, Request) -> F,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let LambdaEvent { mut payload, context } = event;
    let request_id = context.request_id.clone();
    let repairs = event::sanitize(&mut payload);
    // lambda_http's reader takes the event as text (it tries each event shape in turn).
    let lambda_request: LambdaRequest =
        serde_json::from_str(&payload.to_string()).map_err(InvokeError::NotHttp)?;
    if !repairs.fixed.is_empty() {
        tracing::warn!(%request_id, repaired = ?repairs.fixed, "event repaired: parts lambda_http cannot convert were encoded or dropped");
    }
    let origin = lambda_request.request_origin();
    // After repair the conversion should not panic; should a case remain that does, it costs
    // this invocation, not the process (release builds unwind).
    let converted = std::panic::catch_unwind(AssertUnwindSafe(|| Request::from(lambda_request)));
    let Ok(mut req) = converted else { return Err(InvokeError::Unconvertible) };
    if let Some(trace) = context.xray_trace_id.as_deref().and_then(|t| t.parse().ok()) {
        req.headers_mut().insert("x-amzn-trace-id", trace);
    }
    if repairs.bad_body {
        req.extensions_mut().insert(MalformedBody);
    }
    let response = handler(state, req.with_lambda_context(context)).await;
    let transform: TransformResponse<'_, Response<Body>, Infallible> =
        TransformResponse::Request(origin, Box::pin(async move { Ok(response) }));
    match transform.await {
        Ok(r) => Ok(r),
    }
}
