//! `POST /verify-email`: proves an address with what its mail carried (docs/accounts.md).
//!
//! - A sign-up: `{"email", "code", "password"}` or `{"token", "password"}`: the sign-up's own
//!   password as well, so whoever first typed someone else's address cannot have its owner
//!   activate the stranger's password (account pre-hijacking).
//! - An email change: `{"email", "code"}` (the new address) or `{"token"}`; and the old
//!   address's revert link, `{"token"}`, which restores it and ends every session.
//!
//! 200 `{"status": "verified", "email": "..."}`; it signs nobody in. 400 `invalid_code`, one
//! body for an unknown, expired, used, replaced or over-tried code and for a wrong sign-up
//! password. The checks and what they lock are in `auth_shared::accounts::confirm`.

use auth_shared::accounts::confirm::{self, Confirmed};
use auth_shared::accounts::{self, Job, NoticeWhat};
use auth_shared::codes::Presented;
use auth_shared::http::{self, ApiError};
use auth_shared::identifier::MAX_IDENTIFIER_CHARS;
use auth_shared::password::MAX_PASSWORD_CHARS;
use auth_shared::route::Route;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

/// What the function keeps between invocations: the account parts and the data key.
pub use auth_shared::state::CodeState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> = Route {
    path: "/verify-email",
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
    email: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    code: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    token: Option<String>,
    #[serde(default, deserialize_with = "http::present_string")]
    password: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"email": string, "code": string} or {"token": string}, with "password": string for a sign-up"#;

/// The longest token accepted before it is looked at (a real one has 60 characters).
const MAX_TOKEN_CHARS: usize = 200;

#[derive(serde::Serialize)]
struct Verified<'a> {
    status: &'static str,
    email: &'a str,
}

/// A body's code or token, with the address a code needs.
pub(crate) fn presented(
    email: Option<String>,
    code: Option<String>,
    token: Option<String>,
) -> Result<(Option<String>, PresentedOwned), ApiError> {
    let invalid = |why: &str| ApiError::InvalidRequest(why.to_owned());
    match (email, code, token) {
        (Some(email), Some(code), None) => {
            let email = accounts::required("email", Some(email), MAX_IDENTIFIER_CHARS)?;
            // The shape of a code is checked as it is compared: letters, 7 digits or an
            // empty one are refused as any wrong code is, with 400 invalid_code.
            let code =
                accounts::required("code", Some(code), 100).map_err(|_| ApiError::InvalidCode)?;
            Ok((Some(email), PresentedOwned::Code(code)))
        }
        (None, None, Some(token)) => {
            let token = accounts::required("token", Some(token), MAX_TOKEN_CHARS)
                .map_err(|_| ApiError::InvalidCode)?;
            Ok((None, PresentedOwned::Token(token)))
        }
        (_, Some(_), Some(_)) => Err(invalid("Give a code (with email) or a token, not both.")),
        (None, Some(_), None) => Err(invalid("A code needs the email it was sent to.")),
        (Some(_), None, None) => {
            Err(invalid("Give the code the mail carried, or its link's token."))
        }
        (_, None, None) => Err(invalid("Give a code (with email) or a token.")),
        (Some(_), None, Some(_)) => Err(invalid("A token needs no email; send the token alone.")),
    }
}

/// An owned [`Presented`].
#[derive(Clone)]
pub(crate) enum PresentedOwned {
    Code(String),
    Token(String),
}

impl PresentedOwned {
    fn as_presented(&self) -> Presented<'_> {
        match self {
            Self::Code(c) => Presented::Code(c),
            Self::Token(t) => Presented::Token(t),
        }
    }
}

async fn verify(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: VerifyBody = http::json_body(req, SHAPE)?;
    let (email, presented) = presented(body.email, body.code, body.token)?;
    let password = body
        .password
        .map(|p| accounts::required("password", Some(p), MAX_PASSWORD_CHARS))
        .transpose()?;
    let keys = state.keys.clone();
    let hashing = state.account.hashing.clone();
    let db = &state.account.db;
    let deadline = db.config().statement_timeout * 3;
    let outcome = db
        .run_within(deadline, move |c| {
            let (keys, hashing) = (keys.clone(), hashing.clone());
            let (email, presented, password) = (email.clone(), presented.clone(), password.clone());
            Box::pin(async move {
                let tx = c.transaction().await?;
                let out = confirm::verify_email(
                    &tx,
                    &keys,
                    &hashing,
                    email.as_deref(),
                    presented.as_presented(),
                    password.as_deref(),
                )
                .await?;
                tx.commit().await?;
                Ok(out)
            })
        })
        .await?;
    let Ok(confirmed) = outcome else {
        tracing::warn!(event = "verification_failed", "verification_failed");
        return Err(ApiError::InvalidCode);
    };
    let (event, notice) = match &confirmed {
        Confirmed::SignedUp { .. } => ("email_verified", None),
        Confirmed::EmailChanged { user_id, .. } => {
            ("email_changed", Some((*user_id, NoticeWhat::EmailChanged)))
        }
        Confirmed::Reverted { user_id, .. } => {
            ("email_change_reverted", Some((*user_id, NoticeWhat::EmailChangeReverted)))
        }
    };
    let user_id = match &confirmed {
        Confirmed::SignedUp { user_id, .. }
        | Confirmed::EmailChanged { user_id, .. }
        | Confirmed::Reverted { user_id, .. } => *user_id,
    };
    tracing::info!(event, user_id = %user_id, "{event}");
    if let Some((user_id, what)) = notice {
        // The change is made; a notice that cannot be queued is logged, not a failure.
        let job = Job::Notice { id: Job::new_id(), user_id, what };
        if let Err(e) = accounts::enqueue(&state.account.queue, &job).await {
            tracing::error!(error = %e, "a security notice could not be queued");
        }
    }
    Ok(http::json(StatusCode::OK, &Verified { status: "verified", email: confirmed.email() }))
}
