//! `auth-local`: the four Lambda handlers (the same functions the Lambda binaries run, no
//! copies) mounted on their real routes in one HTTP server.
//!
//! With no DATABASE_URL it starts a throwaway PostgreSQL from the system's binaries, applies
//! the migrations and creates a demo user whose password it prints once; with DATABASE_URL it
//! applies the migrations and serves that database. With no SECRET_KEY it signs with a random
//! key for the run. Ctrl-C stops it and the PostgreSQL it started.

mod cors;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_shared::config::{DbConfig, Env, KeySource, TokenConfig, pbkdf2_iterations};
use auth_shared::db::Db;
use auth_shared::http::{self as api, ApiError};
use auth_shared::keys::Keys;
use auth_shared::lambda_http::{self, Body};
use auth_shared::password::{self, Policy};
use auth_shared::users::{self, NewUser};
use bytes::Bytes;
use clap::Parser;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::cors::Cors;

/// Run the auth service locally.
#[derive(Parser)]
#[command(name = "auth-local", version, about)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
}

/// The largest body the local server reads before answering 413 itself (API Gateway's own
/// limit is 10 MB; the login handler's is 8 KiB).
const MAX_READ_BYTES: usize = 1024 * 1024;

struct App {
    health: health::State,
    test_db: test_db::State,
    login: login::State,
    profile: profile::State,
    cors: Cors,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    auth_shared::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("auth-local: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auth-local: start-up failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn run(args: Args) -> Result<(), Error> {
    let mut env = Env::process();
    let own_db =
        env.optional("DATABASE_URL")?.is_none() && env.optional("DATABASE_SECRET_ARN")?.is_none();
    // The cluster lives until run() returns: dropping it stops PostgreSQL and removes its files.
    let cluster = if own_db {
        let cluster =
            tokio::task::spawn_blocking(|| tempdb::Cluster::start(tempdb::Options::default()))
                .await??;
        env.set("DATABASE_URL", cluster.url("postgres"));
        println!(
            "auth-local: started a throwaway PostgreSQL in {} (removed on exit)",
            cluster.data_dir().display()
        );
        Some(cluster)
    } else {
        None
    };

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let db = Arc::new(Db::connect(DbConfig::from_env(&env, 8 * cores)?).await?);
    let report = {
        let mut client = db.checkout().await?;
        auth_shared::migrate::run(&mut client).await?
    };
    for (version, name) in &report.applied {
        println!("auth-local: applied migration {version:04} {name}");
    }
    let policy = Policy { iterations: pbkdf2_iterations(&env)? };
    let tokens = TokenConfig::from_env(&env)?;
    let cors = Cors::from_env(&env)?;
    let keys = match KeySource::from_env(&env)? {
        Some(source) => Keys::load(&source).await?,
        None => {
            println!(
                "auth-local: SECRET_KEY is not set: signing with a random key for this run (tokens stop working when it ends)"
            );
            Keys::local(&auth_shared::random::bytes::<32>())?
        }
    };
    let keys = Arc::new(keys);

    if own_db {
        let password = base64_url(&auth_shared::random::bytes::<15>());
        let hash = {
            let password = password.clone();
            tokio::task::spawn_blocking(move || password::hash(&password, policy)).await?
        };
        db.run(move |c| {
            let hash = hash.clone();
            Box::pin(async move {
                let new = NewUser {
                    username: "demo",
                    email: "demo@example.com",
                    full_name: Some("Demo User"),
                    password_hash: &hash,
                };
                users::create(c, &new).await
            })
        })
        .await?;
        println!(
            "auth-local: demo user: username demo, email demo@example.com, password {password} (shown once)"
        );
    }

    let app = Arc::new(App {
        health: health::State::new(db.clone()),
        test_db: test_db::State::new(db.clone()),
        login: login::State::new(db.clone(), keys.clone(), tokens.clone(), policy),
        profile: profile::State::new(db.clone(), keys, tokens),
        cors,
    });

    let listener = TcpListener::bind(SocketAddr::new(args.bind, args.port)).await?;
    let addr = listener.local_addr()?;
    println!("auth-local: listening on http://{addr}");
    println!(
        "auth-local: try: curl -s http://{addr}/login -H 'content-type: application/json' -d '{{\"username\":\"demo\",\"password\":\"...\"}}'"
    );
    serve(listener, app).await;
    db.close();
    drop(cluster);
    println!("auth-local: stopped");
    Ok(())
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Accepts connections until Ctrl-C or SIGTERM, then lets requests in flight finish (up to 10 s).
async fn serve(listener: TcpListener, app: Arc<App>) {
    let graceful = GracefulShutdown::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let stop = async move {
        match term.as_mut() {
            Some(term) => {
                tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let conn = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(move |req| route(app.clone(), req)));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut stop => break,
        }
    }
    println!("auth-local: stopping");
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}

async fn route(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let methods = match parts.uri.path() {
        health::ROUTE => Some(health::METHODS),
        test_db::ROUTE => Some(test_db::METHODS),
        login::ROUTE => Some(login::METHODS),
        profile::ROUTE => Some(profile::METHODS),
        _ => None,
    };
    if let Some(methods) = methods
        && app.cors.enabled()
        && Cors::is_preflight(&parts.method, &parts.headers)
    {
        return Ok(app.cors.preflight(&parts.headers, methods));
    }
    let request_headers = parts.headers.clone();
    let bytes = match Limited::new(body, MAX_READ_BYTES).collect().await {
        Ok(b) => Some(b.to_bytes()),
        Err(_) => None,
    };
    let body = match &bytes {
        Some(b) if b.is_empty() => Body::Empty,
        Some(b) => Body::Binary(b.to_vec()),
        None => Body::Empty,
    };
    let req: lambda_http::Request = Request::from_parts(parts, body);
    let path = req.uri().path().to_owned();
    let resp = match (bytes, path.as_str()) {
        (None, _) => api::respond_error("(body)", &req, ApiError::PayloadTooLarge),
        (_, health::ROUTE) => health::handle(&app.health, req).await,
        (_, test_db::ROUTE) => test_db::handle(&app.test_db, req).await,
        (_, login::ROUTE) => login::handle(&app.login, req).await,
        (_, profile::ROUTE) => profile::handle(&app.profile, req).await,
        _ => api::respond_error("(unknown)", &req, ApiError::NotFound),
    };
    let (mut parts, body) = resp.into_parts();
    app.cors.decorate(&request_headers, &mut parts.headers);
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    Ok(Response::from_parts(parts, Full::new(bytes)))
}
