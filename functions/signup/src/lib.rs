//! `POST /signup` `{"username", "email", "password", "full_name"?}`: a new account, unverified
//! until the address confirms it (docs/accounts.md). 202 `{"status": "verification_sent"}`,
//! for a new address and for one that already has an account alike, in the same time within
//! noise (one hash is spent either way, and both put one job on the mail queue: the mailer
//! alone decides whether the mail holds a code or says an account exists).
//!
//! Errors: 400 `invalid_request` (shape, username, address, name), 400 `weak_password`, 403
//! `signup_disabled` (SIGNUP_MODE closed, or a domain not listed), 409 `username_taken`, 429
//! `too_many_attempts` (per source address). The write's locks are in
//! `auth_shared::accounts::signup`.

use auth_shared::account::{MailAddress, NewAccount};
use auth_shared::accounts::signup::{self, Registered, SignUp};
use auth_shared::accounts::{self, Job, limits};
use auth_shared::http::{self, ApiError};
use auth_shared::identifier::MAX_IDENTIFIER_CHARS;
use auth_shared::password::{self, MAX_PASSWORD_CHARS};
use auth_shared::route::Route;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

/// What the sign-up function keeps between invocations: the pool, the account settings, the
/// mail queue and its hashing slots.
pub use auth_shared::state::AccountState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/signup", methods: &[Method::POST], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, sign_up(state, &req)).await
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct SignupBody {
    #[serde(default, deserialize_with = "http::present_string")]
    username: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    password: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    full_name: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"username": string, "email": string, "password": string, "full_name"?: string}"#;

#[derive(serde::Serialize)]
struct Accepted {
    status: &'static str,
}

async fn sign_up(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: SignupBody = http::json_body(req, SHAPE)?;
    let username = accounts::required("username", body.username, MAX_IDENTIFIER_CHARS)?;
    let email = accounts::required("email", body.email, MAX_IDENTIFIER_CHARS)?;
    let password = accounts::required("password", body.password, MAX_PASSWORD_CHARS)?;
    let full_name = body.full_name.filter(|n| !n.is_empty());
    let invalid =
        |e: auth_shared::account::FieldError| ApiError::InvalidRequest(format!("The {e}."));
    let address = MailAddress::parse(&email).map_err(invalid)?;
    let account =
        NewAccount::parse(&username, address.as_str(), full_name.as_deref()).map_err(invalid)?;
    if !state.accounts.signup_allowed(address.domain()) {
        return Err(ApiError::SignupDisabled);
    }
    password::check_new(&password, None).map_err(|w| ApiError::WeakPassword(w.to_string()))?;
    limits::guard_source(&state.db, req).await?;
    let hash = state.hashing.hash(&password).await.ok_or_else(|| {
        ApiError::ServiceUnavailable("the new password's hash missed its deadline".into())
    })?;
    let ttl = state.accounts.verify_ttl_seconds;
    let deadline = state.db.config().statement_timeout * 2;
    let (account2, address2, hash2) = (account.clone(), address.clone(), hash.clone());
    let registered = state
        .db
        .run_within(deadline, move |c| {
            let (account, address, hash) = (account2.clone(), address2.clone(), hash2.clone());
            Box::pin(async move {
                let tx = c.transaction().await?;
                let s = SignUp {
                    username: &account.username,
                    email: &address,
                    full_name: account.full_name.as_ref().map(|n| n.as_str()),
                    password_hash: &hash,
                };
                let out = signup::register(&tx, &s, ttl).await;
                // A writer without the sign-up locks (auth-admin, import) took the name or
                // the address meanwhile: answered as a taken username.
                let out = match out {
                    Err(e)
                        if e.code()
                            == Some(
                                &auth_shared::tokio_postgres::error::SqlState::UNIQUE_VIOLATION,
                            ) =>
                    {
                        return Ok(Registered::UsernameTaken);
                    }
                    other => other?,
                };
                tx.commit().await?;
                Ok(out)
            })
        })
        .await?;
    if registered == Registered::UsernameTaken {
        return Err(ApiError::UsernameTaken);
    }
    let job = Job::Signup { id: Job::new_id(), email: address.as_str().to_owned() };
    accounts::enqueue(&state.queue, &job).await?;
    tracing::info!(event = "signup_requested", job = %job.id(), "signup_requested");
    Ok(http::json(StatusCode::ACCEPTED, &Accepted { status: "verification_sent" }))
}
