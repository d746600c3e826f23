//! Makes any HTTP event lambda_http can read into one it can also convert, before it tries.
//!
//! lambda_http 1.3 turns an API Gateway (payload 2.0), Function URL or ALB event into an
//! `http::Request` with `unwrap`s and `expect`s: a `rawQueryString` or `rawPath` holding a
//! character `http::Uri` refuses (a quote, a space, `{`, `|`, `^`, a backtick, non-ASCII, a
//! lone `%`), a `host` header or `domainName` that `url` cannot parse (a port out of range, a
//! space, an empty name), an odd `x-forwarded-proto`, or an `isBase64Encoded` body that is not
//! base64 each panic there, and with `panic = "abort"` the whole container with them. Header
//! names or values `http` refuses fail the whole event instead.
//!
//! [`sanitize`] rewrites those parts of the event's JSON, before lambda_http sees it, into the
//! nearest form that converts: characters a URI may not hold are percent-encoded (RFC 3986
//! §2.1), an unusable host, stage or scheme is dropped (the functions route by API Gateway's
//! route, never by these), unusable headers are dropped, and an undecodable body is replaced
//! by nothing and reported, so the handler answers 400 rather than reading an empty body. The
//! route's normal answer follows: `/health` is 200 whatever the query string holds.

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

/// What [`sanitize`] had to change, for the log line and for the handler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repairs {
    /// The event's parts that were rewritten or dropped (`rawQueryString`, `headers.host`, ...).
    pub fixed: Vec<String>,
    /// The body was marked base64 but is not (or is not a string): the request is malformed.
    pub bad_body: bool,
}

impl Repairs {
    fn note(&mut self, what: impl Into<String>) {
        self.fixed.push(what.into());
    }
}

/// Marks a request whose body could not be read from the event (see [`Repairs::bad_body`]);
/// The body parser (`http::json_body`) answers it with 400 `invalid_json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedBody;

/// RFC 3986 `unreserved` and `sub-delims`, plus `:` and `@`: the `pchar`s besides
/// percent-escapes.
fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

