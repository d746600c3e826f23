//! HTTP plumbing shared by the handlers: the one problem-response builder (RFC 9457), the
//! error-to-status mapping, body and header parsing, the headers every response carries, and
//! the one log line per request.

use std::future::Future;
use std::time::Instant;

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use lambda_http::{Body, Request, RequestExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::db::DbError;

/// Largest request body accepted by /login.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// The realm of every `WWW-Authenticate` challenge.
pub const REALM: &str = "auth";
/// The request id header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything a handler can answer with besides success; mapped to the contract's problem
/// codes in [`ApiError::into_response`] and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: body empty, not UTF-8, or not JSON.
    #[error("invalid_json: {0}")]
    InvalidJson(&'static str),
    /// 400: JSON of the wrong shape.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// 415: content-type missing or not application/json.
    #[error("unsupported_media_type")]
    UnsupportedMediaType,
    /// 413: body too large.
    #[error("payload_too_large")]
    PayloadTooLarge,
    /// 401 from /login.
    #[error("invalid_credentials")]
    InvalidCredentials,
    /// 401 from /refresh: one answer for every refused refresh token (unknown, expired,
    /// consumed, session ended, account disabled or deleted, password changed).
    #[error("invalid_grant")]
    InvalidGrant,
    /// 400 from /password: the new password breaks the policy; the detail names the rule.
    #[error("weak_password: {0}")]
    WeakPassword(String),
    /// 401 from /profile; `presented` when a token was sent and refused.
    #[error("invalid_token (presented: {presented})")]
    InvalidToken {
        /// Whether a token was sent (adds `error="invalid_token"` to the challenge).
        presented: bool,
    },
    /// 403 from /signup: sign-up is closed, or the address's domain is not on the list.
    #[error("signup_disabled")]
    SignupDisabled,
    /// 409 from /signup: the username is held by an account or a recent sign-up.
    #[error("username_taken")]
    UsernameTaken,
    /// 400: one answer for a code or link that is unknown, expired, used, replaced or
    /// over-tried, and for a wrong sign-up password.
    #[error("invalid_code")]
    InvalidCode,
    /// 401 `invalid_credentials`: a passkey sign-in was refused (one answer for every reason).
    #[error("invalid_credentials")]
    PasskeyRefused,
    /// 400: a passkey registration was refused (an expired or used challenge, another origin
    /// or RP ID, no user verification, a credential registered already); the reason.
    #[error("invalid_passkey")]
    InvalidPasskey(String),
    /// 403: the account has a second factor. After a right password (`/login`) with the
    /// `mfa_token` of the second step (`POST /login/mfa`) and the methods it takes; from a
    /// credential change whose access token's `amr` lacks `mfa`, with neither (sign in again
    /// with the second factor).
    #[error("mfa_required")]
    MfaRequired {
        /// The second step's token (redacted in `Debug`); `None` outside `/login`.
        mfa_token: Option<secrecy::SecretString>,
    },
    /// 403 from `/login` under MFA_POLICY=required: the account has no second factor yet; the
    /// `mfa_token` stands in for an access token and the password at `/mfa/totp` and
    /// `/mfa/totp/verify`.
    #[error("mfa_enrollment_required")]
    MfaEnrollmentRequired {
        /// The enrolment token (redacted in `Debug`).
        mfa_token: secrecy::SecretString,
    },
    /// 404.
    #[error("not_found")]
    NotFound,
    /// 405 with the methods the route allows.
    #[error("method_not_allowed")]
    MethodNotAllowed(&'static [Method]),
    /// 429 with Retry-After.
    #[error("too_many_attempts (retry after {retry_after} s)")]
    TooManyAttempts {
        /// Whole seconds.
        retry_after: u64,
    },
    /// 503: the database (or another dependency) is unavailable. The reason is logged only.
    #[error("service_unavailable: {0}")]
    ServiceUnavailable(String),
    /// 500: never says why to the client; the reason is logged only.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(_) | DbError::Timeout => Self::ServiceUnavailable(e.to_string()),
            DbError::Query(_) => Self::Internal(e.to_string()),
        }
    }
}

