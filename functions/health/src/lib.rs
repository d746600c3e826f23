//! `GET /health` (and `HEAD /health`): the load-balancer check. One `SELECT 1` round trip
//! within HEALTH_DB_TIMEOUT_MS; 200 when it answers, 503 (`timeout` or `unreachable`) when it
//! does not, always within the deadline. Needs no signing key. Serves API Gateway and ALB
//! health-check events alike.

use std::sync::Arc;
use std::time::Instant;

use auth_shared::config::{DbConfig, Env};
use auth_shared::db::{Db, DbError};
use auth_shared::http::{self, ApiError};
use auth_shared::lambda::StartupError;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

/// What the health function keeps between invocations.
pub struct State {
    db: Arc<Db>,
}

impl State {
    /// Builds the state from the environment (database settings only).
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let db = Arc::new(Db::connect(DbConfig::from_env(env, 1)?).await?);
        db.warm_up();
        Ok(Self::new(db))
    }

    /// Builds the state around an existing pool (local server, tests).
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// The route this function serves.
pub const ROUTE: &str = "/health";
/// The methods it accepts.
pub const METHODS: &[Method] = &[Method::GET, Method::HEAD];

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE, &req, METHODS, check(state)).await
}

async fn check(state: &State) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    let ping = state.db.run(|c| Box::pin(async move { c.simple_query("SELECT 1").await.map(drop) }));
    let outcome = tokio::time::timeout(state.db.config().health_timeout, ping).await;
    let (status, database) = match outcome {
        Ok(Ok(())) => {
            let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
            (StatusCode::OK, json!({ "status": "ok", "latency_ms": latency_ms }))
        }
        Err(_) | Ok(Err(DbError::Timeout)) => {
            tracing::warn!("health check: database timed out");
            (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "error", "error": "timeout" }))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "error", "error": "unreachable" }))
        }
    };
    let overall = if status == StatusCode::OK { "ok" } else { "error" };
    Ok(http::json(status, &json!({ "status": overall, "checks": { "database": database } })))
}