/// Percent-encodes every byte of `s` that `keep` refuses, and every `%` that does not start a
/// two-hex-digit escape. Returns `None` when nothing needed encoding.
fn encode(s: &str, keep: impl Fn(u8) -> bool) -> Option<String> {
    let bytes = s.as_bytes();
    let is_escape = |i: usize| {
        bytes.len() > i + 2 && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit()
    };
    let ok = |i: usize| keep(bytes[i]) || (bytes[i] == b'%' && is_escape(i));
    if (0..bytes.len()).all(ok) {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for (i, &b) in bytes.iter().enumerate() {
        if ok(i) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Some(out)
}

/// A path as `http::Uri` and `url` both take it: `pchar`s and `/`, starting with `/`.
fn clean_path(path: &str) -> Option<String> {
    let encoded = encode(path, |b| is_pchar(b) || b == b'/');
    let p = encoded.as_deref().unwrap_or(path);
    match (p.is_empty() || p.starts_with('/'), encoded.is_some()) {
        (true, false) => None,
        (true, true) => encoded,
        (false, _) => Some(format!("/{p}")),
    }
}

/// A query string as `http::Uri` takes it: `pchar`s, `/` and `?`.
fn clean_query(query: &str) -> Option<String> {
    encode(query, |b| is_pchar(b) || b == b'/' || b == b'?')
}

/// True for a `host` lambda_http can put in a URL: an RFC 3986 authority without user info,
/// whose port (if any) is 0 to 65535, that `url` parses as the host of an https URL.
pub fn valid_host(host: &str) -> bool {
    // `url` takes user info and paths in this position; lambda_http's host never has them.
    if host.contains(['@', '/', '\\', '?', '#']) {
        return false;
    }
    url::Url::parse(&format!("https://{host}/")).is_ok_and(|u| {
        u.host_str().is_some_and(|h| !h.is_empty()) && http::Uri::try_from(u.as_str()).is_ok()
    })
}

/// An API Gateway stage name as lambda_http puts it in front of the path: letters, digits, `-`,
/// `_`, or `$default`.
fn valid_stage(stage: &str) -> bool {
    stage == "$default"
        || (!stage.is_empty()
            && stage.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

fn header_ok(name: &str, value: &Value) -> bool {
    HeaderName::from_bytes(name.as_bytes()).is_ok()
        && matches!(value, Value::String(v) if HeaderValue::from_str(v).is_ok())
        && match name.to_ascii_lowercase().as_str() {
            "host" => value.as_str().is_some_and(valid_host),
            "x-forwarded-proto" => value
                .as_str()
                .is_some_and(|v| v.eq_ignore_ascii_case("http") || v.eq_ignore_ascii_case("https")),
            _ => true,
        }
}

/// Drops the entries of a `headers` object (string values) or a `multiValueHeaders` object
/// (arrays of strings) that lambda_http could not use.
fn clean_headers(headers: &mut Value, field: &str, repairs: &mut Repairs) {
    let Some(map) = headers.as_object_mut() else {
        if !headers.is_null() {
            *headers = Value::Object(Map::new());
            repairs.note(field);
        }
        return;
    };
    let names: Vec<String> = map.keys().cloned().collect();
    for name in names {
        let Some(value) = map.get_mut(&name) else { continue };
        let keep = match value {
            Value::Array(values) => {
                let before = values.len();
                values.retain(|v| header_ok(&name, v));
                if values.len() != before {
                    repairs.note(format!("{field}.{}", name.to_ascii_lowercase()));
                }
                !values.is_empty() && HeaderName::from_bytes(name.as_bytes()).is_ok()
            }
            v => header_ok(&name, v),
        };
        if !keep {
            map.remove(&name);
            repairs.note(format!("{field}.{}", name.to_ascii_lowercase()));
        }
    }
}

/// Keeps the string-valued (or array-of-strings) entries of a query parameter object.
fn clean_params(params: &mut Value, field: &str, repairs: &mut Repairs) {
    let Some(map) = params.as_object_mut() else {
        if !params.is_null() {
            *params = Value::Null;
            repairs.note(field);
        }
        return;
    };
    let before = map.len();
    map.retain(|_, v| match v {
        Value::String(_) => true,
        Value::Array(a) => a.iter().all(Value::is_string),
        _ => false,
    });
    if map.len() != before {
        repairs.note(field);
    }
}

fn clean_string(
    obj: &mut Map<String, Value>,
    key: &str,
    clean: fn(&str) -> Option<String>,
    repairs: &mut Repairs,
) {
    match obj.get(key) {
        Some(Value::String(s)) => {
            if let Some(fixed) = clean(s) {
                obj.insert(key.to_owned(), Value::String(fixed));
                repairs.note(key);
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => {
            obj.remove(key);
            repairs.note(key);
        }
    }
}

/// Rewrites the parts of an HTTP event that lambda_http could not convert (see the module
/// docs). Events that are not JSON objects are left alone: they are not HTTP events, and fail
/// as such.
pub fn sanitize(event: &mut Value) -> Repairs {
    let mut repairs = Repairs::default();
    let Some(obj) = event.as_object_mut() else { return repairs };
    clean_string(obj, "rawPath", clean_path, &mut repairs);
    clean_string(obj, "path", clean_path, &mut repairs);
    clean_string(obj, "rawQueryString", clean_query, &mut repairs);
    for field in ["headers", "multiValueHeaders"] {
        if let Some(h) = obj.get_mut(field) {
            clean_headers(h, field, &mut repairs);
        }
    }
    for field in ["queryStringParameters", "multiValueQueryStringParameters"] {
        if let Some(p) = obj.get_mut(field) {
            clean_params(p, field, &mut repairs);
        }
    }
    if let Some(Value::Object(ctx)) = obj.get_mut("requestContext") {
        if ctx
            .get("domainName")
            .is_some_and(|d| !d.as_str().is_some_and(valid_host) && !d.is_null())
        {
            ctx.insert("domainName".into(), Value::Null);
            repairs.note("requestContext.domainName");
        }
        if ctx.get("stage").is_some_and(|s| !s.as_str().is_some_and(valid_stage) && !s.is_null()) {
            ctx.insert("stage".into(), Value::Null);
            repairs.note("requestContext.stage");
        }
    }
    let base64 = obj.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false);
    let body_ok = match obj.get("body") {
        None | Some(Value::Null) => true,
        Some(Value::String(b)) => !base64 || STANDARD.decode(b).is_ok(),
        Some(_) => false,
    };
    if !body_ok {
        obj.insert("body".into(), Value::Null);
        obj.insert("isBase64Encoded".into(), Value::Bool(false));
        repairs.bad_body = true;
        repairs.note("body");
    }
    if obj.get("isBase64Encoded").is_some_and(|b| !b.is_boolean() && !b.is_null()) {
        obj.insert("isBase64Encoded".into(), Value::Bool(false));
        repairs.note("isBase64Encoded");
    }
    repairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parts_are_percent_encoded() {
        assert_eq!(clean_query("x=\"1\""), Some("x=%221%22".into()));
        assert_eq!(clean_query("a=1&b=2/3?c"), None);
        assert_eq!(clean_query("a=%"), Some("a=%25".into()));
        assert_eq!(clean_query("a=%4"), Some("a=%254".into()));
        assert_eq!(clean_query("a=%41"), None);
        assert_eq!(clean_query("a b{|}^`é"), Some("a%20b%7B%7C%7D%5E%60%C3%A9".into()));
        assert_eq!(clean_path("/health"), None);
        assert_eq!(clean_path("health"), Some("/health".into()));
        assert_eq!(clean_path(":99999"), Some("/:99999".into()));
        assert_eq!(clean_path("/a b"), Some("/a%20b".into()));
        assert_eq!(clean_path(""), None);
    }

    #[test]
    fn hosts_are_checked_as_url_parses_them() {
        for good in
            ["auth.example.com", "auth.example.com:443", "127.0.0.1:3000", "[::1]:8080", "x"]
        {
            assert!(valid_host(good), "{good}");
        }
        for bad in
            ["", "auth.example.com:99999", "a b", "a:b:c", "user@host", "host:-1", "h/x", " "]
        {
            assert!(!valid_host(bad), "{bad}");
        }
    }
}
