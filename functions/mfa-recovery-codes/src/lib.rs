//! `POST /mfa/recovery-codes`: a new set of ten recovery codes; the old set is void.
//!
//! Bearer access token whose `amr` holds `mfa` (another gets 403 `mfa_required`), plus
//! `{"code"}` from the authenticator app, checked as at `/login/mfa` under the account's
//! attempt lock (a wrong one is 400 `invalid_code` and counts). 200
//! `{"recovery_codes":[...10 codes]}`, shown only this once; stored as keyed hashes.

use auth_shared::access;
use auth_shared::http::{self, ApiError};
use auth_shared::mfa::check::{self, AnswerMembers, Step};
use auth_shared::mfa::{recovery, store};
use auth_shared::route::Route;
use auth_shared::{throttle, tokio_postgres};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// What the function keeps between invocations: database, keys, token settings, the data key.
pub use auth_shared::state::MfaState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> = Route {
    path: "/mfa/recovery-codes",
    methods: &[Method::POST],
    handle: |s, r| Box::pin(handle(s, r)),
};

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, renew(state, &req)).await
}

const SHAPE: &str = r#"a JSON object {"code": string}"#;

/// The answer.
#[derive(Serialize)]
struct Codes<'a> {
    recovery_codes: &'a [String],
}

async fn renew(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let access = access::authenticate(&state.hash.token, req).await?;
    access::require_second_factor(&state.hash.token, &access).await?;
    let answer = http::json_body::<AnswerMembers>(req, SHAPE)?.answer(false)?;
    let user = access.user.id;
    let version =
        state.keys.current().await.map_err(|e| ApiError::ServiceUnavailable(e.to_string()))?;
    let codes = recovery::new_set();
    let hashes = recovery::hashes(&version, user, &codes);
    let keys = state.keys.clone();
    let step = state
        .hash
        .token
        .db
        .run(move |c| {
            let (keys, answer, hashes, kv) =
                (keys.clone(), answer.clone(), hashes.clone(), version.id.clone());
            Box::pin(async move {
                let tx: tokio_postgres::Transaction<'_> = c.transaction().await?;
                let key = throttle::lock_account(&tx, user).await?;
                let step = check::step(&tx, &keys, user, &key, &answer).await?;
                if let Step::Passed(_) = step {
                    store::replace_codes(&tx, user, &kv, &hashes).await?;
                }
                tx.commit().await?;
                Ok(step)
            })
        })
        .await?;
    if let Some(refused) = step.refusal(user, "recovery_codes") {
        return Err(refused);
    }
    tracing::info!(event = "recovery_codes_replaced", user_id = %user, "recovery_codes_replaced");
    Ok(http::json(StatusCode::OK, &Codes { recovery_codes: &codes }))
}
