//! `POST /mfa/totp`: enrols a TOTP factor (RFC 6238) for the signed-in user.
//!
//! Bearer access token plus `{"password"}`: a first factor needs the current password,
//! checked and throttled as at `/password`, so a stolen access token alone cannot add a factor
//! and lock the owner out. Once a factor is active, a new one (a new phone) needs a token whose
//! `amr` holds `mfa` instead. Under MFA_POLICY=required an account without a factor can enrol
//! with the `mfa_token` its login was answered with (`{"mfa_token"}`, no Bearer, no password).
//!
//! 200 `{"secret":"<base32>","otpauth_uri":"otpauth://totp/..."}`: a pending factor, replacing
//! an earlier pending one; login is unchanged until `/mfa/totp/verify` confirms it. The secret
//! is sealed under the data key before it is stored and appears in no other response or log.

use auth_shared::access::{self, Confirmed};
use auth_shared::http::{self, ApiError};
use auth_shared::mfa::{sealed, store, totp};
use auth_shared::route::Route;
use auth_shared::throttle;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the function keeps between invocations: database, keys, token settings, hashing, the
/// data key and APP_NAME.
pub use auth_shared::state::MfaState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/mfa/totp", methods: &[Method::POST], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, enrol(state, &req)).await
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct EnrolBody {
    #[serde(default, deserialize_with = "http::present_string")]
    password: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    mfa_token: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"password": string} (or {"mfa_token": string})"#;

/// The answer: the secret, typed or scanned into the authenticator app.
#[derive(Serialize)]
struct Enrolment {
    secret: String,
    otpauth_uri: String,
}

/// Who is enrolling, and how they proved it.
/// What the enrolment's transaction came to.
enum Enrolled {
    /// The pending factor is stored.
    Pending,
    /// The password was not confirmed (or the account is locked or gone).
    Refused(Confirmed),
    /// A factor became active meanwhile, and the second factor was not shown.
    NowActive,
}

enum Enroller {
    /// A Bearer token; `password` when the token alone is not enough.
    Signed { user: Uuid, password: Option<String> },
    /// An enrolment mfa_token (MFA_POLICY=required).
    Enrolment { user: Uuid },
}

