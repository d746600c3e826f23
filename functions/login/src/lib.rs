//! `POST /login`: username or email plus password in, a signed access token out.
//!
//! The steps, and why they are in this order:
//! 1. parse and check the body (415, 413, 400) before touching the database;
//! 2. in one transaction, take the advisory lock on the attempt's throttle key, then read the
//!    account and the key's count under it; a locked key gets 429 without its password being
//!    checked;
//! 3. verify the password on a blocking thread (one current-policy hash whether or not the
//!    account exists, so neither the answer nor its timing tells them apart), within one
//!    statement deadline: a check cut off by it counts as a wrong password;
//! 4. still in that transaction, on success one statement writes `last_login_at`, the hash
//!    upgrade if due and the throttle reset, all only if the hash is still the one verified,
//!    and a second opens the session with its first refresh token; on failure the count goes
//!    up. Then the transaction commits and, on success, the access token (with the session's
//!    `sid`) is signed.

use auth_shared::access;
use auth_shared::accounts::{self, Job};
use auth_shared::failure_floor::{self, FailureFloor};
use auth_shared::http::{self, ApiError};
use auth_shared::mfa::{self, MfaConfig};
use auth_shared::password::{self, MAX_PASSWORD_CHARS, Policy, Verdict};
use auth_shared::route::Route;
use auth_shared::sessions::{self, Grant, SessionConfig};
use auth_shared::throttle;
use auth_shared::users::{self, LoginRecord, User};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

pub use auth_shared::identifier::MAX_IDENTIFIER_CHARS;

/// What the login function keeps between invocations: database, keys, token settings, the
/// hashing policy and one hashing slot per core.
pub use auth_shared::state::HashState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/login", methods: &[Method::POST], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, login(state, &req)).await
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct LoginBody {
    #[serde(default, deserialize_with = "http::present_string")]
    username: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    password: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"username" or "email": string, "password": string}"#;

/// Checks the body's shape and lengths; returns (identifier, password).
fn credentials(body: LoginBody) -> Result<(String, String), ApiError> {
    let invalid = |why: &str| ApiError::InvalidRequest(why.to_owned());
    let identifier = match (body.username, body.email) {
        (Some(i), None) | (None, Some(i)) => i,
        (Some(_), Some(_)) => {
            return Err(invalid("Give exactly one of username or email, not both."));
        }
        (None, None) => return Err(invalid("Give exactly one of username or email.")),
    };
    let password = body.password.ok_or_else(|| invalid("The password member is missing."))?;
    let n = identifier.chars().count();
    if n == 0 || n > MAX_IDENTIFIER_CHARS {
        return Err(invalid("The username or email must be 1 to 320 characters."));
    }
    if identifier.contains('\0') {
        return Err(invalid("The username or email must not contain NUL characters."));
    }
    let n = password.chars().count();
    if n == 0 || n > MAX_PASSWORD_CHARS {
        return Err(invalid("The password must be 1 to 1024 characters."));
    }
    Ok((identifier, password))
}

