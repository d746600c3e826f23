//! `POST /password/reset` `{"email", "code", "new_password"}` or `{"token", "new_password"}`:
//! sets a forgotten password with what the reset mail carried (docs/accounts.md). 204. The
//! password is replaced (policy as at /password: a weak one is 400 `weak_password` and spends
//! nothing), every session of the user ends, the login throttle's count for the account is
//! cleared and the address counts as verified; a security notice is mailed. 400
//! `invalid_code` for every refused code or link. The check and its locks are in
//! `auth_shared::accounts::confirm`.

use auth_shared::accounts::confirm;
use auth_shared::accounts::{self, Given, Job, NoticeWhat};
use auth_shared::http::{self, ApiError};
use auth_shared::password::{self, MAX_PASSWORD_CHARS};
use auth_shared::route::Route;
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

/// What the function keeps between invocations: the account parts and the data key.
pub use auth_shared::state::CodeState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> = Route {
    path: "/password/reset",
    methods: &[Method::POST],
    handle: |s, r| Box::pin(handle(s, r)),
};

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, reset(state, &req)).await
}

#[derive(Deserialize)]
struct ResetBody {
    #[serde(default, deserialize_with = "http::present_string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    code: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    token: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    new_password: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"email": string, "code": string, "new_password": string} or {"token": string, "new_password": string}"#;

async fn reset(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: ResetBody = http::json_body(req, SHAPE)?;
    let new_password = accounts::required("new_password", body.new_password, MAX_PASSWORD_CHARS)?;
    let given = Given::from_body(body.email, body.code, body.token)?;
    // Checked before anything is looked up: a weak password spends no try and no code.
    password::check_new(&new_password, None).map_err(|w| ApiError::WeakPassword(w.to_string()))?;
    let keys = state.keys.clone();
    let hashing = state.account.hashing.clone();
    let db = &state.account.db;
    let deadline = db.config().statement_timeout * 3;
    let outcome = db
        .run_within(deadline, move |c| {
            let (keys, hashing, given, new_password) =
                (keys.clone(), hashing.clone(), given.clone(), new_password.clone());
            Box::pin(async move {
                let tx = c.transaction().await?;
                let (email, presented) = given.parts();
                let out =
                    confirm::reset_password(&tx, &keys, &hashing, email, presented, &new_password)
                        .await?;
                tx.commit().await?;
                Ok(out)
            })
        })
        .await?;
    let Ok(user_id) = outcome else {
        tracing::warn!(event = "password_reset_failed", "password_reset_failed");
        return Err(ApiError::InvalidCode);
    };
    tracing::info!(event = "password_reset", user_id = %user_id, "password_reset");
    let job = Job::Notice { id: Job::new_id(), user_id, what: NoticeWhat::PasswordReset };
    if let Err(e) = accounts::enqueue(&state.account.queue, &job).await {
        tracing::error!(error = %e, "a security notice could not be queued");
    }
    Ok(http::no_content())
}
