//! `POST /passkeys/login/options`: the options of a passkey sign-in, for anyone.
//!
//! `{}` (or no body). 200 `{"publicKey": PublicKeyCredentialRequestOptions}` (WebAuthn Level 3
//! JSON) with user verification required and no `allowCredentials` (the authenticator offers
//! its discoverable credentials, so the options reveal no account). The challenge is stateless:
//! signed with the data key and naming its expiry (300 s), so this call writes nothing.

use auth_shared::http::{self, ApiError};
use auth_shared::mfa::check::unix_now;
use auth_shared::passkeys::{self, challenge, response};
use auth_shared::route::Route;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// What the function keeps between invocations: the data key and the relying party.
pub use auth_shared::state::ChallengeState as State;

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> = Route {
    path: "/passkeys/login/options",
    methods: &[Method::POST],
    handle: |s, r| Box::pin(handle(s, r)),
};

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, options(state, &req)).await
}

async fn options(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    // Any JSON object is taken (there is nothing to ask for yet); no body at all as well.
    if !http::body_bytes(req).iter().all(u8::is_ascii_whitespace) {
        let _: serde::de::IgnoredAny = http::json_body(req, "a JSON object ({})")?;
    }
    let version =
        state.keys.current().await.map_err(|e| ApiError::ServiceUnavailable(e.to_string()))?;
    let (rcr, _) = state
        .rp
        .start_discoverable_authentication()
        .map_err(|e| ApiError::Internal(format!("the WebAuthn library refused to start: {e}")))?;
    let mut options = serde_json::to_value(&rcr).map_err(|e| ApiError::Internal(e.to_string()))?;
    let signed = challenge::issue(&version, unix_now(), passkeys::LOGIN_TTL_SECONDS);
    let public_key = options
        .get_mut("publicKey")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ApiError::Internal("the library's options have no publicKey".into()))?;
    public_key.insert("challenge".into(), Value::from(response::encode(&signed)));
    public_key.remove("allowCredentials");
    Ok(http::json(StatusCode::OK, &json!({ "publicKey": public_key })))
}
