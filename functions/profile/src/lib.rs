//! `GET /profile`: the current user's profile, from the bearer token.
//!
//! The token must verify (TOKEN_SIGNING_ALG only, key chosen by `kid`, issuer, audience, times, claims),
//! its user must still exist, be active, and not have changed their password since the token
//! was issued, and its session must not have ended (`auth_shared::access`).

use auth_shared::access;
use auth_shared::http::{self, ApiError};
use auth_shared::route::Route;
use auth_shared::users::Profile;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

/// What the profile function keeps between invocations: database, keys, token settings.
pub use auth_shared::state::TokenState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/profile", methods: &[Method::GET], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, profile(state, &req)).await
}

async fn profile(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let user = access::authenticate(state, req).await?.user;
    Ok(http::json(StatusCode::OK, &Profile::from(&user)))
}
