//! `POST /password`: the signed-in user changes their password (docs/sessions.md).
//!
//! Bearer access token plus `{"current_password", "new_password"}`. The new password must
//! follow the policy (400 `weak_password`, the detail naming the rule); the current one is
//! checked like a login's, under the same per-account lock and throttle (a wrong one is 401
//! `invalid_credentials` and counts; a locked account is 429). On success, in one transaction
//! holding the account's row lock: the new hash is stored (tokens issued before now stop
//! working), every other session ends, and this session gets a new refresh token in place of
//! its old ones. The answer is the login body for the same session.

use auth_shared::access;
use auth_shared::accounts::{self, Job, NoticeWhat};
use auth_shared::http::{self, ApiError};
use auth_shared::password::{self, MAX_PASSWORD_CHARS, Policy, Verdict, Weak};
use auth_shared::route::Route;
use auth_shared::sessions::{self, Grant, SessionConfig};
use auth_shared::throttle;
use auth_shared::tokio_postgres;
use auth_shared::users::{self, LoginRecord};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use uuid::Uuid;

/// What the password function keeps between invocations: database, keys, token and session
/// settings, the hashing policy and one hashing slot per core (it hashes, like login).
pub use auth_shared::state::HashState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/password", methods: &[Method::POST], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, change(state, &req)).await
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct PasswordBody {
    #[serde(default, deserialize_with = "http::present_string")]
    current_password: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    new_password: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"current_password": string, "new_password": string}"#;

/// What the change came to.
enum Outcome {
    Changed { times: LoginRecord, grant: Grant },
    Locked { retry_after: u64 },
    WrongPassword { failures: i32 },
    Weak(Weak),
    Gone,
}

async fn change(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: PasswordBody = http::json_body(req, SHAPE)?;
    let (Some(current), Some(new)) = (body.current_password, body.new_password) else {
        return Err(ApiError::InvalidRequest(
            "Give both current_password and new_password.".into(),
        ));
    };
    let n = current.chars().count();
    if n == 0 || n > MAX_PASSWORD_CHARS {
        return Err(ApiError::InvalidRequest(
            "The current_password must be 1 to 1024 characters.".into(),
        ));
    }
    // The rules that need no secret come first: they cost nothing and reveal nothing.
    password::check_new(&new, None).map_err(|w| ApiError::WeakPassword(w.to_string()))?;
    let access = access::authenticate(&state.token, req).await?;
    access::require_second_factor(&state.token, &access).await?;
    // A container that could not sign the new token answers 503 before it changes anything
    // (see `keys::KeySet::signing`).
    access::signing_key(&*state.token.keys.current().await)?;
    let (user_id, sid) = (access.user.id, access.session);
    let (policy, slots, cfg) = (state.policy, state.hash_slots.clone(), state.token.sessions);
    // The transaction holds the account's lock across the password check, like a login's, and
    // the check itself gets one statement's deadline.
    let verify_deadline = state.token.db.config().statement_timeout;
    let deadline = verify_deadline * 3;
    let outcome = state
        .token
        .db
        .run_within(deadline, move |c| {
            let (current, new, slots) = (current.clone(), new.clone(), slots.clone());
            Box::pin(async move {
                attempt(c, user_id, sid, current, new, policy, &slots, &cfg, verify_deadline).await
            })
        })
        .await?;
    match outcome {
        Outcome::Changed { times, grant } => {
            tracing::info!(
                event = "password_changed",
                user_id = %user_id,
                session_id = %grant.session_id,
                "password_changed"
            );
            // The security notice to the account's address; the change stands without it.
            if let Some(queue) = &state.mail {
                let job =
                    Job::Notice { id: Job::new_id(), user_id, what: NoticeWhat::PasswordChanged };
                if let Err(e) = accounts::enqueue(queue, &job).await {
                    tracing::error!(error = %e, "a security notice could not be queued");
                }
            }
            access::grant_response(&state.token, user_id, &access.user.username, &grant, &times)
                .await
        }
        Outcome::Locked { retry_after } => {
            tracing::warn!(event = "login_throttled", user_id = %user_id, retry_after, "login_throttled");
            Err(ApiError::TooManyAttempts { retry_after })
        }
        Outcome::WrongPassword { failures } => {
            tracing::warn!(
                event = "login_failed",
                user_id = %user_id,
                reason = "wrong_current_password",
                failures,
                locked_for_s = throttle::lock_seconds(failures),
                "login_failed"
            );
            Err(ApiError::InvalidCredentials)
        }
        Outcome::Weak(w) => Err(ApiError::WeakPassword(w.to_string())),
        Outcome::Gone => Err(ApiError::InvalidToken { presented: true }),
    }
}

#[allow(clippy::too_many_arguments)]
async fn attempt(
    c: &mut tokio_postgres::Client,
    user_id: Uuid,
    sid: Option<Uuid>,
    current: String,
    new: String,
    policy: Policy,
    hash_slots: &std::sync::Arc<tokio::sync::Semaphore>,
    cfg: &SessionConfig,
    verify_deadline: std::time::Duration,
) -> Result<Outcome, tokio_postgres::Error> {
    let tx = c.transaction().await?;
    let key = throttle::lock_account(&tx, user_id).await?;
    let Some(stored) = users::lock_for_password_change(&tx, user_id).await? else {
        return Ok(Outcome::Gone);
    };
    let checked = throttle::check_password(&tx, &key, hash_slots, verify_deadline, move || {
        let verdict = password::verify(&current, &stored, policy);
        let weak = password::check_new(&new, Some(&current)).err();
        let hash = match (verdict, weak) {
            (Verdict::Match { .. }, None) => Some(password::hash(&new, policy)),
            _ => None,
        };
        (verdict, weak, hash)
    })
    .await?;
    let (verdict, weak, hash) = match checked {
        throttle::Checked::Locked { retry_after } => return Ok(Outcome::Locked { retry_after }),
        throttle::Checked::Done(done) => done,
        throttle::Checked::Cut => (Verdict::Mismatch, None, None),
    };
    match (verdict, weak, hash) {
        (Verdict::Mismatch, _, _) => {
            let failures = throttle::record_failure(&tx, &key).await?;
            tx.commit().await?;
            Ok(Outcome::WrongPassword { failures })
        }
        (Verdict::Match { .. }, Some(w), _) => Ok(Outcome::Weak(w)),
        (Verdict::Match { .. }, None, Some(hash)) => {
            let times = users::change_password(&tx, user_id, &hash).await?;
            let grant = sessions::after_password_change(&tx, user_id, sid, cfg).await?;
            tx.commit().await?;
            Ok(Outcome::Changed { times, grant })
        }
        (Verdict::Match { .. }, None, None) => Ok(Outcome::Gone),
    }
}
