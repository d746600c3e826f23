//! `POST /passkeys/register/options`: starts the registration of a passkey for the signed-in
//! user.
//!
//! Bearer access token of a verified account, and `{"password"}` (checked and throttled as at
//! `/password`, so a stolen access token alone cannot add a way in) or a token whose `amr` holds
//! `mfa`; with an active TOTP factor only the latter. 200 `{"publicKey":
//! PublicKeyCredentialCreationOptions}` (WebAuthn Level 3 JSON): a discoverable credential
//! (`residentKey: "required"`) with user verification required, the account's passkeys in
//! `excludeCredentials`, a fresh 32-byte challenge whose ceremony state waits in PostgreSQL for
//! 300 s, bound to this account, for one `POST /passkeys/register`.

use auth_shared::access::{self, Confirmed};
use auth_shared::http::{self, ApiError};
use auth_shared::passkeys::{self, response, store};
use auth_shared::route::Route;
use auth_shared::throttle;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::Value;

/// What the function keeps between invocations: database, keys, token settings, hashing and
/// the relying party.
pub use auth_shared::state::PasskeyState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> = Route {
    path: "/passkeys/register/options",
    methods: &[Method::POST],
    handle: |s, r| Box::pin(handle(s, r)),
};

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, options(state, &req)).await
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct OptionsBody {
    #[serde(default, deserialize_with = "http::present_string")]
    password: Option<String>,
}

const SHAPE: &str =
    r#"a JSON object {"password": string} (or {} with a token whose amr holds mfa)"#;

enum Started {
    Stored,
    Refused(Confirmed),
    TooMany,
}

async fn options(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let token = &state.hash.token;
    let access = access::authenticate(token, req).await?;
    let body: OptionsBody = http::json_body(req, SHAPE)?;
    let user = access.user.id;
    if !access.user.email_verified {
        return Err(ApiError::InvalidRequest(
            "Verify the account's email address before adding a passkey.".into(),
        ));
    }
    // With a TOTP factor, only a sign-in that showed it may add a way in.
    access::require_second_factor(token, &access).await?;
    let password = match (access.claims.has_mfa(), body.password) {
        (true, _) => None,
        (false, Some(p)) => Some(p),
        (false, None) => {
            return Err(ApiError::InvalidRequest(
                "Give the current password to add a passkey.".into(),
            ));
        }
    };
    if let Some(p) = &password
        && !(1..=auth_shared::password::MAX_PASSWORD_CHARS).contains(&p.chars().count())
    {
        return Err(ApiError::InvalidRequest("The password must be 1 to 1024 characters.".into()));
    }
    let exclude = {
        let db = &token.db;
        db.run(move |c| Box::pin(async move { store::credential_ids(c, user).await })).await?
    };
    let name = &access.user.username;
    let (ccr, registration) = state
        .rp
        .start_passkey_registration(user, name, name, Some(exclude))
        .map_err(|e| ApiError::Internal(format!("the WebAuthn library refused to start: {e}")))?;
    let mut options = serde_json::to_value(&ccr).map_err(|e| ApiError::Internal(e.to_string()))?;
    // A discoverable credential, so that sign-in needs no username (the library asks for one
    // opportunistically only, as security keys with few slots can be filled up).
    if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
        sel["residentKey"] = Value::from("required");
        sel["requireResidentKey"] = Value::from(true);
    }
    let challenge = options
        .pointer("/publicKey/challenge")
        .and_then(Value::as_str)
        .and_then(response::decode)
        .ok_or_else(|| ApiError::Internal("the options carry no challenge".into()))?;
    let ceremony =
        serde_json::to_value(&registration).map_err(|e| ApiError::Internal(e.to_string()))?;
    let hash = state.hash.clone();
    let deadline = token.db.config().statement_timeout * 3;
    let outcome = token
        .db
        .run_within(deadline, move |c| {
            let (hash, password, ceremony, challenge) =
                (hash.clone(), password.clone(), ceremony.clone(), challenge.clone());
            Box::pin(async move {
                let tx = c.transaction().await?;
                match password {
                    Some(password) => {
                        let confirmed =
                            access::confirm_password(&tx, &hash, user, password).await?;
                        if confirmed != Confirmed::Yes {
                            tx.commit().await?;
                            return Ok(Started::Refused(confirmed));
                        }
                    }
                    None => {
                        throttle::lock_account(&tx, user).await?;
                    }
                }
                if store::count(&tx, user).await? >= passkeys::MAX_PASSKEYS {
                    return Ok(Started::TooMany);
                }
                store::put_registration(
                    &tx,
                    &challenge,
                    user,
                    &ceremony,
                    passkeys::REGISTRATION_TTL_SECONDS,
                )
                .await?;
                tx.commit().await?;
                Ok(Started::Stored)
            })
        })
        .await?;
    match outcome {
        Started::Stored => {}
        Started::TooMany => {
            return Err(ApiError::InvalidRequest(format!(
                "An account holds at most {} passkeys; remove one first.",
                passkeys::MAX_PASSKEYS
            )));
        }
        Started::Refused(Confirmed::Wrong(failures)) => {
            tracing::warn!(event = "login_failed", user_id = %user, reason = "wrong_current_password", failures, "login_failed");
            return Err(ApiError::InvalidCredentials);
        }
        Started::Refused(Confirmed::Locked(retry_after)) => {
            tracing::warn!(event = "login_throttled", user_id = %user, retry_after, "login_throttled");
            return Err(ApiError::TooManyAttempts { retry_after });
        }
        Started::Refused(_) => return Err(ApiError::InvalidToken { presented: true }),
    }
    tracing::info!(user_id = %user, "a passkey registration is waiting for its answer");
    Ok(http::json(StatusCode::OK, &options))
}
