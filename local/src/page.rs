//! The page at `/`: a person tries sessions by hand (log in, profile, refresh, password change,
//! log out) in a browser. Plain HTML with one inline style and one inline script, embedded in
//! the binary; it talks to the routes of this same server and keeps tokens in memory only.
//!
//! It goes through the same `respond` as the functions (x-request-id, nosniff,
//! `cache-control: no-store`, the log line, 405 with `Allow` for methods other than GET and
//! HEAD) and adds a Content-Security-Policy that allows exactly its own inline script and style
//! (by hash), requests to this origin, and nothing else.

use std::convert::Infallible;
use std::sync::LazyLock;

use auth_shared::http as api;
use auth_shared::lambda_http::{self, Body};
use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use base64::Engine;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use sha2::{Digest, Sha256};

/// The page itself.
const HTML: &str = include_str!("../static/index.html");

const PATH: &str = "/";
const METHODS: &[Method] = &[Method::GET, Method::HEAD];

/// The route serving the page.
pub fn router() -> Router {
    Router::new().route_service(PATH, tower::service_fn(serve))
}

async fn serve(req: Request) -> Result<Response, Infallible> {
    let (parts, _) = req.into_parts();
    let req = lambda_http::Request::from_parts(parts, Body::Empty);
    let resp = api::respond(PATH, &req, METHODS, async { Ok(page()) }).await;
    Ok(crate::to_axum(resp))
}

fn page() -> lambda_http::Response<Body> {
    let mut resp = lambda_http::Response::new(Body::Text(HTML.to_owned()));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// The policy: the page's own inline script and style (by SHA-256), fetches to this origin.
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let policy = format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        source_hash(inline("script")),
        source_hash(inline("style")),
    );
    // Built from base64 and constants: always a valid header value.
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"))
});

/// The text of the page's one `<tag>` element, without attributes.
fn inline(tag: &str) -> Option<&'static str> {
    let open = format!("<{tag}>");
    let start = HTML.find(&open)? + open.len();
    let len = HTML[start..].find(&format!("</{tag}>"))?;
    Some(&HTML[start..start + len])
}

/// A CSP hash source for an inline element's text, or `'none'` when there is no such element.
fn source_hash(text: Option<&str>) -> String {
    text.map_or_else(
        || "'none'".to_owned(),
        |t| {
            let digest = Sha256::digest(t.as_bytes());
            format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn get(method: Method) -> Response {
        let req = http::Request::builder()
            .method(method)
            .uri("/")
            .body(axum::body::Body::empty())
            .unwrap();
        router().oneshot(req).await.unwrap()
    }

    async fn body(resp: Response) -> String {
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn get_serves_the_page_with_its_headers() {
        let resp = get(Method::GET).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h.contains_key("x-request-id"));
        let csp = h["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(body(resp).await.contains("<title>auth-local: try a session</title>"));
    }

    #[tokio::test]
    async fn head_gets_the_headers_without_the_body() {
        let resp = get(Method::HEAD).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        assert!(body(resp).await.is_empty());
    }

    #[tokio::test]
    async fn other_methods_get_the_405_problem() {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            let resp = get(method.clone()).await;
            assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
            assert_eq!(resp.headers()["allow"], "GET, HEAD");
            assert_eq!(resp.headers()["content-type"], "application/problem+json");
            assert!(body(resp).await.contains(r#""error":"method_not_allowed""#));
        }
    }

    #[test]
    fn the_policy_hashes_the_one_inline_script_and_style() {
        for tag in ["script", "style"] {
            assert_eq!(HTML.matches(&format!("<{tag}")).count(), 1, "one <{tag}> element");
            let text = inline(tag).unwrap();
            assert!(text.len() > 100, "{tag}: {text}");
            assert!(CSP.to_str().unwrap().contains(&source_hash(Some(text))));
        }
        // No inline event handlers or style attributes, which hashes do not allow.
        assert!(!HTML.contains(" onclick=") && !HTML.contains(" style="));
    }
}
