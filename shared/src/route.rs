//! What a function tells the servers that host it: the path it serves, the methods it accepts
//! and its handler. The Lambda binaries run the handler behind API Gateway's route; `auth-local`
//! mounts every function's [`Route`] on one HTTP server, one line per route.

use http::Method;
use lambda_http::{Body, Request, Response};

use crate::db::BoxFuture;

/// A function's handler as a plain fn pointer: (&state, request) -> response future.
pub type Handler<S> = for<'a> fn(&'a S, Request) -> BoxFuture<'a, Response<Body>>;

/// One function's route: its path, the methods it accepts, its handler.
///
/// Each function crate exports one as `ROUTE`. `auth-local` mounts it as it is: every request
/// to `path` (whatever its method) reaches `handle`, which answers a method not in `methods`
/// with 405 and `Allow` itself, as it does in Lambda; `auth-local` also lists `methods` in its answers to CORS preflights.
pub struct Route<S: 'static> {
    /// The exact path (API Gateway routes are exact: no trailing slash, no prefix match).
    pub path: &'static str,
    /// The methods the handler serves.
    pub methods: &'static [Method],
    /// The handler.
    pub handle: Handler<S>,
}
