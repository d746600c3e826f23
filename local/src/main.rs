//! `auth-local`: the Lambda handlers (the same functions the Lambda binaries run, no copies)
//! mounted on their real routes in one HTTP server.
//!
//! With no DATABASE_URL it starts a throwaway PostgreSQL from the system's binaries, applies
//! the migrations and creates a demo user whose password it prints once; with DATABASE_URL it
//! applies the migrations and serves that database. With no SECRET_KEY it signs with a random
//! key for the run (with TOKEN_SIGNING_ALG=RS256, a new 2048-bit RSA key). Ctrl-C stops it and the PostgreSQL it started.

mod cors;
mod outbox;
mod page;
mod qr;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_shared::accounts::AccountConfig;
use auth_shared::accounts::mailer::{Delivery, Mailer};
use auth_shared::config::{Env, TokenConfig};
use auth_shared::data_key::{DataKey, DataKeySource};
use auth_shared::db::{Db, DbConfig};
use auth_shared::http::{self as api, ApiError};
use auth_shared::lambda_http::{self, Body};
use auth_shared::mail::{Outbox, Queue, Sender};
use auth_shared::mfa::MfaConfig;
use auth_shared::passkeys::RelyingPartyConfig;
use auth_shared::password::{self, Policy};
use auth_shared::route::Route;
use auth_shared::sessions::SessionConfig;
use auth_shared::signing::keys::Keys;
use auth_shared::signing::{KeySource, SigningAlg, SigningConfig};
use auth_shared::state::{
    AccountState, ChallengeState, CodeState, DbState, EmailState, HashState, MfaState,
    PasskeyLoginState, PasskeyState, PublicKeysState,
};
use auth_shared::users::{self, NewUser};
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::ListenerExt;
use clap::Parser;
use http::{StatusCode, header};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;

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
/// How much of an oversized body is read (and dropped) before the 413, so the client can finish
/// sending and read the answer: API Gateway's payload limit.
const DRAIN_BYTES: usize = 10 * 1024 * 1024;

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
    let policy = Policy::from_env(&env)?;
    let tokens = TokenConfig::from_env(&env)?;
    let sessions = SessionConfig::from_env(&env)?;
    let cors = Cors::from_env(&env)?;
    let signing = SigningConfig::from_env(&env)?;
    let keys = match KeySource::from_env(&env)? {
        Some(source) => Keys::load(&source, &signing).await?,
        None if signing.alg == SigningAlg::Rs256 => {
            println!(
                "auth-local: SECRET_KEY is not set: signing with a new 2048-bit RSA key for this run (tokens stop working when it ends)"
            );
            let pem = tokio::task::spawn_blocking(new_rsa_key).await??;
            Keys::local_with(SigningAlg::Rs256, pem.as_bytes())?
        }
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
                    email_verified: true,
                };
                users::create(c, &new).await
            })
        })
        .await?;
        println!(
            "auth-local: demo user: username demo, email demo@example.com, password {password} (shown once)"
        );
    }

    let listener = TcpListener::bind(SocketAddr::new(args.bind, args.port)).await?;
    let addr = listener.local_addr()?;
    let (account_state, code_state, outbox) = accounts(&env, &db, policy, addr).await?;

    // One set of parts, as each Lambda container builds its own; the hashing functions share
    // one slot per core, as they share the cores here.
    let db_state = Arc::new(DbState::new(db.clone()));
    let hashing = Arc::new(
        HashState::new(db.clone(), keys, tokens, policy)
            .with_sessions(sessions)
            .requiring_verified_email(account_state.accounts.require_verified)
            .with_mail(account_state.queue.clone())
            .with_mfa(MfaConfig::from_env(&env)?),
    );
    let token_state = Arc::new(hashing.token.clone());
    let public_keys =
        Arc::new(PublicKeysState::new(token_state.tokens.clone(), token_state.keys.clone()));
    let email_state = Arc::new(EmailState::new((*token_state).clone(), (*account_state).clone()));
    let mfa_state = Arc::new(MfaState::new(
        (*hashing).clone(),
        code_state.keys.clone(),
        account_state.accounts.app_name.clone(),
    ));
    // Passkeys: WEBAUTHN_RP_ID defaults to localhost and WEBAUTHN_ORIGINS to this server's own
    // origin on that name (a browser must open http://localhost:PORT/, not 127.0.0.1, to use
    // them: an RP ID is a domain name).
    let rp_id = env.optional("WEBAUTHN_RP_ID")?.unwrap_or_else(|| "localhost".into());
    let rp_origins = env
        .optional("WEBAUTHN_ORIGINS")?
        .unwrap_or_else(|| format!("http://localhost:{}", addr.port()));
    let rp = RelyingPartyConfig::new(&rp_id, &rp_origins, account_state.accounts.app_name.clone())?;
    let rp = Arc::new(rp.relying_party()?);
    let passkey_state = Arc::new(PasskeyState::new((*hashing).clone(), rp.clone()));
    let passkey_login_state = Arc::new(PasskeyLoginState::new(
        (*token_state).clone(),
        code_state.keys.clone(),
        rp.clone(),
    ));
    let challenge_state = Arc::new(ChallengeState::new(code_state.keys.clone(), rp));
    let cors = cors.as_ref();
    // One line per route: its ROUTE and a clone of the (shared, reference-counted) state it needs.
    let app = Router::new()
        .merge(mount(&health::ROUTE, db_state.clone(), cors))
        .merge(mount(&test_db::ROUTE, db_state.clone(), cors))
        .merge(mount(&login::ROUTE, hashing.clone(), cors))
        .merge(mount(&profile::ROUTE, token_state.clone(), cors))
        .merge(mount(&refresh::ROUTE, token_state.clone(), cors))
        .merge(mount(&logout::ROUTE, token_state.clone(), cors))
        .merge(mount(&::password::ROUTE, hashing.clone(), cors))
        .merge(mount(&jwks::JWKS_ROUTE, public_keys.clone(), cors))
        .merge(mount(&jwks::DISCOVERY_ROUTE, public_keys.clone(), cors))
        .merge(mount(&signup::ROUTE, account_state.clone(), cors))
        .merge(mount(&resend_verification::ROUTE, account_state.clone(), cors))
        .merge(mount(&forgot_password::ROUTE, account_state.clone(), cors))
        .merge(mount(&verify_email::ROUTE, code_state.clone(), cors))
        .merge(mount(&reset_password::ROUTE, code_state.clone(), cors))
        .merge(mount(&change_email::ROUTE, email_state.clone(), cors))
        .merge(mount(&login_mfa::ROUTE, mfa_state.clone(), cors))
        .merge(mount(&mfa_totp::ROUTE, mfa_state.clone(), cors))
        .merge(mount(&mfa_totp_verify::ROUTE, mfa_state.clone(), cors))
        .merge(mount(&mfa_totp_disable::ROUTE, mfa_state.clone(), cors))
        .merge(mount(&mfa_recovery_codes::ROUTE, mfa_state.clone(), cors))
        .merge(mount(&mfa_status::ROUTE, token_state.clone(), cors))
        .merge(mount(&passkey_register_options::ROUTE, passkey_state.clone(), cors))
        .merge(mount(&passkey_register::ROUTE, passkey_state.clone(), cors))
        .merge(mount(&passkey_login_options::ROUTE, challenge_state.clone(), cors))
        .merge(mount(&passkey_login::ROUTE, passkey_login_state.clone(), cors))
        .merge(mount(&passkeys::LIST_ROUTE, hashing.clone(), cors))
        .merge(mount(&passkeys::ITEM_ROUTE, hashing.clone(), cors))
        .merge(page::router())
        .merge(qr::router())
        .merge(outbox::router(outbox.clone()))
        .fallback_service(cors::wrap(cors, None, tower::service_fn(not_found)));

    println!("auth-local: listening on http://{addr}");
    println!("auth-local: mail is written to {} (one .eml file per mail)", outbox.display());
    println!(
        "auth-local: open http://{addr}/ to try it: log in, refresh, change the password, log out"
    );
    println!(
        "auth-local: passkeys: relying party {:?}, origins {}; open http://localhost:{}/ for them",
        rp_id,
        rp_origins,
        addr.port()
    );
    println!(
        "auth-local: try: curl -s http://{addr}/login -H 'content-type: application/json' -d '{{\"username\":\"demo\",\"password\":\"...\"}}'"
    );
    serve(listener, app).await?;
    db.close();
    drop(cluster);
    println!("auth-local: stopped");
    Ok(())
}

