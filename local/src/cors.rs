//! CORS for the local server, as API Gateway's HttpApi CORS configuration does it in AWS (the
//! functions never add CORS headers): tower-http's `CorsLayer` answers preflights to the
//! functions' routes and adds the headers to responses for an allowed origin.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use auth_shared::config::{ConfigError, Env};

/// Response headers a browser script may read, spelled as in the template's CORS configuration
/// (CorsLayer's own list would lower-case them).
pub const EXPOSED_HEADERS: &str = "Retry-After, WWW-Authenticate, x-request-id";

/// The allowed origins (CORS_ALLOWED_ORIGINS).
#[derive(Clone)]
pub struct Cors {
    origins: AllowOrigin,
}

/// A service as the router takes it, with or without CORS around it.
pub type Endpoint = BoxCloneSyncService<Request, Response, Infallible>;

impl Cors {
    /// Reads CORS_ALLOWED_ORIGINS: comma-separated origins (`https://app.example.com`), or `*`.
    /// `None` when it is empty: CORS is off.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(raw) = env.optional("CORS_ALLOWED_ORIGINS")? else { return Ok(None) };
        let (mut any, mut origins) = (false, Vec::new());
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if origin == "*" {
                any = true;
                continue;
            }
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && origin.split("://").nth(1).is_some_and(|h| !h.is_empty() && !h.contains('/'));
            if !valid {
                return Err(ConfigError::new(
                    "CORS_ALLOWED_ORIGINS",
                    format!(
                        "has {origin:?}, which is not an origin like https://app.example.com (no path, no trailing slash)"
                    ),
                ));
            }
            origins.push(origin.to_owned());
        }
        let origins = match (any, origins.is_empty()) {
            (true, _) => AllowOrigin::mirror_request(),
            (false, true) => return Ok(None),
            (false, false) => AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                let origin = origin.to_str().unwrap_or_default();
                origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin))
            }),
        };
        Ok(Some(Self { origins }))
    }
}

/// `inner` behind CORS when `cors` is on. On a function's route (`methods` given), a preflight
/// (OPTIONS with Origin and Access-Control-Request-Method) is answered here with 204, and for
/// an allowed origin with the route's methods; a path no function serves (`methods` `None`)
/// answers no preflight. Every other request goes to `inner`, and its response to an allowed
/// origin gets Access-Control-Allow-Origin and the exposed headers.
pub fn wrap<S>(cors: Option<&Cors>, methods: Option<&[Method]>, inner: S) -> Endpoint
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    let Some(cors) = cors else { return BoxCloneSyncService::new(inner) };
    let layer = CorsLayer::new()
        .allow_origin(cors.origins.clone())
        .allow_methods(methods.unwrap_or_default().to_vec())
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
        .vary([header::ORIGIN]);
    let with_cors = layer.layer(inner.clone());
    let route = methods.is_some();
    BoxCloneSyncService::new(tower::service_fn(move |req: Request| {
        let (with_cors, inner) = (with_cors.clone(), inner.clone());
        async move {
            // CorsLayer takes every OPTIONS for a preflight: only real ones on a route reach it.
            if req.method() != Method::OPTIONS {
                let mut resp = with_cors.oneshot(req).await?;
                if resp.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
                    resp.headers_mut().insert(
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        HeaderValue::from_static(EXPOSED_HEADERS),
                    );
                }
                Ok(resp)
            } else if route && is_preflight(&req) {
                let mut resp = with_cors.oneshot(req).await?;
                *resp.status_mut() = StatusCode::NO_CONTENT;
                Ok(resp)
            } else {
                inner.oneshot(req).await
            }
        }
    }))
}

/// True for a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method).
fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}
