//! `POST /mfa/totp/verify`: confirms the pending TOTP factor with a code from the app.
//!
//! Bearer access token (or, under MFA_POLICY=required, the enrolment `mfa_token` in the body)
//! plus `{"code"}`. A right code for the pending factor makes it the active one (replacing an
//! earlier one), makes ten new recovery codes (the old set is void), raises the current
//! session's `amr` to `["pwd","otp","mfa"]` and ends every other session of the user, in one
//! transaction under the account's attempt lock. 200: the login body for the current session
//! (with an enrolment mfa_token, a new session) plus `"recovery_codes"`, shown only this once.
//! A wrong code is 400 `invalid_code`; no pending factor, 400 `invalid_request`.

use auth_shared::access::{self, Access};
use auth_shared::accounts::{self, NoticeWhat};
use auth_shared::http::{self, ApiError};
use auth_shared::mfa::check::{self, Step};
use auth_shared::mfa::{self, recovery, store, totp};
use auth_shared::route::Route;
use auth_shared::sessions::{self, Grant, Scope};
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
pub const ROUTE: Route<State> = Route {
    path: "/mfa/totp/verify",
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
    code: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    mfa_token: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"code": string}"#;

/// Who confirms: a signed-in session, or an enrolment mfa_token's holder.
#[derive(Clone)]
enum Confirmer {
    Session { user: Uuid, sid: Option<Uuid> },
    Enrolment { user: Uuid, token: [u8; 32] },
}

enum Outcome {
    Enabled { grant: Grant, times: LoginRecord, username: String },
    NoPending,
    Refused(Step),
    Gone,
}

async fn verify(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let signed = req.headers().contains_key(lambda_http::http::header::AUTHORIZATION);
    let access: Option<Access> =
        if signed { Some(access::authenticate(&state.hash.token, req).await?) } else { None };
    let body: VerifyBody = http::json_body(req, SHAPE)?;
    let confirmer = match access {
        Some(a) => Confirmer::Session { user: a.user.id, sid: a.session },
        None => {
            let Some(token) = body.mfa_token else {
                return Err(ApiError::InvalidToken { presented: false });
            };
            let hash = sessions::refresh_token_hash(&token)
                .ok_or(ApiError::InvalidToken { presented: true })?;
            let db = &state.hash.token.db;
            let owner = db
                .run(move |c| {
                    Box::pin(async move { store::live_token_owner(c, &hash, "enroll").await })
                })
                .await?
                .ok_or(ApiError::InvalidToken { presented: true })?;
            Confirmer::Enrolment { user: owner, token: hash }
        }
    };
    let code = body.code.ok_or_else(|| {
        ApiError::InvalidRequest("Give the code from the authenticator app.".into())
    })?;
    if !totp::is_code(&code) {
        return Err(ApiError::InvalidCode);
    }
    access::signing_key(&*state.hash.token.keys.current().await)?;
    let version =
        state.keys.current().await.map_err(|e| ApiError::ServiceUnavailable(e.to_string()))?;
    let codes = recovery::new_set();
    let user = match &confirmer {
        Confirmer::Session { user, .. } | Confirmer::Enrolment { user, .. } => *user,
    };
    let hashes = recovery::hashes(&version, user, &codes);
    let (keys, cfg) = (state.keys.clone(), state.hash.token.sessions);
    let outcome = state
        .hash
        .token
        .db
        .run(move |c| {
            let (keys, confirmer, code, hashes, kv) =
                (keys.clone(), confirmer.clone(), code.clone(), hashes.clone(), version.id.clone());
            Box::pin(async move { confirm(c, &keys, &confirmer, &code, &hashes, &kv, &cfg).await })
        })
        .await?;
    match outcome {
        Outcome::Enabled { grant, times, username } => {
            tracing::info!(
                event = "mfa_enabled",
                user_id = %user,
                session_id = %grant.session_id,
                method = "totp",
                "mfa_enabled"
            );
            accounts::notify(state.hash.mail.as_ref(), user, NoticeWhat::MfaEnabled).await;
            access::grant_response_with(
                &state.hash.token,
                user,
                &username,
                &grant,
                &times,
                Some(&codes),
            )
            .await
        }
        Outcome::NoPending => Err(ApiError::InvalidRequest(
            "No factor is waiting to be confirmed; start again at /mfa/totp.".into(),
        )),
        Outcome::Refused(step) => {
            Err(step.refusal(user, "verify").unwrap_or(ApiError::InvalidCode))
        }
        Outcome::Gone => Err(ApiError::InvalidToken { presented: true }),
    }
}

