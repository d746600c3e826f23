//! `POST /email` with `Authorization: Bearer <access token>`, `{"new_email", "password"}`:
//! starts an email change (docs/accounts.md). The password is checked as at `/password`,
//! counted by the login throttle under the account's lock (`throttle::check_password`). 202
//! `{"status": "verification_sent"}`: the new address gets a code and a link, the old one a
//! notice with a link that undoes the change; login keeps using the old address until
//! `/verify-email` completes the change with the new address's code. A new address already
//! used by another account gets the same 202, and the mail to it says so.
//!
//! Errors: 400 `invalid_request` (shape, address), 401 `invalid_token`, 401
//! `invalid_credentials` (wrong password), 429 `too_many_attempts` (throttle, or the source's
//! mail limit).

use auth_shared::access;
use auth_shared::account::MailAddress;
use auth_shared::accounts::{self, Job, limits};
use auth_shared::http::{self, ApiError};
use auth_shared::identifier::MAX_IDENTIFIER_CHARS;
use auth_shared::password::{self, MAX_PASSWORD_CHARS, Verdict};
use auth_shared::route::Route;
use auth_shared::throttle;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

/// What the function keeps between invocations: the token parts and the account parts.
pub use auth_shared::state::EmailState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/email", methods: &[Method::POST], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, change(state, &req)).await
}

#[derive(Deserialize)]
struct EmailBody {
    #[serde(default, deserialize_with = "http::present_string")]
    new_email: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    password: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"new_email": string, "password": string}"#;

#[derive(serde::Serialize)]
struct Accepted {
    status: &'static str,
}

enum Outcome {
    Checked,
    Locked { retry_after: u64 },
    Wrong { failures: i32 },
    Gone,
}

async fn change(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    // The token first: without one, no body is worth reading (and none is judged).
    let access = access::authenticate(&state.token, req).await?;
    access::require_second_factor(&state.token, &access).await?;
    let body: EmailBody = http::json_body(req, SHAPE)?;
    let new_email = accounts::required("new_email", body.new_email, MAX_IDENTIFIER_CHARS)?;
    let password = accounts::required("password", body.password, MAX_PASSWORD_CHARS)?;
    let address = MailAddress::parse(&new_email)
        .map_err(|e| ApiError::InvalidRequest(format!("The new {e}.")))?;
    let user_id = access.user.id;
    limits::guard_source(&state.token.db, req).await?;
    let hashing = state.account.hashing.clone();
    let deadline = hashing.deadline * 3;
    let outcome = state
        .token
        .db
        .run_within(deadline, move |c| {
            let (password, hashing) = (password.clone(), hashing.clone());
            Box::pin(async move {
                let tx = c.transaction().await?;
                let key = throttle::lock_account(&tx, user_id).await?;
                let stored: Option<String> = tx
                    .query_typed_opt(
                        "SELECT password_hash FROM users WHERE id = $1 AND disabled_at IS NULL FOR UPDATE",
                        &[(&user_id, auth_shared::tokio_postgres::types::Type::UUID)],
                    )
                    .await?
                    .map(|r| r.get(0));
                let Some(stored) = stored else { return Ok(Outcome::Gone) };
                let policy = hashing.policy;
                let checked = throttle::check_password(&tx, &key, &hashing.slots, hashing.deadline, move || {
                    password::verify(&password, &stored, policy)
                })
                .await?;
                let out = match checked {
                    throttle::Checked::Locked { retry_after } => Outcome::Locked { retry_after },
                    throttle::Checked::Done(Verdict::Match { .. }) => Outcome::Checked,
                    throttle::Checked::Done(Verdict::Mismatch) | throttle::Checked::Cut => {
                        Outcome::Wrong { failures: throttle::record_failure(&tx, &key).await? }
                    }
                };
                tx.commit().await?;
                Ok(out)
            })
        })
        .await?;
    match outcome {
        Outcome::Checked => {}
        Outcome::Locked { retry_after } => {
            tracing::warn!(event = "login_throttled", user_id = %user_id, retry_after, "login_throttled");
            return Err(ApiError::TooManyAttempts { retry_after });
        }
        Outcome::Wrong { failures } => {
            tracing::warn!(
                event = "login_failed",
                user_id = %user_id,
                reason = "wrong_current_password",
                failures,
                locked_for_s = throttle::lock_seconds(failures),
                "login_failed"
            );
            return Err(ApiError::InvalidCredentials);
        }
        Outcome::Gone => return Err(ApiError::InvalidToken { presented: true }),
    }
    let job =
        Job::EmailChange { id: Job::new_id(), user_id, new_email: address.as_str().to_owned() };
    accounts::enqueue(&state.account.queue, &job).await?;
    tracing::info!(event = "email_change_requested", user_id = %user_id, job = %job.id(), "email_change_requested");
    Ok(http::json(StatusCode::ACCEPTED, &Accepted { status: "verification_sent" }))
}
