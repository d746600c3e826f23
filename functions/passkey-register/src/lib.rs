//! `POST /passkeys/register`: finishes a passkey registration started at
//! `/passkeys/register/options`.
//!
//! Bearer access token and `{"credential": RegistrationResponseJSON, "name"?: string}` (a name
//! of 1 to 64 characters; "Passkey" when none is given). The answer's challenge must be a live
//! registration of this account (taken: single use); the library then checks the client data
//! (type `webauthn.create`, the challenge, an allowed origin), the RP ID hash, user
//! verification and the attested key. 201 `{"id","name","created_at"}`. A refused answer
//! (expired or used challenge, another origin or RP ID, no user verification, a credential
//! registered already) is 400 `invalid_passkey`; a body that is no credential response is 400
//! `invalid_request`.

use auth_shared::access;
use auth_shared::accounts::{self, NoticeWhat};
use auth_shared::http::{self, ApiError};
use auth_shared::passkeys::webauthn_rs::prelude::{PasskeyRegistration, WebauthnError};
use auth_shared::passkeys::{self, response, store};
use auth_shared::route::Route;
use auth_shared::throttle;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the function keeps between invocations: database, keys, token settings, the mail
/// queue (the security notice) and the relying party.
pub use auth_shared::state::PasskeyState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> = Route {
    path: "/passkeys/register",
    methods: &[Method::POST],
    handle: |s, r| Box::pin(handle(s, r)),
};

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, register(state, &req)).await
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct RegisterBody {
    credential: Option<Value>,
    #[serde(default)]
    name: Option<Value>,
}

const SHAPE: &str =
    r#"a JSON object {"credential": RegistrationResponseJSON, "name": string (optional)}"#;

/// The answer.
#[derive(Serialize)]
struct Registered {
    id: uuid::Uuid,
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
}

enum Stored {
    New(uuid::Uuid, time::OffsetDateTime),
    Taken,
    TooMany,
}

fn refused(why: &str) -> ApiError {
    tracing::info!(reason = why, "passkey registration refused");
    ApiError::InvalidPasskey(why.to_owned())
}

/// The passkey's name: trimmed, 1 to 64 characters, no control characters.
fn name_of(name: Option<Value>) -> Result<String, ApiError> {
    let name = match name {
        None | Some(Value::Null) => return Ok("Passkey".into()),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => return Err(ApiError::InvalidRequest("The name must be a string.".into())),
    };
    if !(1..=passkeys::MAX_NAME_CHARS).contains(&name.chars().count())
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::InvalidRequest(
            "The name must be 1 to 64 characters, without control characters.".into(),
        ));
    }
    Ok(name)
}

/// What a library refusal tells the caller (the detail is the reason, never key material).
fn reason(e: &WebauthnError) -> &'static str {
    match e {
        WebauthnError::InvalidRPOrigin => {
            "the answer comes from an origin this service does not allow"
        }
        WebauthnError::InvalidRPIDHash => "the answer is for another relying party (RP ID)",
        WebauthnError::UserNotVerified => "the authenticator did not verify the user",
        WebauthnError::InvalidClientDataType => "the client data is not of a registration",
        WebauthnError::MismatchedChallenge => "the answer is for another challenge",
        _ => "the authenticator's answer does not verify",
    }
}

async fn register(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let token = &state.hash.token;
    let access = access::authenticate(token, req).await?;
    let body: RegisterBody = http::json_body(req, SHAPE)?;
    access::require_second_factor(token, &access).await?;
    let user = access.user.id;
    let name = name_of(body.name)?;
    let credential = body
        .credential
        .ok_or_else(|| ApiError::InvalidRequest("The credential member is missing.".into()))?;
    let credential =
        response::registration(&credential).map_err(|e| ApiError::InvalidRequest(e.0))?;
    let challenge = response::challenge_of(&credential.response.client_data_json)
        .ok_or_else(|| refused("the client data names no challenge"))?;
    let db = &token.db;
    let ceremony = {
        let challenge = challenge.clone();
        db.run(move |c| {
            let challenge = challenge.clone();
            Box::pin(async move { store::take_registration(c, &challenge, user).await })
        })
        .await?
    }
    .ok_or_else(|| refused("the challenge is unknown, used, expired or another account's"))?;
    let ceremony: PasskeyRegistration = serde_json::from_value(ceremony)
        .map_err(|e| ApiError::Internal(format!("a stored registration does not read: {e}")))?;
    let passkey = state
        .rp
        .finish_passkey_registration(&credential, &ceremony)
        .map_err(|e| refused(reason(&e)))?;
    let credential_id = passkey.cred_id().to_vec();
    if !passkeys::CREDENTIAL_ID_BYTES.contains(&credential_id.len()) {
        return Err(refused("the credential id is not 16 to 1023 bytes long"));
    }
    let stored = serde_json::to_value(&passkey).map_err(|e| ApiError::Internal(e.to_string()))?;
    let inserted = {
        let name = name.clone();
        db.run(move |c| {
            let (name, stored, credential_id) =
                (name.clone(), stored.clone(), credential_id.clone());
            Box::pin(async move {
                let tx = c.transaction().await?;
                throttle::lock_account(&tx, user).await?;
                if store::count(&tx, user).await? >= passkeys::MAX_PASSKEYS {
                    return Ok(Stored::TooMany);
                }
                let row = store::insert(&tx, user, &credential_id, &name, &stored).await?;
                tx.commit().await?;
                Ok(row.map_or(Stored::Taken, |(id, at)| Stored::New(id, at)))
            })
        })
        .await?
    };
    let (id, created_at) = match inserted {
        Stored::New(id, at) => (id, at),
        Stored::Taken => return Err(refused("this passkey is registered already")),
        Stored::TooMany => {
            return Err(refused(
                "the account holds the most passkeys it may (25); remove one first",
            ));
        }
    };
    tracing::info!(event = "passkey_registered", user_id = %user, passkey_id = %id, "passkey_registered");
    accounts::notify(state.hash.mail.as_ref(), user, NoticeWhat::PasskeyAdded).await;
    Ok(http::json(StatusCode::CREATED, &Registered { id, name, created_at }))
}