/// An RFC 9457 problem document, with the extension members of the second factors' 403s
/// (RFC 9457 §3.2).
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_methods: Option<&'static [&'static str]>,
}

/// What the second step of a login takes (`mfa_methods` of a `mfa_required` problem).
pub const MFA_METHODS: &[&str] = &["totp", "recovery_code"];

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidJson(_)
            | Self::InvalidRequest(_)
            | Self::WeakPassword(_)
            | Self::InvalidCode
            | Self::InvalidPasskey(_) => StatusCode::BAD_REQUEST,
            Self::SignupDisabled
            | Self::MfaRequired { .. }
            | Self::MfaEnrollmentRequired { .. } => StatusCode::FORBIDDEN,
            Self::UsernameTaken => StatusCode::CONFLICT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidCredentials
            | Self::PasskeyRefused
            | Self::InvalidGrant
            | Self::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable snake_case code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidRequest(_) => "invalid_request",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::InvalidCredentials | Self::PasskeyRefused => "invalid_credentials",
            Self::InvalidGrant => "invalid_grant",
            Self::WeakPassword(_) => "weak_password",
            Self::InvalidToken { .. } => "invalid_token",
            Self::SignupDisabled => "signup_disabled",
            Self::UsernameTaken => "username_taken",
            Self::InvalidCode => "invalid_code",
            Self::InvalidPasskey(_) => "invalid_passkey",
            Self::MfaRequired { .. } => "mfa_required",
            Self::MfaEnrollmentRequired { .. } => "mfa_enrollment_required",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::ServiceUnavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::InvalidJson(why) => format!("The request body {why}."),
            Self::InvalidRequest(why) => why.clone(),
            Self::UnsupportedMediaType => "Send the request body as application/json.".into(),
            Self::PayloadTooLarge => {
                format!("The request body is larger than {MAX_BODY_BYTES} bytes.")
            }
            Self::InvalidCredentials => "The identifier or the password is incorrect.".into(),
            Self::InvalidGrant => {
                "The refresh token is invalid, expired, already used or revoked.".into()
            }
            Self::WeakPassword(rule) => format!("The new password is too weak: {rule}."),
            Self::InvalidToken { presented: false } => {
                "This route needs an access token: Authorization: Bearer <token>.".into()
            }
            Self::InvalidToken { presented: true } => {
                "The access token is invalid, expired or revoked.".into()
            }
            Self::SignupDisabled => "Sign-up is not open for this address.".into(),
            Self::UsernameTaken => "This username is taken; choose another.".into(),
            Self::InvalidCode => {
                "The code or link is invalid or has expired; ask for a new one.".into()
            }
            Self::PasskeyRefused => "The passkey sign-in was not accepted.".into(),
            Self::InvalidPasskey(why) => format!("The passkey was not registered: {why}."),
            Self::MfaRequired { mfa_token: Some(_) } => {
                "Give a code from the authenticator app, or a recovery code, at /login/mfa.".into()
            }
            Self::MfaRequired { mfa_token: None } => {
                "This change needs a sign-in with the second factor; sign in again.".into()
            }
            Self::MfaEnrollmentRequired { .. } => {
                "This account must set up a second factor before it can sign in.".into()
            }
            Self::NotFound => "There is nothing at this path.".into(),
            Self::MethodNotAllowed(_) => "This route does not accept this method.".into(),
            Self::TooManyAttempts { retry_after } => {
                format!("Too many attempts; try again in {retry_after} seconds.")
            }
            Self::ServiceUnavailable(_) => {
                "The service is temporarily unavailable; try again shortly.".into()
            }
            Self::Internal(_) => "An internal error occurred.".into(),
        }
    }

    /// The problem response: status, `application/problem+json` body, and the headers the
    /// status calls for (`WWW-Authenticate`, `Allow`, `Retry-After`).
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let detail = self.detail();
        let problem = Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: &detail,
            error: self.code(),
            mfa_token: match &self {
                Self::MfaRequired { mfa_token: Some(t) }
                | Self::MfaEnrollmentRequired { mfa_token: t } => {
                    Some(secrecy::ExposeSecret::expose_secret(t))
                }
                _ => None,
            },
            mfa_methods: match &self {
                Self::MfaRequired { mfa_token: Some(_) } => Some(MFA_METHODS),
                Self::MfaEnrollmentRequired { .. } => Some(&["totp"]),
                _ => None,
            },
        };
        let mut resp = json_with_type(status, &problem, "application/problem+json");
        let h = resp.headers_mut();
        match &self {
            Self::InvalidCredentials
            | Self::PasskeyRefused
            | Self::InvalidGrant
            | Self::InvalidToken { presented: false } => {
                h.insert(header::WWW_AUTHENTICATE, challenge(None));
            }
            Self::InvalidToken { presented: true } => {
                h.insert(header::WWW_AUTHENTICATE, challenge(Some("invalid_token")));
            }
            Self::MethodNotAllowed(allowed) => {
                let list = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
                if let Ok(v) = HeaderValue::from_str(&list) {
                    h.insert(header::ALLOW, v);
                }
            }
            Self::TooManyAttempts { retry_after } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        resp
    }
}

