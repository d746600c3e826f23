//! `POST /page/qr.svg`, auth-local only: the QR code of a text as an SVG image, for the page to
//! show an enrolment's `otpauth://` URI to an authenticator app (drawn by the `qrcode` crate).
//! The Lambda functions draw nothing: a client of the API makes its own QR code from
//! `otpauth_uri`. Body `{"text": "..."}` (at most 1024 characters); the text is not logged.

use std::convert::Infallible;

use auth_shared::http::{self as api, ApiError};
use auth_shared::lambda_http::{self, Body};
use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use qrcode::QrCode;
use qrcode::render::svg;

const PATH: &str = "/page/qr.svg";
const METHODS: &[Method] = &[Method::POST];
/// The longest text drawn (an otpauth URI is about 150 characters).
const MAX_TEXT_CHARS: usize = 1024;

/// The route.
pub fn router() -> Router {
    Router::new().route_service(PATH, tower::service_fn(serve))
}

#[derive(serde::Deserialize)]
struct QrBody {
    #[serde(deserialize_with = "api::present_string")]
    text: Option<String>,
}

async fn serve(req: Request) -> Result<Response, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, api::MAX_BODY_BYTES).await.unwrap_or_default();
    let req = lambda_http::Request::from_parts(parts, Body::Binary(bytes.to_vec()));
    let resp = api::respond(PATH, &req, METHODS, async { draw(&req) }).await;
    Ok(crate::to_axum(resp))
}

fn draw(req: &lambda_http::Request) -> Result<lambda_http::Response<Body>, ApiError> {
    let body: QrBody = api::json_body(req, r#"a JSON object {"text": string}"#)?;
    let text = body.text.unwrap_or_default();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::InvalidRequest("The text must be 1 to 1024 characters.".into()));
    }
    let code = QrCode::new(text.as_bytes())
        .map_err(|e| ApiError::InvalidRequest(format!("No QR code holds this text: {e}.")))?;
    let image = code.render::<svg::Color>().min_dimensions(200, 200).build();
    let mut resp = lambda_http::Response::new(Body::Text(image));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn post(body: &str) -> (StatusCode, String) {
        let req = http::Request::builder()
            .method(Method::POST)
            .uri(PATH)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        let resp = router().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_text_is_drawn_as_an_svg_and_bad_bodies_are_problems() {
        let (status, svg) =
            post(r#"{"text":"otpauth://totp/App:alice?secret=JBSWY3DPEHPK3PXP&issuer=App"}"#).await;
        assert_eq!(status, StatusCode::OK);
        assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");
        for bad in ["", "{}", r#"{"text":""}"#, r#"{"text":5}"#, "[1]", "not json"] {
            let (status, body) = post(bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }
        let long = format!(r#"{{"text":"{}"}}"#, "a".repeat(1025));
        assert_eq!(post(&long).await.0, StatusCode::BAD_REQUEST);
    }
}
