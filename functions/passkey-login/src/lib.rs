//! `POST /passkeys/login`: a sign-in with a passkey.
//!
//! `{"credential": AuthenticationResponseJSON}` answering the options of
//! `/passkeys/login/options`. The challenge in its client data must be one this service signed
//! and still live, and unused: it is recorded as used in the same transaction that, under the
//! locks of `auth_shared::passkeys`' module docs (the account's row, then the passkey's), has
//! the library check the client data (type `webauthn.get`, challenge, origin), the RP ID hash,
//! user presence and verification, the signature and the counter, then advances the counter,
//! records the login and opens a session whose tokens carry `amr` `["hwk","user","mfa"]`: 200,
//! the login body. Every refusal (unknown credential, another account's user handle, a bad
//! signature, no user verification, a replayed, forged or expired challenge, a disabled
//! account, a counter that went backwards) is 401 `invalid_credentials`; a body that is no
//! credential response is 400 `invalid_request`.

use auth_shared::access;
use auth_shared::http::{self, ApiError};
use auth_shared::mfa::check::unix_now;
use auth_shared::mfa::store as mfa_store;
use auth_shared::passkeys::webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PublicKeyCredential, WebauthnError,
};
use auth_shared::passkeys::{self, challenge, response, store};
use auth_shared::route::Route;
use auth_shared::sessions::{self, Grant};
use auth_shared::users::{self, LoginRecord};
use auth_shared::{throttle, tokio_postgres};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// What the function keeps between invocations: database, keys, token and session settings,
/// the data key and the relying party.
pub use auth_shared::state::PasskeyLoginState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> = Route {
    path: "/passkeys/login",
    methods: &[Method::POST],
    handle: |s, r| Box::pin(handle(s, r)),
};

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, login(state, &req)).await
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct LoginBody {
    credential: Option<Value>,
}

const SHAPE: &str = r#"a JSON object {"credential": AuthenticationResponseJSON}"#;

/// Every refusal: one answer, the reason in the log only.
fn refused(reason: &str, user: Option<Uuid>) -> ApiError {
    match user {
        Some(user) => {
            tracing::warn!(event = "login_failed", user_id = %user, method = "passkey", reason, "login_failed")
        }
        None => tracing::warn!(event = "login_failed", method = "passkey", reason, "login_failed"),
    }
    ApiError::PasskeyRefused
}