/// A `WWW-Authenticate` challenge (RFC 6750 §3): `Bearer realm="auth"`, plus the error code
/// when a token was presented and refused.
fn challenge(error: Option<&str>) -> HeaderValue {
    let value = match error {
        None => format!(r#"Bearer realm="{REALM}""#),
        Some(code) => format!(r#"Bearer realm="{REALM}", error="{code}""#),
    };
    // Built from constants: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Bearer"))
}

fn json_with_type(
    status: StatusCode,
    value: &impl Serialize,
    content_type: &'static str,
) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut resp = Response::new(Body::Binary(body));
            *resp.status_mut() = status;
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp
        }
        Err(e) => ApiError::Internal(format!("response serialisation failed: {e}")).into_response(),
    }
}

/// 204 No Content.
pub fn no_content() -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// A JSON response.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    json_with_type(status, value, "application/json")
}

/// The request id: Lambda's, or a fresh one where there is no Lambda context (local server).
pub fn request_id(req: &Request) -> String {
    match req.lambda_context_ref() {
        Some(ctx) if !ctx.request_id.is_empty() => ctx.request_id.clone(),
        _ => crate::random::uuid().to_string(),
    }
}

/// The address the request came from: API Gateway's `requestContext.http.sourceIp` (HTTP
/// API, payload 2.0), an ALB's first `X-Forwarded-For` hop, or what auth-local puts in the
/// same place (the TCP peer). `None` when the event carries none; callers count those under
/// one shared key, so a request cannot escape a per-source limit by carrying no source.
pub fn source_ip(req: &Request) -> Option<String> {
    use lambda_http::request::RequestContext;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.http.source_ip.clone().filter(|ip| !ip.is_empty())
        }
        Some(RequestContext::Alb(_)) => req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|ip| ip.trim().to_owned())
            .filter(|ip| !ip.is_empty()),
        _ => None,
    }
}

/// Runs `handler` for `route` if the method is one of `allowed`, then adds the headers every
/// response carries and writes the request's log line. A HEAD request gets the headers of the
/// response without its body.
pub async fn respond<F>(
    route: &'static str,
    req: &Request,
    allowed: &'static [Method],
    handler: F,
) -> Response<Body>
where
    F: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let outcome = if allowed.contains(req.method()) {
        handler.await
    } else {
        Err(ApiError::MethodNotAllowed(allowed))
    };
    finish(route, req, started, outcome)
}

/// Answers a request with an error outside any handler (the local server's 404), with the same
/// headers and log line as [`respond`].
pub fn respond_error(route: &'static str, req: &Request, error: ApiError) -> Response<Body> {
    finish(route, req, Instant::now(), Err(error))
}

