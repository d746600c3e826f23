//! `POST /login`: username or email plus password in, a signed access token out.
//!
//! The steps, and why they are in this order:
//! 1. parse and check the body (415, 413, 400) before touching the database;
//! 2. look the account up and count the attempt in advance against the throttle, in one
//!    connection checkout; a locked key gets 429 without its password being checked;
//! 3. verify the password on a blocking thread (one current-policy hash whether or not the
//!    account exists, so neither the answer nor its timing tells them apart);
//! 4. on success, in one statement: `last_login_at`, the hash upgrade if due, the throttle
//!    reset, all only if the hash is still the one verified; then sign the token.

use std::sync::Arc;

use auth_shared::config::{DbConfig, Env, KeySource, TokenConfig, pbkdf2_iterations};
use auth_shared::db::Db;
use auth_shared::http::{self, ApiError};
use auth_shared::keys::Keys;
use auth_shared::lambda::StartupError;
use auth_shared::password::{self, MAX_PASSWORD_CHARS, Policy, Verdict};
use auth_shared::throttle::{self, Gate};
use auth_shared::users::{self, LoginRecord, User};
use auth_shared::token;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Deserializer};
use serde_json::json;

/// Longest identifier, in Unicode scalar values (the longest email address).
pub const MAX_IDENTIFIER_CHARS: usize = 320;

/// What the login function keeps between invocations.
pub struct State {
    db: Arc<Db>,
    keys: Arc<Keys>,
    tokens: TokenConfig,
    policy: Policy,
}

impl State {
    /// Builds the state from the environment: database, signing key (read now from Secrets
    /// Manager when SECRET_ARN is set), token settings and hashing policy.
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let db_cfg = DbConfig::from_env(env, 1)?;
        let tokens = TokenConfig::from_env(env)?;
        let policy = Policy { iterations: pbkdf2_iterations(env)? };
        let keys = Keys::load(&KeySource::require_from_env(env)?).await?;
        let db = Db::connect(db_cfg).await?;
        Ok(Self::new(Arc::new(db), Arc::new(keys), tokens, policy))
    }

    /// Builds the state from existing parts (local server, tests).
    pub fn new(db: Arc<Db>, keys: Arc<Keys>, tokens: TokenConfig, policy: Policy) -> Self {
        Self { db, keys, tokens, policy }
    }
}

/// The route this function serves.
pub const ROUTE: &str = "/login";
/// The methods it accepts.
pub const METHODS: &[Method] = &[Method::POST];

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE, &req, METHODS, login(state, &req)).await
}

/// A string member that must be a string when present (null is a wrong type, not absence).
fn present_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct LoginBody {
    #[serde(default, deserialize_with = "present_string")]
    username: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    password: Option<String>,
}

const SHAPE: &str =
    r#"a JSON object {"username" or "email": string, "password": string}"#;

/// Checks the body's shape and lengths; returns (identifier, password).
fn credentials(body: LoginBody) -> Result<(String, String), ApiError> {
    let invalid = |why: &str| ApiError::InvalidRequest(why.to_owned());
    let identifier = match (body.username, body.email) {
        (Some(i), None) | (None, Some(i)) => i,
        (Some(_), Some(_)) => return Err(invalid("Give exactly one of username or email, not both.")),
        (None, None) => return Err(invalid("Give exactly one of username or email.")),
    };
    let password = body.password.ok_or_else(|| invalid("The password member is missing."))?;
    let n = identifier.chars().count();
    if n == 0 || n > MAX_IDENTIFIER_CHARS {
        return Err(invalid("The username or email must be 1 to 320 characters."));
    }
    if identifier.contains('\0') {
        return Err(invalid("The username or email must not contain NUL characters."));
    }
    let n = password.chars().count();
    if n == 0 || n > MAX_PASSWORD_CHARS {
        return Err(invalid("The password must be 1 to 1024 characters."));
    }
    Ok((identifier, password))
}