enum Outcome {
    Passed { passkey: Uuid, username: String, grant: Grant, times: LoginRecord },
    Refused(&'static str),
    CloneSuspected { passkey: Uuid },
}

async fn login(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: LoginBody = http::json_body(req, SHAPE)?;
    let credential = body
        .credential
        .ok_or_else(|| ApiError::InvalidRequest("The credential member is missing.".into()))?;
    let credential =
        response::authentication(&credential).map_err(|e| ApiError::InvalidRequest(e.0))?;
    let user = credential
        .get_user_unique_id()
        .and_then(|h| Uuid::from_slice(h).ok())
        .ok_or_else(|| refused("the user handle is not one of ours", None))?;
    let presented = response::challenge_of(&credential.response.client_data_json)
        .ok_or_else(|| refused("the client data names no challenge", Some(user)))?;
    let expires_at = challenge::check(&state.keys, &presented, unix_now())
        .await
        .map_err(|e| refused(&format!("challenge: {e}"), Some(user)))?;
    // The library's ceremony state, rebuilt around the signed challenge (the library's own
    // serialised form, so every check it makes still applies).
    let ceremony = ceremony_for(state, &presented)?;
    // A container that could not sign a token answers 503 before it uses up a challenge.
    access::signing_key(&*state.token.keys.current().await)?;
    let used = challenge::used_hash(&presented);
    let (rp, cfg) = (state.rp.clone(), state.token.sessions);
    let outcome = state
        .token
        .db
        .run(move |c| {
            let (rp, credential, ceremony) = (rp.clone(), credential.clone(), ceremony.clone());
            Box::pin(async move {
                attempt(c, &rp, &credential, ceremony, user, &used, expires_at, &cfg).await
            })
        })
        .await?;
    match outcome {
        Outcome::Passed { passkey, username, grant, times } => {
            tracing::info!(
                event = "login_succeeded",
                user_id = %user,
                session_id = %grant.session_id,
                method = "passkey",
                passkey_id = %passkey,
                "login_succeeded"
            );
            access::grant_response(&state.token, user, &username, &grant, &times).await
        }
        Outcome::Refused(reason) => Err(refused(reason, Some(user))),
        Outcome::CloneSuspected { passkey } => {
            tracing::error!(
                event = "passkey_clone_suspected",
                user_id = %user,
                passkey_id = %passkey,
                "passkey_clone_suspected"
            );
            Err(refused("the signature counter did not move forward", Some(user)))
        }
    }
}

fn ceremony_for(state: &State, presented: &[u8]) -> Result<DiscoverableAuthentication, ApiError> {
    let internal = |e: String| ApiError::Internal(format!("passkey ceremony state: {e}"));
    let (_, fresh) =
        state.rp.start_discoverable_authentication().map_err(|e| internal(e.to_string()))?;
    let mut v = serde_json::to_value(&fresh).map_err(|e| internal(e.to_string()))?;
    let slot = v.pointer_mut("/ast/challenge").ok_or_else(|| internal("no challenge".into()))?;
    *slot = Value::from(response::encode(presented));
    serde_json::from_value(v).map_err(|e| internal(e.to_string()))
}

#[allow(clippy::too_many_arguments)]
async fn attempt(
    c: &mut tokio_postgres::Client,
    rp: &auth_shared::passkeys::webauthn_rs::Webauthn,
    credential: &PublicKeyCredential,
    ceremony: DiscoverableAuthentication,
    user: Uuid,
    used: &[u8; 32],
    expires_at: u64,
    cfg: &sessions::SessionConfig,
) -> Result<Outcome, tokio_postgres::Error> {
    let tx = c.transaction().await?;
    if !store::use_challenge(&tx, used, expires_at).await? {
        return Ok(Outcome::Refused("the challenge was used already"));
    }
    // The account's attempt lock, its row, then the passkey's: the order of every other login
    // (the attempt lock keeps two sign-ins of one account, which both update its row, in
    // line) and of an account's deletion (row, then its passkeys).
    let (_, username) = tokio::try_join!(
        throttle::lock_account(&tx, user),
        mfa_store::lock_account_row(&tx, user),
    )?;
    let Some(username) = username else {
        tx.commit().await?;
        return Ok(Outcome::Refused("the account is disabled or gone"));
    };
    let Some(held) = store::lock_for_login(&tx, &credential.raw_id, user).await? else {
        tx.commit().await?;
        return Ok(Outcome::Refused("no such passkey for this user handle"));
    };
    let Ok(mut passkey) = serde_json::from_value::<Passkey>(held.credential) else {
        tracing::error!(passkey_id = %held.id, "a stored passkey does not read; refusing it");
        tx.commit().await?;
        return Ok(Outcome::Refused("the stored passkey does not read"));
    };
    let result = match rp.finish_discoverable_authentication_v2(credential, ceremony, &passkey) {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            tx.commit().await?;
            return Ok(Outcome::CloneSuspected { passkey: held.id });
        }
        Err(e) => {
            tracing::info!(error = %e, "passkey assertion refused by the library");
            tx.commit().await?;
            return Ok(Outcome::Refused("the assertion does not verify"));
        }
    };
    if !result.user_verified() {
        tx.commit().await?;
        return Ok(Outcome::Refused("the authenticator did not verify the user"));
    }
    passkey.update_credential(&result);
    let stored = serde_json::to_value(&passkey).unwrap_or(Value::Null);
    if stored.is_null() {
        return Ok(Outcome::Refused("the passkey could not be stored again"));
    }
    let ((), times, grant) = tokio::try_join!(
        store::record_use(&tx, held.id, &stored),
        users::record_second_step_login(&tx, user),
        sessions::open_with(&tx, user, cfg, passkeys::AMR_PASSKEY),
    )?;
    let Some(times) = times else {
        return Ok(Outcome::Refused("the account is disabled"));
    };
    tx.commit().await?;
    Ok(Outcome::Passed { passkey: held.id, username, grant, times })
}
