//! `GET /outbox` (auth-local only, never in AWS): the mail this server's in-process mailer
//! wrote into its outbox folder, newest first, as JSON `[{"file", "to", "subject", "text"}]`
//! (the text part, decoded), for the page at `/` to show and follow. It reads the folder on
//! each request, so mail written while the page is open shows up on the next call.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use auth_shared::http as api;
use auth_shared::lambda_http::{self, Body};
use axum::Router;
use axum::extract::Request;
use http::{Method, StatusCode};

const PATH: &str = "/outbox";
const METHODS: &[Method] = &[Method::GET, Method::HEAD];
/// The most mails listed (the newest ones).
const MAX_MAILS: usize = 200;

#[derive(serde::Serialize)]
struct Listed {
    file: String,
    to: String,
    subject: String,
    text: String,
}

/// The route serving the outbox of `dir`.
pub fn router(dir: PathBuf) -> Router {
    let dir = Arc::new(dir);
    Router::new().route_service(
        PATH,
        tower::service_fn(move |req: Request| {
            let dir = dir.clone();
            async move {
                let (parts, _) = req.into_parts();
                let req = lambda_http::Request::from_parts(parts, Body::Empty);
                let resp = api::respond(PATH, &req, METHODS, async move {
                    Ok(api::json(StatusCode::OK, &list(&dir)))
                })
                .await;
                Ok::<_, Infallible>(crate::to_axum(resp))
            }
        }),
    )
}

/// The folder's `<n>.eml` files, newest (highest n) first; a file that cannot be read or
/// parsed is skipped.
fn list(dir: &std::path::Path) -> Vec<Listed> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<(u64, PathBuf, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_suffix(".eml")?.parse().ok()?;
            Some((n, e.path(), name))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    files
        .into_iter()
        .take(MAX_MAILS)
        .filter_map(|(_, path, file)| {
            let bytes = std::fs::read(path).ok()?;
            let m = mailparse::parse_mail(&bytes).ok()?;
            let header = |name: &str| {
                m.headers
                    .iter()
                    .find(|h| h.get_key().eq_ignore_ascii_case(name))
                    .map(|h| h.get_value())
                    .unwrap_or_default()
            };
            let text = m
                .subparts
                .iter()
                .find(|p| p.ctype.mimetype == "text/plain")
                .and_then(|p| p.get_body().ok())
                .or_else(|| m.get_body().ok())
                .unwrap_or_default();
            Some(Listed { file, to: header("To"), subject: header("Subject"), text })
        })
        .collect()
}