/// The account routes' parts: the settings, the data key (DATA_KEY, or a random one for the
/// run), and the mailer, run in-process on the jobs the routes queue, writing each mail into
/// the outbox folder (MAIL_OUTBOX_DIR, or a folder of the run) instead of sending it. Links
/// point at this server's page unless EMAIL_LINK_BASE_URL says otherwise.
async fn accounts(
    env: &Env,
    db: &Arc<Db>,
    policy: Policy,
    addr: SocketAddr,
) -> Result<(Arc<AccountState>, Arc<CodeState>, std::path::PathBuf), Error> {
    let cfg = AccountConfig::from_env(env)?;
    let source = match DataKeySource::from_env(env)? {
        Some(source) => source,
        None => {
            println!(
                "auth-local: DATA_KEY is not set: using a random data key for this run (mailed codes and links stop working when it ends)"
            );
            DataKeySource::random()
        }
    };
    let keys = Arc::new(DataKey::new(source).await);
    keys.current().await?;
    let dir = match env.optional("MAIL_OUTBOX_DIR")? {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("auth-local-outbox-{}", std::process::id())),
    };
    let outbox = Outbox::open(dir.clone())?;
    let from = match env.optional("EMAIL_FROM")? {
        Some(from) => from,
        None => format!("{} <no-reply@auth-local.invalid>", cfg.app_name),
    };
    let sender = Sender::new(&cfg.app_name, &from)?;
    let (queue, mut jobs) = Queue::local();
    let mailer = Arc::new(Mailer {
        db: db.clone(),
        keys: keys.clone(),
        cfg: cfg.clone(),
        sender,
        delivery: Delivery::Outbox(outbox),
        default_link_base: format!("http://{addr}/"),
    });
    // Each job in a task of its own, as concurrent Lambda invocations would take them.
    tokio::spawn(async move {
        while let Some(job) = jobs.recv().await {
            let mailer = mailer.clone();
            tokio::spawn(async move {
                if let Err(e) = mailer.process(&job).await {
                    tracing::warn!(event = "mail_failed", error = %e, "mail_failed");
                }
            });
        }
    });
    let account = AccountState::new(db.clone(), cfg, queue, policy);
    let code = CodeState::new(account.clone(), keys);
    Ok((Arc::new(account), Arc::new(code), dir))
}