/// What one attempt came to.
enum Attempt {
    /// The key is locked; the password was not checked.
    Locked { key: String, retry_after: u64, user: Option<User> },
    /// Logged in, with a session opened.
    Succeeded { user: User, record: LoginRecord, grant: Grant },
    /// The right password of an account with a second factor (`purpose` `login`) or one that
    /// must enrol (`enroll`): no session; `token` is the mfa_token (never logged).
    SecondStep { user: User, token: String, purpose: &'static str },
    /// Refused; `failures` is the key's count after this attempt; `pad` is how much longer
    /// the answer waits to take the failure floor's time (see `failure_floor`).
    Failed { key: String, reason: &'static str, failures: i32, user: Option<User>, pad: Duration },
}

async fn login(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let (identifier, password) = credentials(http::json_body(req, SHAPE)?)?;
    // A container that could not sign a token answers 503 before it checks a password or
    // opens a session (see `keys::KeySet::signing`).
    access::signing_key(&*state.token.keys.current().await)?;
    let policy = state.policy;
    // The transaction holds the key's lock across the password check, so it gets a deadline of
    // its own: the hash plus any attempts queued before it on the same account. The check
    // itself gets one statement's deadline (DB_STATEMENT_TIMEOUT_MS), so the writes that
    // record its outcome always have time left.
    let verify_deadline = state.token.db.config().statement_timeout;
    let deadline = verify_deadline * 3;
    let slots = state.hash_slots.clone();
    let floor = state.floor.clone();
    let session_cfg = state.token.sessions;
    let require_verified = state.require_verified_email;
    let mfa_cfg = state.mfa;
    let attempt = state
        .token
        .db
        .run_within(deadline, move |c| {
            let (identifier, password, slots, floor) =
                (identifier.clone(), password.clone(), slots.clone(), floor.clone());
            let limits = Limits {
                policy,
                mfa: mfa_cfg,
                session: session_cfg,
                verify_deadline,
                require_verified,
            };
            Box::pin(async move { attempt(c, &identifier, password, &slots, &floor, limits).await })
        })
        .await?;
    match attempt {
        Attempt::Succeeded { user, record, grant } => {
            // Sessions over for a day are removed outside the login's transaction, by one login
            // in sixteen (each removes up to a hundred): enough to keep up with any rate of
            // logins, without a round trip on every one.
            if auth_shared::random::bytes::<1>()[0] < 16 {
                let purge =
                    state.token.db.run(|c| Box::pin(async move { sessions::purge(c).await }));
                if let Err(e) = purge.await {
                    tracing::warn!(error = %e, "old sessions could not be removed");
                }
            }
            tracing::info!(
                event = "login_succeeded",
                user_id = %user.id,
                session_id = %grant.session_id,
                "login_succeeded"
            );
            access::grant_response(&state.token, user.id, &user.username, &grant, &record).await
        }
        Attempt::SecondStep { user, token, purpose } => {
            // Second steps never taken leave expired mfa_tokens: removed as old sessions are,
            // by one such answer in sixteen, outside its transaction.
            if auth_shared::random::bytes::<1>()[0] < 16 {
                let purge = state
                    .token
                    .db
                    .run(|c| Box::pin(async move { mfa::store::purge_expired_tokens(c).await }));
                if let Err(e) = purge.await {
                    tracing::warn!(error = %e, "expired mfa_tokens could not be removed");
                }
            }
            tracing::info!(
                event = "login_second_step",
                user_id = %user.id,
                purpose,
                "login_second_step"
            );
            let mfa_token = token.into();
            Err(if purpose == "enroll" {
                ApiError::MfaEnrollmentRequired { mfa_token }
            } else {
                ApiError::MfaRequired { mfa_token: Some(mfa_token) }
            })
        }
        Attempt::Locked { key, retry_after, user } => {
            let user_id = user.map(|u| u.id.to_string());
            tracing::warn!(event = "login_throttled", user_id, throttle_key = %key, retry_after, "login_throttled");
            Err(ApiError::TooManyAttempts { retry_after })
        }
        Attempt::Failed { key, reason, failures, user, pad } => {
            // Expired counts are removed outside the attempt's transaction and lock.
            let purge =
                state.token.db.run(|c| Box::pin(async move { throttle::purge_expired(c).await }));
            if let Err(e) = purge.await {
                tracing::warn!(error = %e, "expired throttle rows could not be removed");
            }
            // An unverified account's right password mails its verification again (within
            // the mail limits), while the answer waits out its floor: the wait hides the time
            // the queue takes.
            let resend = match (&state.mail, reason, &user) {
                (Some(queue), "email_unverified", Some(u)) => {
                    let job = Job::Resend { id: Job::new_id(), email: u.email.clone() };
                    let queue = queue.clone();
                    Some(tokio::spawn(async move { accounts::enqueue(&queue, &job).await }))
                }
                _ => None,
            };
            let user_id = user.map(|u| u.id.to_string());
            tracing::warn!(
                event = "login_failed",
                user_id,
                throttle_key = %key,
                reason,
                failures,
                locked_for_s = throttle::lock_seconds(failures),
                "login_failed"
            );
            // Outside the transaction: no lock, connection or core is held while it waits.
            tokio::time::sleep(pad).await;
            if let Some(task) = resend
                && let Ok(Err(e)) = task.await
            {
                tracing::warn!(error = %e, "the verification mail could not be queued");
            }
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// The settings an attempt runs under.
#[derive(Clone, Copy)]
struct Limits {
    policy: Policy,
    mfa: MfaConfig,
    session: SessionConfig,
    verify_deadline: Duration,
    require_verified: bool,
}

/// One attempt, in one transaction that holds the key's lock from reading its count to writing
/// the outcome.
async fn attempt(
    c: &mut auth_shared::tokio_postgres::Client,
    identifier: &str,
    password: String,
    hash_slots: &Arc<tokio::sync::Semaphore>,
    floor: &Arc<FailureFloor>,
    limits: Limits,
) -> Result<Attempt, auth_shared::tokio_postgres::Error> {
    let Limits { policy, session: session_cfg, verify_deadline, require_verified, .. } = limits;
    let tx = c.transaction().await?;
    // The account is read under the lock, so a hash another attempt upgraded meanwhile is the
    // one checked; known and unknown identifiers run the same statements.
    let key = throttle::lock_key(&tx, identifier).await?;
    let user = users::find_by_identifier(&tx, identifier).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    // An account that cannot log in computes no upgrade hash: its right password must answer
    // in the time of a wrong one.
    let active =
        user.as_ref().is_some_and(|u| u.is_active() && (u.email_verified || !require_verified));
    let ratio = floor.ratio(&tx, policy).await?;
    let tries = failure_floor::tries(&password);
    let timing = floor.clone();
    let checked = throttle::check_password(&tx, &key, hash_slots, verify_deadline, move || {
        let (verdict, took) = timing.timed_verify(&password, stored.as_deref(), policy);
        let upgraded = match verdict {
            // Only for an account that can log in: a disabled one's answer must not take a
            // hash longer when its password is right.
            Verdict::Match { needs_upgrade: true } if active => {
                Some(password::hash(&password, policy))
            }
            _ => None,
        };
        (verdict, upgraded, took)
    })
    .await?;
    let (verdict, upgraded, took, cut) = match checked {
        throttle::Checked::Locked { retry_after } => {
            return Ok(Attempt::Locked { key, retry_after, user });
        }
        throttle::Checked::Done((verdict, upgraded, took)) => (verdict, upgraded, took, false),
        throttle::Checked::Cut => (Verdict::Mismatch, None, verify_deadline, true),
    };
    let reason = match (&user, verdict) {
        _ if cut => "verification_deadline",
        (None, _) => "unknown_identifier",
        (Some(u), Verdict::Match { .. })
            if u.is_active() && !u.email_verified && require_verified =>
        {
            // As a wrong password, counted too: a count that stopped at the right password
            // would tell which one it is.
            "email_unverified"
        }
        (Some(u), Verdict::Match { .. }) if u.is_active() => {
            if let Some(purpose) = second_step(&tx, u.id, limits.mfa).await? {
                // A right password of an account with a second factor (or one that must
                // enrol) is not yet a login: no session, no count reset, no hash upgrade (it
                // waits for a login without a second step); an mfa_token for the next step.
                // The account's row is share-locked with the hash that was checked still in
                // it, as `record_login` requires it: a password change or reset that commits
                // first refuses this login, one that comes after finds the token and ends it.
                if !mfa::store::share_lock_with_hash(&tx, u.id, &u.password_hash).await? {
                    let failures = throttle::record_failure(&tx, &key).await?;
                    tx.commit().await?;
                    let pad = floor.floor(ratio, tries).saturating_sub(took);
                    let reason = "changed_concurrently";
                    return Ok(Attempt::Failed { key, reason, failures, user, pad });
                }
                let (token, hash) = sessions::new_refresh_token();
                mfa::store::new_token(&tx, &hash, u.id, purpose, limits.mfa.token_ttl_seconds)
                    .await?;
                tx.commit().await?;
                return Ok(Attempt::SecondStep { user: u.clone(), token, purpose });
            }
            match users::record_login(&tx, u.id, &u.password_hash, upgraded.as_deref()).await? {
                Some(record) => {
                    let grant = sessions::open(&tx, u.id, &session_cfg).await?;
                    tx.commit().await?;
                    return Ok(Attempt::Succeeded { user: u.clone(), record, grant });
                }
                None => "changed_concurrently",
            }
        }
        (Some(_), Verdict::Match { .. }) => "disabled",
        (Some(_), Verdict::Mismatch) => "wrong_password",
    };
    let failures = throttle::record_failure(&tx, &key).await?;
    tx.commit().await?;
    let pad = floor.floor(ratio, tries).saturating_sub(took);
    Ok(Attempt::Failed { key, reason, failures, user, pad })
}

/// Whether a right password leads to a second step: `login` for an account with an active
/// TOTP factor, `enroll` for one without under MFA_POLICY=required, `None` for a login.
async fn second_step(
    tx: &auth_shared::tokio_postgres::Transaction<'_>,
    user: uuid::Uuid,
    cfg: MfaConfig,
) -> Result<Option<&'static str>, auth_shared::tokio_postgres::Error> {
    Ok(match (mfa::store::has_active(tx, user).await?, cfg.policy) {
        (true, _) => Some("login"),
        (false, mfa::Policy::Required) => Some("enroll"),
        (false, mfa::Policy::Optional) => None,
    })
}

#[cfg(test)]
mod fuzz;
