//! An HTTP proxy in front of moto that misbehaves on demand, the way AWS endpoints do under
//! load or behind a broken network path: it can answer a call with a throttling error, or
//! accept it and never answer. A [`Fault`] applies to every call whose body contains its
//! marker (`""` for every call; `"AWSPREVIOUS"` for one version stage's reads).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// What the proxy does to the calls a fault matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// HTTP 400 `ThrottlingException` (awsJson 1.1's error shape), as Secrets Manager answers
    /// a caller over its request rate.
    Throttle,
    /// Accept the call and never answer.
    Stall,
}

/// A misbehaviour and the calls it applies to.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Calls whose body contains this text ("" matches every call).
    pub marker: String,
    /// What happens to them.
    pub kind: Misbehaviour,
}

/// A running proxy; stops when dropped.
pub struct AwsProxy {
    /// The endpoint to give the SDK (`AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    pub endpoint: String,
    fault: Arc<Mutex<Option<Fault>>>,
    task: tokio::task::JoinHandle<()>,
}

impl AwsProxy {
    /// Proxies to `upstream` (an `http://host:port` endpoint, moto's), behaving until told not
    /// to.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let fault: Arc<Mutex<Option<Fault>>> = Arc::default();
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let f = fault.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (f, upstream, client) = (f.clone(), upstream.clone(), client.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        forward(req, f.clone(), upstream.clone(), client.clone())
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Self { endpoint, fault, task }
    }

    /// From now on, calls matching `marker` get `kind`.
    pub fn misbehave(&self, marker: &str, kind: Misbehaviour) {
        *self.fault.lock().expect("fault") = Some(Fault { marker: marker.to_owned(), kind });
    }

    /// From now on every call is passed through.
    pub fn behave(&self) {
        *self.fault.lock().expect("fault") = None;
    }
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    req: Request<Incoming>,
    fault: Arc<Mutex<Option<Fault>>>,
    upstream: Arc<str>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let fault = fault.lock().expect("fault").clone();
    if let Some(f) = fault
        && String::from_utf8_lossy(&body).contains(&f.marker)
    {
        match f.kind {
            Misbehaviour::Stall => std::future::pending::<()>().await,
            Misbehaviour::Throttle => {
                let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
                let resp = Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .header("content-type", "application/x-amz-json-1.1")
                    .header("x-amzn-errortype", "ThrottlingException")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .expect("response");
                return Ok(resp);
            }
        }
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = Request::builder().method(parts.method).uri(format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        out = out.header(name, value);
    }
    let Ok(out) = out.body(Full::new(body)) else {
        return Ok(Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Full::new(Bytes::new()))
            .expect("response"));
    };
    match client.request(out).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            Ok(Response::from_parts(parts, Full::new(body)))
        }
        Err(_) => Ok(Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Full::new(Bytes::new()))
            .expect("response")),
    }
}
