//! `GET /mfa`: the signed-in user's second factors, from the bearer token:
//! `{"totp":{"enabled":bool,"pending":bool,"confirmed_at":RFC 3339|null},
//! "recovery_codes_remaining":n,"passkeys":n}`. Never a secret or a code.

use auth_shared::access;
use auth_shared::http::{self, ApiError};
use auth_shared::mfa::store;
use auth_shared::route::Route;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// What the function keeps between invocations: database, keys, token settings.
pub use auth_shared::state::TokenState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/mfa", methods: &[Method::GET], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, status(state, &req)).await
}

/// The answer.
#[derive(Serialize)]
struct Factors {
    totp: Totp,
    recovery_codes_remaining: i64,
    passkeys: i64,
}

#[derive(Serialize)]
struct Totp {
    enabled: bool,
    pending: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    confirmed_at: Option<time::OffsetDateTime>,
}

async fn status(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let user = access::authenticate(state, req).await?.user.id;
    let s = state.db.run(move |c| Box::pin(async move { store::status(c, user).await })).await?;
    Ok(http::json(
        StatusCode::OK,
        &Factors {
            totp: Totp { enabled: s.enabled, pending: s.pending, confirmed_at: s.confirmed_at },
            recovery_codes_remaining: s.recovery_codes_remaining,
            passkeys: s.passkeys,
        },
    ))
}