fn finish(
    route: &'static str,
    req: &Request,
    started: Instant,
    outcome: Result<Response<Body>, ApiError>,
) -> Response<Body> {
    let request_id = request_id(req);
    let mut resp = match outcome {
        Ok(resp) => resp,
        Err(e) => {
            match &e {
                ApiError::Internal(why) => {
                    tracing::error!(%request_id, route, error = %why, "internal error")
                }
                ApiError::ServiceUnavailable(why) => {
                    tracing::warn!(%request_id, route, error = %why, "dependency unavailable")
                }
                _ => {}
            }
            e.into_response()
        }
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert(X_REQUEST_ID.clone(), v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Nothing is cached unless the handler says so (the public keys are meant to be).
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    if req.method() == Method::HEAD {
        *resp.body_mut() = Body::Empty;
    }
    let status = resp.status().as_u16();
    let duration_ms = millis(started.elapsed());
    tracing::info!(%request_id, method = %req.method(), route, status, duration_ms, "request");
    resp
}

/// True if the content-type is `application/json`, with or without parameters.
fn is_json_content_type(req: &Request) -> bool {
    let mut values = req.headers().get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else { return false };
    let Ok(value) = value.to_str() else { return false };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The raw body bytes, whatever form the event delivered them in.
pub fn body_bytes(req: &Request) -> &[u8] {
    req.body().as_ref()
}

/// A duration in milliseconds, rounded to the microsecond (`0.021`, not
/// `0.021369000000000003`): what `latency_ms` fields and request logs show.
pub fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Parses a JSON request body of at most [`MAX_BODY_BYTES`] into `T`. Error details name the
/// problem but never repeat a value from the body (it may hold a password).
pub fn json_body<T: DeserializeOwned>(req: &Request, shape: &'static str) -> Result<T, ApiError> {
    if !is_json_content_type(req) {
        return Err(ApiError::UnsupportedMediaType);
    }
    if req.extensions().get::<crate::event::MalformedBody>().is_some() {
        return Err(ApiError::InvalidJson("is marked base64 but is not valid base64"));
    }
    let bytes = body_bytes(req);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson("is empty"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ApiError::InvalidJson("is not UTF-8"))?;
    if !text.trim_start().starts_with('{') {
        // serde would read a struct from an array too; the contract wants an object.
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => ApiError::InvalidRequest(format!("The body must be {shape}.")),
            Err(_) => ApiError::InvalidJson("is not valid JSON"),
        });
    }
    serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => {
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or("");
                if msg.starts_with("missing field") || msg.starts_with("duplicate field") {
                    ApiError::InvalidRequest(format!("The body must be {shape} ({msg})."))
                } else {
                    ApiError::InvalidRequest(format!("The body must be {shape}."))
                }
            }
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::InvalidJson("is not valid JSON")
            }
        }
    })
}

/// A `#[serde(deserialize_with)]` for optional string members of request bodies: absent is
/// `None` (with `#[serde(default)]`), a string is `Some`, and `null` or any other type is an
/// error (400 `invalid_request`), never silently absent.
pub fn present_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    <String as serde::Deserialize>::deserialize(d).map(Some)
}

