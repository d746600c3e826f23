//! Checking an access token, as every endpoint that takes one does (profile, logout, password):
//! the bearer header (RFC 6750 §2.1), the header and `kid`, the signature with that key
//! version, every claim (RFC 7519, RFC 8725), then the account and the session in one round
//! trip: the user must exist and be active, and the token's session (`sid`) must not have
//! ended (a password change ends the session it was made in too, and goes on in a new one, so
//! this is what refuses the tokens signed before it); a token without `sid` must be issued
//! after the second of the last password change. Every refusal is 401 `invalid_token`
//! with `error="invalid_token"` in the challenge; the reason goes to the log only.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use uuid::Uuid;

use crate::http::{self, ApiError};
use crate::sessions;
use crate::state::TokenState;
use crate::token::{self, Claims, TokenError};
use crate::users::{LoginRecord, User};

/// A token that passed every check, with what it names.
#[derive(Debug, Clone)]
pub struct Access {
    /// The verified claims.
    pub claims: Claims,
    /// The account, as read with the check.
    pub user: User,
    /// The token's session, when it has one (see [`Claims::sid`]).
    pub session: Option<Uuid>,
}

fn refused(reason: impl std::fmt::Display) -> ApiError {
    tracing::info!(%reason, "token refused");
    ApiError::InvalidToken { presented: true }
}

/// Verifies the request's bearer token and reads its account and session.
pub async fn authenticate(state: &TokenState, req: &Request) -> Result<Access, ApiError> {
    let token = http::bearer_token(req)?;
    let kid = token::key_id_for(token, state.keys.alg()).map_err(refused)?;
    let key = state.keys.for_kid(&kid).await.ok_or_else(|| refused(TokenError::UnknownKey))?;
    let claims = token::verify(&state.tokens, &key, token, token::now()).map_err(refused)?;
    let id = Uuid::parse_str(&claims.sub).map_err(|_| refused(TokenError::Claims))?;
    let sid = claims.session_id().map_err(refused)?;
    let cfg = state.sessions;
    let found = state
        .db
        .run(move |c| Box::pin(async move { sessions::find_user(c, id, sid, &cfg).await }))
        .await?;
    let Some((user, session_alive)) = found else {
        return Err(refused("account deleted"));
    };
    if !user.is_active() {
        tracing::info!(user_id = %user.id, "token refused: account disabled");
        return Err(ApiError::InvalidToken { presented: true });
    }
    if sid.is_none() && user.tokens_valid_from().is_some_and(|from| claims.iat < from) {
        tracing::info!(user_id = %user.id, "token refused: issued before the last password change");
        return Err(ApiError::InvalidToken { presented: true });
    }
    if !session_alive {
        tracing::info!(user_id = %user.id, session_id = ?sid, "token refused: session ended");
        return Err(ApiError::InvalidToken { presented: true });
    }
    Ok(Access { claims, user, session: sid })
}

/// The version that signs now, or 503 `service_unavailable` when none can be shown to have
/// been published for JWKS_PUBLISH_LEAD_SECONDS (a verifier caching the JWKS would refuse its
/// tokens): see [`crate::signing::keys::KeySet::signing`].
pub fn signing_key(keys: &crate::signing::keys::KeySet) -> Result<&crate::signing::Key, ApiError> {
    keys.signing().map_err(|e| {
        tracing::error!(error = %e, "no signing key can be used; answering 503");
        ApiError::ServiceUnavailable(e.to_string())
    })
}

/// Signs an access token for the session `grant` names and answers with the token response
/// (access token, lifetime, the session's new refresh token). `times.now` comes from the
/// database's clock and dates the token (`iat`). It is signed at once: the token names its
/// session, and what revokes it is that session's end, not its second (see [`authenticate`]).
pub async fn grant_response(
    state: &TokenState,
    user_id: Uuid,
    username: &str,
    grant: &sessions::Grant,
    times: &LoginRecord,
) -> Result<Response<Body>, ApiError> {
    grant_response_with(state, user_id, username, grant, times, None).await
}

/// [`grant_response`] with a new factor's recovery codes in the body (`recovery_codes`).
pub async fn grant_response_with(
    state: &TokenState,
    user_id: Uuid,
    username: &str,
    grant: &sessions::Grant,
    times: &LoginRecord,
    recovery_codes: Option<&[String]>,
) -> Result<Response<Body>, ApiError> {
    let iat = times.now.unix_timestamp();
    let keys = state.keys.current().await;
    let key = signing_key(&keys)?;
    let access_token = token::issue_with_amr(
        &state.tokens,
        key,
        user_id,
        username,
        Some(grant.session_id),
        &grant.amr,
        iat,
    )
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(http::json(
        StatusCode::OK,
        &token::TokenResponse {
            recovery_codes,
            ..token::TokenResponse::bearer(
                &access_token,
                state.tokens.ttl_seconds,
                &grant.refresh_token,
                grant.refresh_expires_in,
            )
        },
    ))
}

/// For a credential change (`/password`, `/email`, `/mfa/...` but the verify of a new factor):
/// an account with an active second factor needs an access token whose `amr` holds `mfa`;
/// another token gets 403 `mfa_required` without an mfa_token (sign in again with the second
/// factor). One round trip, only for tokens without `mfa`.
pub async fn require_second_factor(state: &TokenState, access: &Access) -> Result<(), ApiError> {
    if access.claims.has_mfa() {
        return Ok(());
    }
    let user = access.user.id;
    let enrolled = state
        .db
        .run(move |c| Box::pin(async move { crate::mfa::store::has_active(c, user).await }))
        .await?;
    if enrolled {
        tracing::info!(user_id = %user, "credential change refused: the token has no second factor");
        return Err(ApiError::MfaRequired { mfa_token: None });
    }
    Ok(())
}

/// What checking the current password in a credential change came to ([`confirm_password`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// Right.
    Yes,
    /// Wrong, and counted in the login throttle; the account's consecutive failures now.
    Wrong(i32),
    /// The login throttle locks the account: not checked.
    Locked(u64),
    /// The account is gone or disabled.
    Gone,
}

/// Checks `password` as `/password` checks the current one, in the caller's transaction: the
/// account's attempt lock, its row lock (until the transaction ends, so the change that
/// follows sees the hash that was checked), the throttle, one hash on a hashing slot within one
/// statement's deadline; a wrong one (or one cut off) is counted. The caller commits.
///
/// # Errors
/// The database's.
pub async fn confirm_password(
    tx: &impl tokio_postgres::GenericClient,
    hash: &crate::state::HashState,
    user: Uuid,
    password: String,
) -> Result<Confirmed, tokio_postgres::Error> {
    let key = crate::throttle::lock_account(tx, user).await?;
    let Some(stored) = crate::users::lock_for_password_change(tx, user).await? else {
        return Ok(Confirmed::Gone);
    };
    let (policy, deadline) = (hash.policy, hash.token.db.config().statement_timeout);
    let checked =
        crate::throttle::check_password(tx, &key, &hash.hash_slots, deadline, move || {
            crate::password::verify(&password, &stored, policy)
        })
        .await?;
    Ok(match checked {
        crate::throttle::Checked::Locked { retry_after } => Confirmed::Locked(retry_after),
        crate::throttle::Checked::Done(crate::password::Verdict::Match { .. }) => Confirmed::Yes,
        crate::throttle::Checked::Done(_) | crate::throttle::Checked::Cut => {
            Confirmed::Wrong(crate::throttle::record_failure(tx, &key).await?)
        }
    })
}
