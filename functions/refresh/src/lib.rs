//! `POST /refresh`: a refresh token in, a new access token and a new refresh token for the
//! same session out (rotation, RFC 9700 §4.14).
//!
//! The presented token is consumed. Presented again within REFRESH_REUSE_INTERVAL_SECONDS it
//! still works (a retry after a lost response); later it ends the whole session and logs
//! `refresh_token_reused`. Every refusal is the same 401 `invalid_grant`. The session's row
//! lock serialises everything that touches one session (see `auth_shared::sessions`).

use auth_shared::access;
use auth_shared::http::{self, ApiError};
use auth_shared::route::Route;
use auth_shared::sessions::{self, Refresh};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

/// What the refresh function keeps between invocations: database, keys, token and session
/// settings.
pub use auth_shared::state::TokenState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/refresh", methods: &[Method::POST], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, refresh(state, &req)).await
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct RefreshBody {
    #[serde(default, deserialize_with = "http::present_string")]
    refresh_token: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"refresh_token": string}"#;

/// The longest refresh token member accepted before it is simply unknown.
const MAX_TOKEN_CHARS: usize = 1024;

async fn refresh(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: RefreshBody = http::json_body(req, SHAPE)?;
    let token = body
        .refresh_token
        .ok_or_else(|| ApiError::InvalidRequest("The refresh_token member is missing.".into()))?;
    if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
        return Err(ApiError::InvalidRequest(
            "The refresh_token must be 1 to 1024 characters.".into(),
        ));
    }
    let Some(hash) = sessions::refresh_token_hash(&token) else {
        tracing::info!(reason = "malformed", "refresh refused");
        return Err(ApiError::InvalidGrant);
    };
    // A container that could not sign a token answers 503 before it consumes anything (see
    // `keys::KeySet::signing`).
    access::signing_key(&*state.keys.current().await)?;
    let cfg = state.sessions;
    // One statement, its own transaction: the rotation and its locks are all in the
    // database function it calls (see `sessions::refresh`).
    let outcome = state
        .db
        .run(move |c| {
            let token = token.clone();
            Box::pin(async move { sessions::refresh(&*c, &token, &hash, &cfg).await })
        })
        .await?;
    match outcome {
        Refresh::Rotated { user_id, username, grant, times } => {
            tracing::info!(
                event = "token_refreshed",
                user_id = %user_id,
                session_id = %grant.session_id,
                "token_refreshed"
            );
            access::grant_response(state, user_id, &username, &grant, &times).await
        }
        Refresh::Reused { user_id, session_id } => {
            tracing::warn!(
                event = "refresh_token_reused",
                user_id = %user_id,
                session_id = %session_id,
                "refresh_token_reused: a consumed refresh token came back; its session is ended"
            );
            Err(ApiError::InvalidGrant)
        }
        Refresh::Refused(reason) => {
            tracing::info!(reason, "refresh refused");
            Err(ApiError::InvalidGrant)
        }
    }
}
