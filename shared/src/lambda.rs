//! The glue every function's `main` is made of: logging, state built once per container, the
//! Lambda runtime loop, and start-up errors reported as one log line and a non-zero exit.

use std::future::Future;
use std::process::ExitCode;

use lambda_http::{Body, Request, Response, service_fn};

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
    let service = service_fn(move |req: Request| {
        let response = handler(state, req);
        async move { Ok::<_, lambda_http::Error>(response.await) }
    });
    match lambda_http::run(service).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
