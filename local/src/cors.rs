//! CORS for the local server, as API Gateway's HttpApi CORS configuration does it in AWS (the
//! functions never add CORS headers): preflights are answered here, and responses to an allowed
//! origin get `Access-Control-Allow-Origin` and the exposed headers.

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use auth_shared::config::{ConfigError, Env};

/// Response headers a browser script may read.
pub const EXPOSED_HEADERS: &str = "Retry-After, WWW-Authenticate, x-request-id";
/// Request headers a browser script may send.
pub const ALLOWED_HEADERS: &str = "authorization, content-type";

/// The allowed origins (CORS_ALLOWED_ORIGINS); empty means CORS is off.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
    any: bool,
}

impl Cors {
    /// Reads CORS_ALLOWED_ORIGINS: comma-separated origins (`https://app.example.com`), or `*`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let Some(raw) = env.optional("CORS_ALLOWED_ORIGINS")? else { return Ok(Self::default()) };
        let mut cors = Self::default();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if origin == "*" {
                cors.any = true;
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
            cors.origins.push(origin.to_ascii_lowercase());
        }
        Ok(cors)
    }

    /// True when at least one origin is allowed.
    pub fn enabled(&self) -> bool {
        self.any || !self.origins.is_empty()
    }

    fn allowed<'a>(&self, headers: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        (self.any || self.origins.contains(&text)).then_some(origin)
    }

    /// True for a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method).
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS
            && headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The answer to a preflight for a route accepting `methods`: 204, with the CORS headers
    /// only when the origin is allowed (a browser then blocks the request itself).
    pub fn preflight<B: Default>(&self, headers: &HeaderMap, methods: &[Method]) -> Response<B> {
        let mut resp = Response::new(B::default());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed(headers) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            let list = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            if let Ok(v) = HeaderValue::from_str(&list) {
                h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
            }
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        resp
    }

    /// Adds the CORS headers to a response for an allowed origin.
    pub fn decorate(&self, request_headers: &HeaderMap, response_headers: &mut HeaderMap) {
        if !self.enabled() {
            return;
        }
        response_headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed(request_headers) {
            response_headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            response_headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
    }
}
