//! `GET /profile`: the current user's profile, from the bearer token.
//!
//! The token must verify (HS256 only, key chosen by `kid`, issuer, audience, times, claims),
//! and its user must still exist, be active, and not have changed their password since the
//! token was issued.

use std::sync::Arc;

use auth_shared::config::{DbConfig, Env, KeySource, TokenConfig};
use auth_shared::db::Db;
use auth_shared::http::{self, ApiError};
use auth_shared::keys::Keys;
use auth_shared::lambda::StartupError;
use auth_shared::route::Route;
use auth_shared::token::{self, TokenError};
use auth_shared::users;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// What the profile function keeps between invocations.
pub struct State {
    db: Arc<Db>,
    keys: Arc<Keys>,
    tokens: TokenConfig,
}

impl State {
    /// Builds the state from the environment: database, verification keys, token settings.
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let db_cfg = DbConfig::from_env(env, 1)?;
        let tokens = TokenConfig::from_env(env)?;
        let source = KeySource::require_from_env(env)?;
        let db = Arc::new(Db::connect(db_cfg).await?);
        // The first connection opens while the key is read.
        db.warm_up();
        let keys = Keys::load(&source).await?;
        Ok(Self::new(db, Arc::new(keys), tokens))
    }

    /// Builds the state from existing parts (local server, tests).
    pub fn new(db: Arc<Db>, keys: Arc<Keys>, tokens: TokenConfig) -> Self {
        Self { db, keys, tokens }
    }
}

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/profile", methods: &[Method::GET], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, profile(state, &req)).await
}

fn refused(reason: TokenError) -> ApiError {
    tracing::info!(%reason, "token refused");
    ApiError::InvalidToken { presented: true }
}

fn rfc3339(t: OffsetDateTime) -> Result<String, ApiError> {
    t.format(&Rfc3339).map_err(|e| ApiError::Internal(e.to_string()))
}

async fn profile(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let token = http::bearer_token(req)?;
    let kid = token::key_id(token).map_err(refused)?;
    let key = state.keys.for_kid(&kid).await.ok_or_else(|| refused(TokenError::UnknownKey))?;
    let claims = token::verify(&state.tokens, &key, token, token::now()).map_err(refused)?;
    let id = Uuid::parse_str(&claims.sub).map_err(|_| refused(TokenError::Claims))?;
    let user =
        state.db.run(move |c| Box::pin(async move { users::find_by_id(c, id).await })).await?;
    let Some(user) = user else {
        return Err(refused(TokenError::Claims));
    };
    if !user.is_active() {
        tracing::info!(user_id = %user.id, "token refused: account disabled");
        return Err(ApiError::InvalidToken { presented: true });
    }
    if user.tokens_valid_from().is_some_and(|from| claims.iat < from) {
        tracing::info!(user_id = %user.id, "token refused: issued before the last password change");
        return Err(ApiError::InvalidToken { presented: true });
    }
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "id": user.id.to_string(),
            "username": user.username,
            "email": user.email,
            "full_name": user.full_name,
            "created_at": rfc3339(user.created_at)?,
            "last_login_at": user.last_login_at.map(rfc3339).transpose()?,
        }),
    ))
}
