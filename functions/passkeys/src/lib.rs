//! `GET /passkeys` and `DELETE /passkeys/{id}`: the signed-in user's passkeys, one function for
//! the one resource.
//!
//! - `GET /passkeys` (Bearer): 200 `{"passkeys":[{"id","name","created_at","last_used_at"}]}`,
//!   oldest first; never key material.
//! - `DELETE /passkeys/{id}` (Bearer; with an active TOTP factor, a token whose `amr` holds
//!   `mfa`): 204. 404 `not_found` for an id that is not a passkey of this account (another
//!   user's, an unknown one, or not an id at all), so the answer reveals nothing of others.

use auth_shared::access;
use auth_shared::accounts::{self, NoticeWhat};
use auth_shared::http::{self, ApiError};
use auth_shared::passkeys::store;
use auth_shared::route::Route;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use uuid::Uuid;

/// What the function keeps between invocations: database, keys, token settings, the mail
/// queue of the security notices.
pub use auth_shared::state::HashState as State;

/// `GET /passkeys`.
pub const LIST_ROUTE: Route<State> = Route {
    path: "/passkeys",
    methods: &[Method::GET],
    handle: |s, r| Box::pin(handle_list(s, r)),
};

/// `DELETE /passkeys/{id}`.
pub const ITEM_ROUTE: Route<State> = Route {
    path: "/passkeys/{id}",
    methods: &[Method::DELETE],
    handle: |s, r| Box::pin(handle_item(s, r)),
};

/// The handler behind both routes (the Lambda binary's): dispatches by path.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    if req.uri().path().trim_end_matches('/').ends_with(LIST_ROUTE.path) {
        handle_list(state, req).await
    } else {
        handle_item(state, req).await
    }
}

/// `GET /passkeys`.
pub async fn handle_list(state: &State, req: Request) -> Response<Body> {
    http::respond(LIST_ROUTE.path, &req, LIST_ROUTE.methods, list(state, &req)).await
}

/// `DELETE /passkeys/{id}`.
pub async fn handle_item(state: &State, req: Request) -> Response<Body> {
    http::respond(ITEM_ROUTE.path, &req, ITEM_ROUTE.methods, remove(state, &req)).await
}

#[derive(Serialize)]
struct Listing {
    passkeys: Vec<store::Listed>,
}

async fn list(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let user = access::authenticate(&state.token, req).await?.user.id;
    let db = &state.token.db;
    let passkeys = db.run(move |c| Box::pin(async move { store::list(c, user).await })).await?;
    Ok(http::json(StatusCode::OK, &Listing { passkeys }))
}

/// The `{id}` of the path: API Gateway's path parameter, else the path's last segment (the
/// local server, a direct invocation).
fn path_id(req: &Request) -> Option<Uuid> {
    let params = req.path_parameters();
    let raw = match params.first("id") {
        Some(id) => id.to_owned(),
        None => req.uri().path().trim_end_matches('/').rsplit('/').next()?.to_owned(),
    };
    Uuid::parse_str(&raw).ok()
}

async fn remove(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let access = access::authenticate(&state.token, req).await?;
    access::require_second_factor(&state.token, &access).await?;
    let user = access.user.id;
    let id = path_id(req).ok_or(ApiError::NotFound)?;
    let db = &state.token.db;
    let removed =
        db.run(move |c| Box::pin(async move { store::remove(c, user, id).await })).await?;
    if !removed {
        return Err(ApiError::NotFound);
    }
    tracing::info!(event = "passkey_removed", user_id = %user, passkey_id = %id, "passkey_removed");
    accounts::notify(state.mail.as_ref(), user, NoticeWhat::PasskeyRemoved).await;
    Ok(http::no_content())
}