async fn confirm(
    c: &mut tokio_postgres::Client,
    keys: &auth_shared::data_key::DataKey,
    confirmer: &Confirmer,
    code: &str,
    hashes: &[[u8; 32]],
    key_version: &str,
    cfg: &sessions::SessionConfig,
) -> Result<Outcome, tokio_postgres::Error> {
    let tx = c.transaction().await?;
    let user = match confirmer {
        Confirmer::Session { user, .. } | Confirmer::Enrolment { user, .. } => *user,
    };
    let key = throttle::lock_account(&tx, user).await?;
    let Some(username) = store::lock_account_row(&tx, user).await? else {
        return Ok(Outcome::Gone);
    };
    if let Confirmer::Enrolment { token, .. } = confirmer {
        // An enrolment token is for an account without a factor: once one is active it
        // confirms nothing (it would replace the factor without the second step).
        if !store::lock_token(&tx, token, "enroll").await? || store::has_active(&tx, user).await? {
            return Ok(Outcome::Gone);
        }
    }
    // As every second-factor step: the login throttle and the daily lock refuse first, and a
    // wrong code counts in both (and against an enrolment token).
    let (throttle, daily) =
        tokio::try_join!(throttle::status(&tx, &key), store::daily_lock(&tx, user))?;
    if let throttle::Status::Locked { retry_after } = throttle {
        return Ok(Outcome::Refused(Step::Locked { retry_after }));
    }
    if let Some(retry_after) = daily {
        return Ok(Outcome::Refused(Step::Locked { retry_after }));
    }
    let Some(pending) = store::lock_factor(&tx, user, true).await? else {
        return Ok(Outcome::NoPending);
    };
    let step = match check::step_for(keys, user, &pending, code, check::unix_now()).await {
        Ok(Some(step)) => step,
        Ok(None) => {
            let failures = check::count_wrong(&tx, &key, user).await?;
            if let Confirmer::Enrolment { token, .. } = confirmer {
                store::fail_token(&tx, token).await?;
            }
            tx.commit().await?;
            return Ok(Outcome::Refused(Step::Wrong { failures }));
        }
        Err(()) => return Ok(Outcome::Refused(Step::Garbled)),
    };
    store::activate(&tx, user, step).await?;
    store::replace_codes(&tx, user, key_version, hashes).await?;
    let grant = match confirmer {
        Confirmer::Session { sid: Some(sid), .. } => {
            store::set_session_amr(&tx, *sid, mfa::AMR_PASSWORD_AND_OTP).await?;
            sessions::keep_only(
                &tx,
                user,
                Some(*sid),
                cfg,
                "mfa_enabled",
                mfa::AMR_PASSWORD_AND_OTP,
            )
            .await?
        }
        Confirmer::Session { sid: None, .. } | Confirmer::Enrolment { .. } => {
            if let Confirmer::Enrolment { token, .. } = confirmer {
                store::consume_token(&tx, token, user).await?;
            }
            sessions::end(&tx, user, None, Scope::Global, "mfa_enabled").await?;
            sessions::open_with(&tx, user, cfg, mfa::AMR_PASSWORD_AND_OTP).await?
        }
    };
    let Some(times) = users::times(&tx, user).await? else { return Ok(Outcome::Gone) };
    tx.commit().await?;
    Ok(Outcome::Enabled { grant, times, username })
}
