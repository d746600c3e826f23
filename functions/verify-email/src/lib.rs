//! `POST /verify-email`: proves an address with what its mail carried (docs/accounts.md).
//!
//! - A sign-up: `{"email", "code", "password"}` or `{"token", "password"}`: the sign-up's own
//!   password as well, so whoever first typed someone else's address cannot have its owner
//!   activate the stranger's password (account pre-hijacking).
//! - An email change: `{"email", "code"}` (the new address) or `{"token"}`; and the old
//!   address's revert link, `{"token"}`, which restores it and ends every session.
//!
//! 200 `{"status": "verified", "email": "..."}`; it signs nobody in. 400 `invalid_code`, one
//! body for an unknown, expired, used, replaced or over-tried code and for a wrong sign-up
//! password. The checks and what they lock are in `auth_shared::accounts::confirm`.

use auth_shared::accounts::confirm::{self, Confirmed};
use auth_shared::accounts::{self, Given, Job, NoticeWhat};
use auth_shared::http::{self, ApiError};
use auth_shared::password::MAX_PASSWORD_CHARS;
use auth_shared::route::Route;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

/// What the function keeps between invocations: the account parts and the data key.
pub use auth_shared::state::CodeState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> = Route {
    path: "/verify-email",
    methods: &[Method::POST],
    handle: |s, r| Box::pin(handle(s, r)),
};

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, verify(state, &req)).await
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct VerifyBody {
    #[serde(default, deserialize_with = "http::present_string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    code: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    token: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    password: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"email": string, "code": string} or {"token": string}, with "password": string for a sign-up"#;

#[derive(serde::Serialize)]
struct Verified<'a> {
    status: &'static str,
    email: &'a str,
}

async fn verify(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: VerifyBody = http::json_body(req, SHAPE)?;
    let given = Given::from_body(body.email, body.code, body.token)?;
    let password = body
        .password
        .map(|p| accounts::required("password", Some(p), MAX_PASSWORD_CHARS))
        .transpose()?;
    let keys = state.keys.clone();
    let hashing = state.account.hashing.clone();
    let db = &state.account.db;
    let deadline = db.config().statement_timeout * 3;
    let outcome = db
        .run_within(deadline, move |c| {
            let (keys, hashing) = (keys.clone(), hashing.clone());
            let (given, password) = (given.clone(), password.clone());
            Box::pin(async move {
                let tx = c.transaction().await?;
                let (email, presented) = given.parts();
                let out = confirm::verify_email(
                    &tx,
                    &keys,
                    &hashing,
                    email,
                    presented,
                    password.as_deref(),
                )
                .await?;
                tx.commit().await?;
                Ok(out)
            })
        })
        .await?;
    let Ok(confirmed) = outcome else {
        tracing::warn!(event = "verification_failed", "verification_failed");
        return Err(ApiError::InvalidCode);
    };
    let (event, notice) = match &confirmed {
        Confirmed::SignedUp { .. } => ("email_verified", None),
        Confirmed::EmailChanged { user_id, .. } => {
            ("email_changed", Some((*user_id, NoticeWhat::EmailChanged)))
        }
        Confirmed::Reverted { user_id, .. } => {
            ("email_change_reverted", Some((*user_id, NoticeWhat::EmailChangeReverted)))
        }
    };
    let user_id = match &confirmed {
        Confirmed::SignedUp { user_id, .. }
        | Confirmed::EmailChanged { user_id, .. }
        | Confirmed::Reverted { user_id, .. } => *user_id,
    };
    tracing::info!(event, user_id = %user_id, "{event}");
    if let Some((user_id, what)) = notice {
        // The change is made; a notice that cannot be queued is logged, not a failure.
        let job = Job::Notice { id: Job::new_id(), user_id, what };
        if let Err(e) = accounts::enqueue(&state.account.queue, &job).await {
            tracing::error!(error = %e, "a security notice could not be queued");
        }
    }
    Ok(http::json(StatusCode::OK, &Verified { status: "verified", email: confirmed.email() }))
}
