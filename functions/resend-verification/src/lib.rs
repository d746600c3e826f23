//! `POST /verify-email/resend` `{"email"}`: mails a sign-up's code again (docs/accounts.md).
//! 202 `{"status": "verification_sent"}` always, for any address: the job goes on the mail
//! queue whatever the address is, and the mailer sends a new code (replacing the old one) only
//! to an account still unverified, within the per-address limits. 400 for a malformed body,
//! 429 `too_many_attempts` per source address.

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
    path: "/verify-email/resend",
    methods: &[Method::POST],
    handle: |s, r| Box::pin(handle(s, r)),
};

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, resend(state, &req)).await
}

#[derive(Deserialize)]
struct ResendBody {
    #[serde(default, deserialize_with = "http::present_string")]
    email: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"email": string}"#;

#[derive(serde::Serialize)]
struct Accepted {
    status: &'static str,
}

async fn resend(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: ResendBody = http::json_body(req, SHAPE)?;
    let email =
        accounts::stored_address(&accounts::required("email", body.email, MAX_IDENTIFIER_CHARS)?)?;
    limits::guard_source(&state.db, req).await?;
    let job = Job::Resend { id: Job::new_id(), email };
    accounts::enqueue(&state.queue, &job).await?;
    tracing::info!(event = "verification_resend_requested", job = %job.id(), "verification_resend_requested");
    Ok(http::json(StatusCode::ACCEPTED, &Accepted { status: "verification_sent" }))
}
