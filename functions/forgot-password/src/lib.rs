//! `POST /password/forgot` `{"email"}` or `{"username"}`: mails a reset code and link
//! (docs/accounts.md). 202 `{"status": "reset_sent"}` always, in the same time within noise:
//! the request only counts its source and puts one job on the mail queue, whatever the
//! identifier names, and the mailer sends only to an existing, enabled account, within the
//! per-address limits. 400 for a malformed body, 429 `too_many_attempts` per source address.

use auth_shared::accounts::{self, Job, limits};
use auth_shared::http::{self, ApiError};
use auth_shared::identifier::MAX_IDENTIFIER_CHARS;
use auth_shared::route::Route;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

/// What the function keeps between invocations: the pool, the account settings, the queue.
pub use auth_shared::state::AccountState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> = Route {
    path: "/password/forgot",
    methods: &[Method::POST],
    handle: |s, r| Box::pin(handle(s, r)),
};

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, forgot(state, &req)).await
}

#[derive(Deserialize)]
struct ForgotBody {
    #[serde(default, deserialize_with = "http::present_string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    username: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"email": string} or {"username": string}"#;

#[derive(serde::Serialize)]
struct Accepted {
    status: &'static str,
}

async fn forgot(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: ForgotBody = http::json_body(req, SHAPE)?;
    let identifier = match (body.email, body.username) {
        (Some(e), None) => {
            accounts::stored_address(&accounts::required("email", Some(e), MAX_IDENTIFIER_CHARS)?)?
        }
        (None, Some(u)) => accounts::required("username", Some(u), MAX_IDENTIFIER_CHARS)?,
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "Give exactly one of username or email, not both.".into(),
            ));
        }
        (None, None) => {
            return Err(ApiError::InvalidRequest("Give exactly one of username or email.".into()));
        }
    };
    limits::guard_source(&state.db, req).await?;
    let job = Job::Forgot { id: Job::new_id(), identifier };
    accounts::enqueue(&state.queue, &job).await?;
    tracing::info!(event = "password_reset_requested", job = %job.id(), "password_reset_requested");
    Ok(http::json(StatusCode::ACCEPTED, &Accepted { status: "reset_sent" }))
}
