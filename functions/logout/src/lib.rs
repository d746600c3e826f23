//! `POST /logout`: ends sessions (docs/sessions.md).
//!
//! - With `Authorization: Bearer <access token>`: ends that token's session, or with body
//!   `{"scope": "others"}` every other session of the user, or with `{"scope": "global"}` all of
//!   them (default `local`). 204. A refused access token is 401 `invalid_token`.
//! - Without Authorization, with body `{"refresh_token": "..."}`: ends that token's session.
//!   204 whether or not the token was valid (RFC 7009 §2.2: no oracle). With neither, 401
//!   `invalid_token` with the bare challenge, as any route that needs a token answers.
//!
//! Ending a session takes its row lock, so a refresh racing a logout either commits first (and
//! its new tokens die with the session) or sees the session ended (see `auth_shared::sessions`).

use auth_shared::access;
use auth_shared::http::{self, ApiError};
use auth_shared::route::Route;
use auth_shared::sessions::{self, Scope};
use lambda_http::http::{Method, header};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

/// What the logout function keeps between invocations: database, keys, token and session
/// settings.
pub use auth_shared::state::TokenState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/logout", methods: &[Method::POST], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, logout(state, &req)).await
}

/// The body; unknown members are ignored.
#[derive(Deserialize, Default)]
struct LogoutBody {
    #[serde(default, deserialize_with = "http::present_string")]
    scope: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    refresh_token: Option<String>,
}

/// The longest refresh token member accepted (as /refresh).
const MAX_TOKEN_CHARS: usize = 1024;

const SHAPE: &str =
    r#"a JSON object {"scope": "local"|"others"|"global"} or {"refresh_token": string}"#;

/// The body when there is one: it is optional (no body, or an empty one, means scope `local`
/// with a Bearer token, and no credential at all without one).
fn body(req: &Request) -> Result<LogoutBody, ApiError> {
    if http::body_bytes(req).iter().all(u8::is_ascii_whitespace) {
        return Ok(LogoutBody::default());
    }
    http::json_body(req, SHAPE)
}

fn scope(name: Option<&str>) -> Result<Scope, ApiError> {
    match name {
        None | Some("local") => Ok(Scope::Local),
        Some("others") => Ok(Scope::Others),
        Some("global") => Ok(Scope::Global),
        Some(_) => Err(ApiError::InvalidRequest(
            "The scope must be \"local\", \"others\" or \"global\".".into(),
        )),
    }
}

async fn logout(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    if req.headers().contains_key(header::AUTHORIZATION) {
        // With a Bearer token, a refresh_token member is ignored: the access token names the
        // session.
        let body = body(req)?;
        let scope = scope(body.scope.as_deref())?;
        let access = access::authenticate(state, req).await?;
        let (user_id, sid) = (access.user.id, access.session);
        let ended = state
            .db
            .run(move |c| {
                Box::pin(async move { sessions::end(c, user_id, sid, scope, "logout").await })
            })
            .await?;
        tracing::info!(
            event = "logged_out",
            user_id = %user_id,
            session_id = ?sid,
            scope = scope.as_str(),
            ended,
            "logged_out"
        );
        return Ok(http::no_content());
    }
    let body = body(req)?;
    // A refresh token ends its own session: a (valid) scope beside it changes nothing.
    scope(body.scope.as_deref())?;
    // Neither credential: the challenge, as for any route that needs a token.
    let Some(token) = body.refresh_token else {
        return Err(ApiError::InvalidToken { presented: false });
    };
    if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
        return Err(ApiError::InvalidRequest(
            "The refresh_token must be 1 to 1024 characters.".into(),
        ));
    }
    // Whatever the token is, the answer is 204 (RFC 7009 §2.2).
    if let Some(hash) = sessions::refresh_token_hash(&token) {
        let ended = state
            .db
            .run(move |c| Box::pin(async move { sessions::end_by_refresh_token(c, &hash).await }))
            .await?;
        if let Some((user_id, session_id)) = ended {
            tracing::info!(
                event = "logged_out",
                user_id = %user_id,
                session_id = %session_id,
                scope = "local",
                "logged_out"
            );
        }
    }
    Ok(http::no_content())
}