/// A new 2048-bit RSA private key in PKCS#8 PEM. The `rsa` crate only generates it: ring
/// signs (the `rsa` crate's private-key operations are not constant-time, RUSTSEC-2023-0071).
fn new_rsa_key() -> Result<String, Error> {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
    Ok(key.to_pkcs8_pem(LineEnding::LF)?.to_string())
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Mounts one function's route: every request to `route.path`, whatever its method, goes to
/// the function's handler (which answers a method it does not serve with 405 itself), with the
/// body read up to MAX_READ_BYTES, behind CORS when it is on.
fn mount<S: Send + Sync + 'static>(
    route: &'static Route<S>,
    state: Arc<S>,
    cors: Option<&Cors>,
) -> Router {
    let endpoint = ServiceBuilder::new()
        .layer(middleware::from_fn(problem_for_oversized))
        .layer(RequestBodyLimitLayer::new(MAX_READ_BYTES))
        .map_request(|req: http::Request<_>| req.map(axum::body::Body::new))
        .service_fn(move |req| call(route, state.clone(), req));
    Router::new().route_service(route.path, cors::wrap(cors, Some(route.methods), endpoint))
}

/// One request through a function's handler: the axum request becomes the `lambda_http`
/// request the Lambda runtime would pass, and the handler's response goes back.
async fn call<S>(
    route: &'static Route<S>,
    state: Arc<S>,
    req: Request,
) -> Result<Response, Infallible> {
    let (parts, body) = req.into_parts();
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    // The limit layer wraps the body: reading past MAX_READ_BYTES fails.
    let bytes = axum::body::to_bytes(body, usize::MAX).await;
    let body = match &bytes {
        Ok(b) if !b.is_empty() => Body::Binary(b.to_vec()),
        _ => Body::Empty,
    };
    let mut req = lambda_http::Request::from_parts(parts, body);
    // Where API Gateway puts the caller's address (the per-source limits read it there).
    let mut context =
        lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    context.http.source_ip = peer;
    req = lambda_http::RequestExt::with_request_context(
        req,
        lambda_http::request::RequestContext::ApiGatewayV2(context),
    );
    let resp = match bytes {
        Ok(_) => (route.handle)(&state, req).await,
        Err(_) => api::respond_error("(body)", &req, ApiError::PayloadTooLarge),
    };
    Ok(to_axum(resp))
}

/// The 404 problem for a path no function serves.
async fn not_found(req: Request) -> Result<Response, Infallible> {
    let (parts, _) = req.into_parts();
    let req = lambda_http::Request::from_parts(parts, Body::Empty);
    Ok(to_axum(api::respond_error("(unknown)", &req, ApiError::NotFound)))
}

/// RequestBodyLimitLayer refuses a Content-Length over the limit with its own plain-text 413:
/// answer with our problem document instead, with the usual headers and log line.
async fn problem_for_oversized(req: Request, next: Next) -> Response {
    let mut head = lambda_http::Request::new(Body::Empty);
    *head.method_mut() = req.method().clone();
    *head.uri_mut() = req.uri().clone();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_READ_BYTES as u64) {
        // Read what the client sends (and drop it), up to API Gateway's own 10 MB limit, before
        // answering: a client still writing its body when the connection closes sees a reset
        // instead of our 413.
        let _ = axum::body::to_bytes(req.into_body(), DRAIN_BYTES).await;
        return to_axum(api::respond_error("(body)", &head, ApiError::PayloadTooLarge));
    }
    let resp = next.run(req).await;
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && plain {
        return to_axum(api::respond_error("(body)", &head, ApiError::PayloadTooLarge));
    }
    resp
}

fn to_axum(resp: lambda_http::Response<Body>) -> Response {
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, axum::body::Body::from(body.as_ref().to_vec()))
}

/// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish (up to 10 s).
async fn serve(listener: TcpListener, app: Router) -> std::io::Result<()> {
    let (stopping, stopped) = tokio::sync::oneshot::channel();
    let signal = async move {
        stop_signal().await;
        println!("auth-local: stopping");
        let _ = stopping.send(());
    };
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let deadline = async {
        let _ = stopped.await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    tokio::select! {
        served = server => served,
        () = deadline => Ok(()),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    match term.as_mut() {
        Some(term) => {
            tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
