//! `POST /login/mfa`: the second step of a login whose password was right and whose account
//! has a second factor: `{"mfa_token", "code"}` or `{"mfa_token", "recovery_code"}`.
//!
//! In one transaction, under the locks of `auth_shared::mfa`'s module docs (the account's
//! attempt lock, its row, the mfa_token's row, the factor's or codes' rows): the token must be
//! live (unused, within MFA_TOKEN_TTL_SECONDS, fewer than 5 wrong codes, no password change
//! since); the login throttle and the daily lock refuse first (429); a right code for a step
//! not used before (or an unused recovery code) uses the token, records the login and opens a
//! session whose tokens carry `amr` `["pwd","otp","mfa"]`: 200, the login body. A wrong code is
//! 400 `invalid_code` and counts against the token, the login throttle and the daily lock; a
//! dead token is 401 `invalid_token`.

use auth_shared::access;
use auth_shared::http::{self, ApiError};
use auth_shared::mfa::check::{self, Answer, AnswerMembers, Checked, Step};
use auth_shared::mfa::{self, store};
use auth_shared::route::Route;
use auth_shared::sessions::{self, Grant};
use auth_shared::users::{self, LoginRecord};
use auth_shared::{throttle, tokio_postgres};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use uuid::Uuid;

/// What the function keeps between invocations: database, keys, token and session settings,
/// the data key.
pub use auth_shared::state::MfaState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/login/mfa", methods: &[Method::POST], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, second_step(state, &req)).await
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct SecondStepBody {
    #[serde(default, deserialize_with = "http::present_string")]
    mfa_token: Option<String>,
    #[serde(flatten)]
    answer: AnswerMembers,
}

const SHAPE: &str = r#"a JSON object {"mfa_token": string, "code" or "recovery_code": string}"#;

enum Outcome {
    Passed { user: Uuid, username: String, grant: Grant, times: LoginRecord, how: Checked },
    Refused { user: Uuid, step: Step },
    Dead(&'static str),
}

fn dead(reason: &'static str) -> ApiError {
    tracing::info!(reason, "mfa_token refused");
    ApiError::InvalidToken { presented: true }
}

async fn second_step(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: SecondStepBody = http::json_body(req, SHAPE)?;
    let token = body
        .mfa_token
        .ok_or_else(|| ApiError::InvalidRequest("The mfa_token member is missing.".into()))?;
    let answer = body.answer.answer(true)?;
    let hash = sessions::refresh_token_hash(&token).ok_or_else(|| dead("not the shape of one"))?;
    // A container that could not sign a token answers 503 before it uses up a code.
    access::signing_key(&*state.hash.token.keys.current().await)?;
    let (keys, cfg) = (state.keys.clone(), state.hash.token.sessions);
    let outcome = state
        .hash
        .token
        .db
        .run(move |c| {
            let (keys, answer) = (keys.clone(), answer.clone());
            Box::pin(async move { attempt(c, &keys, &hash, &answer, &cfg).await })
        })
        .await?;
    match outcome {
        Outcome::Passed { user, username, grant, times, how } => {
            if how == Checked::Recovery {
                tracing::warn!(event = "recovery_code_used", user_id = %user, "recovery_code_used");
            }
            tracing::info!(
                event = "login_succeeded",
                user_id = %user,
                session_id = %grant.session_id,
                second_factor = if how == Checked::Recovery { "recovery_code" } else { "totp" },
                "login_succeeded"
            );
            access::grant_response(&state.hash.token, user, &username, &grant, &times).await
        }
        Outcome::Refused { user, step } => {
            Err(step.refusal(user, "login").unwrap_or(ApiError::InvalidCode))
        }
        Outcome::Dead(reason) => Err(dead(reason)),
    }
}

async fn attempt(
    c: &mut tokio_postgres::Client,
    keys: &auth_shared::data_key::DataKey,
    hash: &[u8; 32],
    answer: &Answer,
    cfg: &sessions::SessionConfig,
) -> Result<Outcome, tokio_postgres::Error> {
    let tx = c.transaction().await?;
    let Some(user) = store::token_owner(&tx, hash, "login").await? else {
        return Ok(Outcome::Dead("unknown"));
    };
    // The locks, in their order, sent together (pipelined: the server takes them in the order
    // sent, each waiting for the one before).
    let (key, username, live) = tokio::try_join!(
        throttle::lock_account(&tx, user),
        store::lock_account_row(&tx, user),
        store::lock_token(&tx, hash, "login"),
    )?;
    let Some(username) = username else {
        return Ok(Outcome::Dead("account disabled or gone"));
    };
    if !live {
        return Ok(Outcome::Dead("used, expired, over-tried or voided by a password change"));
    }
    let step = check::step(&tx, keys, user, &key, answer).await?;
    let Step::Passed(how) = step else {
        if matches!(step, Step::Wrong { .. }) {
            store::fail_token(&tx, hash).await?;
        }
        tx.commit().await?;
        return Ok(Outcome::Refused { user, step });
    };
    let ((), times, grant) = tokio::try_join!(
        store::consume_token(&tx, hash, user),
        users::record_second_step_login(&tx, user),
        sessions::open_with(&tx, user, cfg, mfa::AMR_PASSWORD_AND_OTP),
    )?;
    // (The account's row is locked above, so this is a check, not a race; returning drops the
    // transaction, which rolls the session back.)
    let Some(times) = times else {
        return Ok(Outcome::Dead("account disabled"));
    };
    tx.commit().await?;
    Ok(Outcome::Passed { user, username, grant, times, how })
}
