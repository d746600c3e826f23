//! `GET /test-db`: a manual connection test that returns the database's own clock
//! (`SELECT now()`) and the round-trip time; 503 `service_unavailable` when the database
//! cannot be reached.

use std::time::Instant;

use auth_shared::http::{self, ApiError};
use auth_shared::route::Route;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use time::OffsetDateTime;

/// What the function keeps between invocations: the database pool only.
pub use auth_shared::state::DbState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/test-db", methods: &[Method::GET], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, test(state)).await
}

async fn test(state: &State) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    let now: OffsetDateTime = state
        .db
        .run(|c| Box::pin(async move { c.query_typed_one("SELECT now()", &[]).await?.try_get(0) }))
        .await?;
    let latency_ms = http::millis(started.elapsed());
    Ok(http::json(StatusCode::OK, &TestDb { status: "ok", timestamp: now, latency_ms }))
}

/// The 200 body.
#[derive(Serialize)]
struct TestDb {
    status: &'static str,
    /// The database's `now()`.
    #[serde(with = "time::serde::rfc3339")]
    timestamp: OffsetDateTime,
    latency_ms: f64,
}