async fn enrol(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let enroller = if req.headers().contains_key(lambda_http::http::header::AUTHORIZATION) {
        let access = access::authenticate(&state.hash.token, req).await?;
        let body: EnrolBody = http::json_body(req, SHAPE)?;
        let user = access.user.id;
        let active = {
            let db = &state.hash.token.db;
            db.run(move |c| Box::pin(async move { store::has_active(c, user).await })).await?
        };
        match (active, access.claims.has_mfa(), body.password) {
            // A new phone: the second factor has been shown already.
            (true, true, _) => Enroller::Signed { user, password: None },
            (true, false, _) => return Err(ApiError::MfaRequired { mfa_token: None }),
            (false, _, Some(password)) => Enroller::Signed { user, password: Some(password) },
            (false, _, None) => {
                return Err(ApiError::InvalidRequest(
                    "Give the current password to add a second factor.".into(),
                ));
            }
        }
    } else {
        let body: EnrolBody = http::json_body(req, SHAPE)?;
        let Some(token) = body.mfa_token else {
            return Err(ApiError::InvalidToken { presented: false });
        };
        Enroller::Enrolment { user: enrolment_owner(state, &token).await? }
    };
    let user = match &enroller {
        Enroller::Signed { user, .. } | Enroller::Enrolment { user } => *user,
    };
    let is_enrolment = matches!(enroller, Enroller::Enrolment { .. });
    if let Enroller::Signed { password: Some(p), .. } = &enroller
        && !(1..=auth_shared::password::MAX_PASSWORD_CHARS).contains(&p.chars().count())
    {
        return Err(ApiError::InvalidRequest("The password must be 1 to 1024 characters.".into()));
    }
    let secret = totp::new_secret();
    let version =
        state.keys.current().await.map_err(|e| ApiError::ServiceUnavailable(e.to_string()))?;
    let sealed = sealed::seal(&version, user, &secret);
    let hash = state.hash.clone();
    // Whether the caller has shown the second factor (a token whose amr holds mfa): only then
    // may an account that has a factor enrol another.
    let (password, shown_mfa) = match enroller {
        Enroller::Signed { password, .. } => (password.clone(), password.is_none()),
        Enroller::Enrolment { .. } => (None, false),
    };
    let deadline = state.hash.token.db.config().statement_timeout * 3;
    let outcome = state
        .hash
        .token
        .db
        .run_within(deadline, move |c| {
            let (hash, password, sealed, kv) =
                (hash.clone(), password.clone(), sealed.clone(), version.id.clone());
            Box::pin(async move {
                let tx = c.transaction().await?;
                if let Some(password) = password {
                    let confirmed = access::confirm_password(&tx, &hash, user, password).await?;
                    if confirmed != Confirmed::Yes {
                        tx.commit().await?;
                        return Ok(Enrolled::Refused(confirmed));
                    }
                } else {
                    throttle::lock_account(&tx, user).await?;
                }
                // Read again under the account's attempt lock: a factor confirmed since the
                // first read needs the second factor shown (and ends an enrolment token).
                if !shown_mfa && store::has_active(&tx, user).await? {
                    return Ok(Enrolled::NowActive);
                }
                store::put_pending(&tx, user, &sealed, &kv).await?;
                tx.commit().await?;
                Ok(Enrolled::Pending)
            })
        })
        .await?;
    let outcome = match outcome {
        Enrolled::Pending => Confirmed::Yes,
        Enrolled::NowActive if is_enrolment => {
            return Err(ApiError::InvalidToken { presented: true });
        }
        Enrolled::NowActive => return Err(ApiError::MfaRequired { mfa_token: None }),
        Enrolled::Refused(confirmed) => confirmed,
    };
    match outcome {
        Confirmed::Yes => {}
        Confirmed::Wrong(failures) => {
            tracing::warn!(event = "login_failed", user_id = %user, reason = "wrong_current_password", failures, "login_failed");
            return Err(ApiError::InvalidCredentials);
        }
        Confirmed::Locked(retry_after) => {
            tracing::warn!(event = "login_throttled", user_id = %user, retry_after, "login_throttled");
            return Err(ApiError::TooManyAttempts { retry_after });
        }
        Confirmed::Gone => return Err(ApiError::InvalidToken { presented: true }),
    }
    let username = account_name(state, user).await?;
    tracing::info!(user_id = %user, "a TOTP factor is pending confirmation");
    Ok(http::json(
        StatusCode::OK,
        &Enrolment {
            secret: totp::base32(&secret),
            otpauth_uri: totp::otpauth_uri(&secret, &state.app_name, &username),
        },
    ))
}

/// The account a live enrolment mfa_token names; 401 `invalid_token` for any other token.
async fn enrolment_owner(state: &State, token: &str) -> Result<Uuid, ApiError> {
    let dead = ApiError::InvalidToken { presented: true };
    let hash = auth_shared::sessions::refresh_token_hash(token).ok_or_else(|| {
        tracing::info!("mfa_token refused: not the shape of one");
        ApiError::InvalidToken { presented: true }
    })?;
    let db = &state.hash.token.db;
    let owner = db
        .run(move |c| Box::pin(async move { store::live_token_owner(c, &hash, "enroll").await }))
        .await?;
    owner.ok_or(dead)
}

/// The label the authenticator app shows beside the issuer: the username.
async fn account_name(state: &State, user: Uuid) -> Result<String, ApiError> {
    let db = &state.hash.token.db;
    let name = db.run(move |c| Box::pin(async move { store::username(c, user).await })).await?;
    name.ok_or(ApiError::InvalidToken { presented: true })
}