async fn login(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let (identifier, password) = credentials(http::json_body(req, SHAPE)?)?;

    let lookup_id = identifier.clone();
    let (user, gate) = state
        .db
        .run(move |c| {
            let identifier = lookup_id.clone();
            Box::pin(async move {
                let user = users::find_by_identifier(c, &identifier).await?;
                let gate = throttle::begin_attempt(c, user.as_ref().map(|u| u.id), &identifier).await?;
                Ok((user, gate))
            })
        })
        .await?;
    let user_id = user.as_ref().map(|u| u.id.to_string());

    let failures = match gate {
        Gate::Locked { key, retry_after } => {
            tracing::warn!(event = "login_throttled", user_id, throttle_key = %key, retry_after, "login_throttled");
            return Err(ApiError::TooManyAttempts { retry_after });
        }
        Gate::Open { failures, key } => (failures, key),
    };

    let policy = state.policy;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let (verdict, upgraded) = tokio::task::spawn_blocking(move || {
        let verdict = match &stored {
            Some(hash) => password::verify(&password, hash, policy),
            None => password::verify_dummy(&password, policy),
        };
        let upgraded = match verdict {
            Verdict::Match { needs_upgrade: true } => Some(password::hash(&password, policy)),
            _ => None,
        };
        (verdict, upgraded)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("password check did not complete: {e}")))?;

    let succeeded = match (&user, verdict) {
        (Some(u), Verdict::Match { .. }) if u.is_active() => record(state, u, upgraded).await?,
        _ => None,
    };
    match (user, succeeded) {
        (Some(u), Some(record)) => issue(state, &u, record).await,
        (user, _) => {
            let (failures, key) = failures;
            let reason = match (&user, verdict) {
                (None, _) => "unknown_identifier",
                (Some(u), Verdict::Match { .. }) if !u.is_active() => "disabled",
                (Some(_), Verdict::Match { .. }) => "changed_concurrently",
                (Some(_), Verdict::Mismatch) => "wrong_password",
            };
            tracing::warn!(
                event = "login_failed",
                user_id,
                throttle_key = %key,
                reason,
                failures,
                locked_for_s = throttle::lock_seconds(failures),
                "login_failed"
            );
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// Records the success; `None` if the account changed since it was read.
async fn record(
    state: &State,
    u: &User,
    upgraded: Option<String>,
) -> Result<Option<LoginRecord>, ApiError> {
    let (id, verified) = (u.id, u.password_hash.clone());
    Ok(state
        .db
        .run(move |c| {
            let (verified, upgraded) = (verified.clone(), upgraded.clone());
            Box::pin(async move { users::record_login(c, id, &verified, upgraded.as_deref()).await })
        })
        .await?)
}

async fn issue(state: &State, u: &User, record: LoginRecord) -> Result<Response<Body>, ApiError> {
    // `iat` comes from the database's clock, the clock password_changed_at was set by. Tokens
    // issued in or before the second of the last password change are refused (a whole-second
    // `iat` cannot tell the two halves of that second apart), so a login in that same second
    // waits for the next one rather than issue a token that would not work, or one dated in
    // the future that strict verifiers refuse.
    let mut iat = record.now.unix_timestamp();
    if let Some(valid_from) = record.tokens_valid_from()
        && iat < valid_from
    {
        let wait = (time::OffsetDateTime::from_unix_timestamp(valid_from).unwrap_or(record.now) - record.now)
            .clamp(time::Duration::ZERO, time::Duration::seconds(3));
        tokio::time::sleep(wait.unsigned_abs()).await;
        iat = valid_from;
    }
    let keys = state.keys.current().await;
    let access_token = token::issue(&state.tokens, &keys.current, u.id, &u.username, iat)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::info!(event = "login_succeeded", user_id = %u.id, kid = %keys.current.kid, "login_succeeded");
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": state.tokens.ttl_seconds,
        }),
    ))
}
