//! `POST /mfa/totp/disable`: removes the TOTP factor and the recovery codes.
//!
//! Bearer access token whose `amr` holds `mfa` (another gets 403 `mfa_required`), plus
//! `{"code"}` or `{"recovery_code"}`: proof that the factor is still in hand, checked under the
//! account's attempt lock with the factor's row locked, as at `/login/mfa` (a wrong one is 400
//! `invalid_code` and counts in the login throttle and the daily lock). 204; the factor, its
//! pending successor, the recovery codes and any waiting mfa_tokens are gone.

use auth_shared::access;
use auth_shared::accounts::{self, NoticeWhat};
use auth_shared::http::{self, ApiError};
use auth_shared::mfa::check::{self, AnswerMembers, Checked, Step};
use auth_shared::mfa::store;
use auth_shared::route::Route;
use auth_shared::{throttle, tokio_postgres};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// What the function keeps between invocations: database, keys, token settings, the data key.
pub use auth_shared::state::MfaState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> = Route {
    path: "/mfa/totp/disable",
    methods: &[Method::POST],
    handle: |s, r| Box::pin(handle(s, r)),
};

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, disable(state, &req)).await
}

const SHAPE: &str = r#"a JSON object {"code" or "recovery_code": string}"#;

async fn disable(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let access = access::authenticate(&state.hash.token, req).await?;
    access::require_second_factor(&state.hash.token, &access).await?;
    let answer = http::json_body::<AnswerMembers>(req, SHAPE)?.answer(true)?;
    let user = access.user.id;
    let keys = state.keys.clone();
    let step = state
        .hash
        .token
        .db
        .run(move |c| {
            let (keys, answer) = (keys.clone(), answer.clone());
            Box::pin(async move {
                let tx: tokio_postgres::Transaction<'_> = c.transaction().await?;
                let key = throttle::lock_account(&tx, user).await?;
                let step = check::step(&tx, &keys, user, &key, &answer).await?;
                if let Step::Passed(_) = step {
                    store::remove_all(&tx, user).await?;
                }
                tx.commit().await?;
                Ok(step)
            })
        })
        .await?;
    if let Some(refused) = step.refusal(user, "disable") {
        return Err(refused);
    }
    if matches!(step, Step::Passed(Checked::Recovery)) {
        tracing::warn!(event = "recovery_code_used", user_id = %user, "recovery_code_used");
    }
    tracing::warn!(event = "mfa_disabled", user_id = %user, method = "totp", "mfa_disabled");
    accounts::notify(state.hash.mail.as_ref(), user, NoticeWhat::MfaDisabled).await;
    Ok(http::no_content())
}
