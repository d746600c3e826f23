//! `GET /health` (and `HEAD /health`): the load-balancer check. One `SELECT 1` round trip
//! within HEALTH_DB_TIMEOUT_MS; 200 when it answers, 503 (`timeout` or `unreachable`) when it
//! does not, always within the deadline. Needs no signing key. Serves API Gateway and ALB
//! health-check events alike.

use std::time::Instant;

use auth_shared::db::DbError;
use auth_shared::http::{self, ApiError};
use auth_shared::route::Route;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// What the function keeps between invocations: the database pool only.
pub use auth_shared::state::DbState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> = Route {
    path: "/health",
    methods: &[Method::GET, Method::HEAD],
    handle: |s, r| Box::pin(handle(s, r)),
};

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, check(state)).await
}

/// The body, 200 and 503 alike.
#[derive(Serialize)]
struct Health {
    status: &'static str,
    checks: Checks,
}

#[derive(Serialize)]
struct Checks {
    database: DatabaseCheck,
}

/// `{"status":"ok","latency_ms":0.8}` or `{"status":"error","error":"timeout"}`.
#[derive(Serialize)]
struct DatabaseCheck {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

async fn check(state: &State) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    let ping =
        state.db.run(|c| Box::pin(async move { c.simple_query("SELECT 1").await.map(drop) }));
    let outcome = tokio::time::timeout(state.db.config().health_timeout, ping).await;
    let failed = |error| DatabaseCheck { status: "error", latency_ms: None, error: Some(error) };
    let (status, database) = match outcome {
        Ok(Ok(())) => {
            let latency_ms = Some(http::millis(started.elapsed()));
            (StatusCode::OK, DatabaseCheck { status: "ok", latency_ms, error: None })
        }
        Err(_) | Ok(Err(DbError::Timeout)) => {
            tracing::warn!("health check: database timed out");
            (StatusCode::SERVICE_UNAVAILABLE, failed("timeout"))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, failed("unreachable"))
        }
    };
    let overall = if status == StatusCode::OK { "ok" } else { "error" };
    Ok(http::json(status, &Health { status: overall, checks: Checks { database } }))
}