/// The bearer token of the Authorization header (RFC 6750 §2.1).
pub fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(ApiError::InvalidToken { presented: false });
    };
    let refused = ApiError::InvalidToken { presented: true };
    if values.next().is_some() {
        return Err(refused);
    }
    let value = value.to_str().map_err(|_| ApiError::InvalidToken { presented: true })?;
    let (scheme, token) =
        value.trim().split_once(' ').ok_or(ApiError::InvalidToken { presented: true })?;
    let token = token.trim_start_matches(' ');
    let token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || !token.chars().all(token68) {
        return Err(refused);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req_with(headers: &[(&str, &str)], body: &str) -> Request {
        let mut b = http::Request::builder().method("POST").uri("/login");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::Text(body.into())).unwrap()
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Shape {
        a: String,
    }

    #[test]
    fn problems_have_the_contract_shape() {
        let resp = ApiError::TooManyAttempts { retry_after: 4 }.into_response();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "4");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let Body::Binary(b) = resp.body() else { panic!() };
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        assert_eq!(v["type"], "about:blank");
        assert_eq!(v["title"], "Too Many Requests");
        assert_eq!(v["status"], 429);
        assert_eq!(v["error"], "too_many_attempts");
        let resp = ApiError::InvalidToken { presented: true }.into_response();
        assert_eq!(
            resp.headers()["www-authenticate"],
            r#"Bearer realm="auth", error="invalid_token""#
        );
        let resp = ApiError::MethodNotAllowed(&[Method::GET, Method::HEAD]).into_response();
        assert_eq!(resp.headers()["allow"], "GET, HEAD");
    }

    #[test]
    fn bodies_are_checked_in_order() {
        let shape = "an object";
        let ok = req_with(&[("content-type", "application/json; charset=utf-8")], r#"{"a":"x"}"#);
        assert_eq!(json_body::<Shape>(&ok, shape).unwrap().a, "x");
        let codes = [
            (req_with(&[], r#"{"a":"x"}"#), "unsupported_media_type"),
            (req_with(&[("content-type", "text/plain")], r#"{"a":"x"}"#), "unsupported_media_type"),
            (req_with(&[("content-type", "application/json")], ""), "invalid_json"),
            (req_with(&[("content-type", "application/json")], "{"), "invalid_json"),
            (req_with(&[("content-type", "application/json")], "[1]"), "invalid_request"),
            (req_with(&[("content-type", "application/json")], r#"["x"]"#), "invalid_request"),
            (req_with(&[("content-type", "application/json")], "\"x\""), "invalid_request"),
            (req_with(&[("content-type", "application/json")], "null"), "invalid_request"),
            (
                req_with(&[("content-type", "application/json")], r#"{"a":"x"} trailing"#),
                "invalid_json",
            ),
            (
                req_with(
                    &[("content-type", "application/json")],
                    &format!("{{\"b\":{}}}", "[".repeat(3000)),
                ),
                "invalid_json",
            ),
            (req_with(&[("content-type", "application/json")], r#"{"a":1}"#), "invalid_request"),
            (
                req_with(&[("content-type", "application/json")], r#"{"a":"x","a":"y"}"#),
                "invalid_request",
            ),
            (
                req_with(&[("content-type", "application/json")], &"x".repeat(9000)),
                "payload_too_large",
            ),
            (req_with(&[("content-type", "application/json")], &"[".repeat(5000)), "invalid_json"),
        ];
        for (req, want) in codes {
            assert_eq!(json_body::<Shape>(&req, shape).unwrap_err().code(), want);
        }
        let secret = req_with(&[("content-type", "application/json")], r#"{"a":123456789}"#);
        let ApiError::InvalidRequest(d) = json_body::<Shape>(&secret, shape).unwrap_err() else {
            panic!()
        };
        assert!(!d.contains("123456789"), "{d}");
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        let get = |v: Option<&str>| {
            let mut b = http::Request::builder();
            if let Some(v) = v {
                b = b.header("authorization", v);
            }
            bearer_token(&b.body(Body::Empty).unwrap()).map(str::to_owned)
        };
        assert_eq!(get(Some("Bearer abc.def.ghi")).unwrap(), "abc.def.ghi");
        assert_eq!(get(Some("bearer   abc")).unwrap(), "abc");
        assert!(matches!(get(None), Err(ApiError::InvalidToken { presented: false })));
        for bad in ["Bearer", "Bearer ", "Basic abc", "Bearer a b", "Bearer a,b", "Token abc"] {
            assert!(
                matches!(get(Some(bad)), Err(ApiError::InvalidToken { presented: true })),
                "{bad}"
            );
        }
    }
}
