//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`: the public keys
//! that verify our tokens (RFC 7517), and the OpenID Connect Discovery 1.0 document that points
//! verifiers (API Gateway's JWT authorizer, PyJWT's `PyJWKClient`, jose) at them.
//!
//! The JWKS lists the public halves of the AWSCURRENT, AWSPREVIOUS and AWSPENDING versions of
//! an RS256 signing key, so a verifier knows a key before it signs anything
//! (JWKS_PUBLISH_LEAD_SECONDS); with HS256 it is empty, since an HMAC key has no public half.
//! It reads them from the public keys' secret (SIGNING_PUBLIC_SECRET_ARN, which the rotation
//! function keeps in step with the signing secret; see `auth_shared::signing::public_keys`), never from
//! the signing secret: it holds no private key. No database. One function, two routes: each has its [`Route`], and [`handle`] (what the
//! Lambda binary runs behind both) dispatches by path.

use auth_shared::http::{self, ApiError};
use auth_shared::route::Route;
use auth_shared::signing::Jwk;
use lambda_http::http::header::{CACHE_CONTROL, HeaderValue};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// What the function keeps between invocations: the issuer and, with RS256, the public keys.
pub use auth_shared::state::PublicKeysState as State;

/// How long a verifier may cache either document. Short beside the publishing lead
/// (JWKS_PUBLISH_LEAD_SECONDS), so a new key is seen long before it signs.
pub const CACHE_CONTROL_VALUE: &str = "public, max-age=300";

/// The path of the key set, relative to the issuer.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The key set's route.
pub const JWKS_ROUTE: Route<State> = Route {
    path: JWKS_PATH,
    methods: &[Method::GET, Method::HEAD],
    handle: |s, r| Box::pin(handle_jwks(s, r)),
};

/// The discovery document's route.
pub const DISCOVERY_ROUTE: Route<State> = Route {
    path: "/.well-known/openid-configuration",
    methods: &[Method::GET, Method::HEAD],
    handle: |s, r| Box::pin(handle_discovery(s, r)),
};

/// The handler behind both routes (the Lambda binary's): dispatches by path.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    let path = req.uri().path();
    if path.ends_with(JWKS_ROUTE.path) {
        handle_jwks(state, req).await
    } else if path.ends_with(DISCOVERY_ROUTE.path) {
        handle_discovery(state, req).await
    } else {
        http::respond_error("(unknown)", &req, ApiError::NotFound)
    }
}

/// `GET /.well-known/jwks.json`.
pub async fn handle_jwks(state: &State, req: Request) -> Response<Body> {
    http::respond(JWKS_ROUTE.path, &req, JWKS_ROUTE.methods, jwks(state)).await
}

/// `GET /.well-known/openid-configuration`.
pub async fn handle_discovery(state: &State, req: Request) -> Response<Body> {
    http::respond(DISCOVERY_ROUTE.path, &req, DISCOVERY_ROUTE.methods, discovery(state)).await
}

/// A JWK Set (RFC 7517 §5).
#[derive(Serialize)]
struct KeySet {
    keys: Vec<Jwk>,
}

/// The discovery fields a verifier needs (OpenID Connect Discovery 1.0 §3).
#[derive(Serialize)]
struct Discovery<'a> {
    issuer: &'a str,
    jwks_uri: String,
    id_token_signing_alg_values_supported: [&'static str; 1],
    subject_types_supported: [&'static str; 1],
    response_types_supported: [&'static str; 1],
}

fn cacheable(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_VALUE));
    resp
}

/// The Cache-Control of an RS256 key set with no key (a public keys' secret not written yet):
/// not to be cached, so verifiers see the keys as soon as a rotation writes them.
pub const EMPTY_CACHE_CONTROL_VALUE: &str = "no-store";

async fn jwks(state: &State) -> Result<Response<Body>, ApiError> {
    let keys = match &state.keys {
        Some(keys) => keys.jwks().await.to_vec(),
        None => Vec::new(),
    };
    let empty_rs256 = keys.is_empty() && state.keys.is_some();
    let mut resp = cacheable(http::json(StatusCode::OK, &KeySet { keys }));
    if empty_rs256 {
        resp.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(EMPTY_CACHE_CONTROL_VALUE));
    }
    Ok(resp)
}

async fn discovery(state: &State) -> Result<Response<Body>, ApiError> {
    let issuer = state.tokens.issuer.as_str();
    let body = Discovery {
        issuer,
        jwks_uri: format!("{}{JWKS_PATH}", issuer.trim_end_matches('/')),
        id_token_signing_alg_values_supported: [state.alg.name()],
        subject_types_supported: ["public"],
        response_types_supported: ["token"],
    };
    Ok(cacheable(http::json(StatusCode::OK, &body)))
}
