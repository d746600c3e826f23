//! Database access: the pool built once per container, deadlines, and the one place that
//! retries a query whose pooled connection died while the container was frozen. Where to
//! connect, and the pool's size and deadlines, are `settings`'s concern.

use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use secrecy::ExposeSecret;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::config::ConfigError;
use crate::secrets::{SecretError, SecretsClient};
use crate::tls::TlsError;

mod settings;

pub use settings::{ConnectSettings, DbConfig, DbSecretSettings, DbSource};

/// A boxed, sendable future borrowing a connection.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a database operation failed. Mapped to 503 (unavailable, timeout) or 500 (query).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be made or the connection broke.
    #[error("database unreachable: {0}")]
    Unavailable(String),
    /// A deadline passed (connect, pool wait, or statement).
    #[error("database deadline exceeded")]
    Timeout,
    /// The server refused a statement.
    #[error("database error: {0}")]
    Query(tokio_postgres::Error),
}

impl DbError {
    /// The SQLSTATE of a refused statement.
    pub fn code(&self) -> Option<&SqlState> {
        match self {
            Self::Query(e) => e.code(),
            _ => None,
        }
    }
}

/// A start-up failure: bad settings, or the database secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    /// A variable is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS settings are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// DATABASE_SECRET_ARN could not be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// True for errors that mean the connection itself is gone, not that the statement was wrong.
fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03");
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

fn is_bad_password(e: &PoolError) -> bool {
    matches!(e, PoolError::Backend(e) if e.code().is_some_and(|c| {
        *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    }))
}

fn describe(e: &tokio_postgres::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s = format!("{s}: {inner}");
        source = inner.source();
    }
    s
}

struct SecretSource {
    client: SecretsClient,
    settings: DbSecretSettings,
    last_refresh: tokio::sync::Mutex<Instant>,
}

/// The least time between two re-reads of the database secret after refused passwords.
const SECRET_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// The database of this container: a pool built once, with deadlines.
pub struct Db {
    pool: RwLock<Pool>,
    cfg: Arc<DbConfig>,
    secret: Option<SecretSource>,
}

impl Db {
    /// Builds the pool. With DATABASE_SECRET_ARN the secret is read now, at cold start. This
    /// opens no connection itself: [`Db::warm_up`] or the first request does.
    pub async fn connect(cfg: DbConfig) -> Result<Self, DbSetupError> {
        match &cfg.source {
            DbSource::Url(settings) => Ok(Self::with_settings(settings.clone(), cfg)?),
            DbSource::Secret(s) => {
                let client = SecretsClient::from_env().await;
                let settings = read_secret(&client, s).await?;
                let secret = SecretSource {
                    client,
                    settings: s.clone(),
                    last_refresh: tokio::sync::Mutex::new(Instant::now()),
                };
                let pool = build_pool(&settings, &cfg)?;
                Ok(Self { pool: RwLock::new(pool), cfg: Arc::new(cfg), secret: Some(secret) })
            }
        }
    }

    /// Builds the pool for explicit settings (tests, the local server, the admin command).
    pub fn with_settings(settings: ConnectSettings, cfg: DbConfig) -> Result<Self, TlsError> {
        let pool = build_pool(&settings, &cfg)?;
        Ok(Self { pool: RwLock::new(pool), cfg: Arc::new(cfg), secret: None })
    }

    /// Starts opening the pool's first connection in the background, so that it overlaps the
    /// rest of cold start (reading the signing key) instead of following it. A failure is only
    /// logged: the first request then connects, or answers 503, as usual.
    pub fn warm_up(self: &Arc<Self>) {
        let db = self.clone();
        tokio::spawn(async move {
            if let Err(e) = db.checkout().await {
                tracing::debug!(error = %e, "database warm-up connection failed");
            }
        });
    }

    /// The settings this database was built with.
    pub fn config(&self) -> &DbConfig {
        &self.cfg
    }

    /// Closes the pool: idle connections end cleanly (before the local server stops its
    /// PostgreSQL, say).
    pub fn close(&self) {
        self.pool().close();
    }

    fn pool(&self) -> Pool {
        match self.pool.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Takes a connection from the pool (opening one if needed) within DB_CONNECT_TIMEOUT_MS,
    /// counted once from the call: waiting for a slot and opening a connection share that one
    /// deadline. (The pool's own timeouts apply to each in turn, so a request that waited on
    /// the cold start's warm-up connection, which then timed out, went on to open its own and
    /// answered after two deadlines.) When the server refuses the password and the settings
    /// come from a secret, the secret is re-read (rotation) and the connection tried once more.
    pub async fn checkout(&self) -> Result<Object, DbError> {
        let deadline = self.cfg.connect_timeout;
        let get = || async {
            match tokio::time::timeout(deadline, self.pool().get()).await {
                Ok(got) => got,
                Err(_elapsed) => Err(PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)),
            }
        };
        match get().await {
            Ok(obj) => Ok(obj),
            Err(e) if is_bad_password(&e) && self.refresh_secret().await => {
                get().await.map_err(|e| pool_error(&e))
            }
            Err(e) => Err(pool_error(&e)),
        }
    }

    /// Re-reads the database secret and rebuilds the pool; true if anything changed.
    async fn refresh_secret(&self) -> bool {
        let Some(src) = &self.secret else { return false };
        let mut last = src.last_refresh.lock().await;
        if last.elapsed() < SECRET_REFRESH_INTERVAL {
            return false;
        }
        *last = Instant::now();
        tracing::warn!("database refused the password; re-reading DATABASE_SECRET_ARN (rotation?)");
        let settings = match read_secret(&src.client, &src.settings).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "database secret could not be re-read");
                return false;
            }
        };
        match build_pool(&settings, &self.cfg) {
            Ok(pool) => {
                let old = match self.pool.write() {
                    Ok(mut p) => std::mem::replace(&mut *p, pool),
                    Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), pool),
                };
                old.close();
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "database pool could not be rebuilt");
                false
            }
        }
    }

    /// Runs `f` on a pooled connection within DB_STATEMENT_TIMEOUT_MS. If the connection turns
    /// out to be dead (terminated by the server, or lost while the container was frozen) and it
    /// had served before, it is discarded and `f` runs once more on a fresh one.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: for<'c> Fn(&'c mut Client) -> BoxFuture<'c, Result<T, tokio_postgres::Error>>,
    {
        self.run_within(self.cfg.statement_timeout, f).await
    }

    /// [`Db::run`] with a deadline of its own, for work that holds the connection longer than
    /// one statement (a login's transaction spans its password check).
    pub async fn run_within<T, F>(&self, deadline: Duration, f: F) -> Result<T, DbError>
    where
        F: for<'c> Fn(&'c mut Client) -> BoxFuture<'c, Result<T, tokio_postgres::Error>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Dropped anywhere before `keep` (a deadline here or the caller's, a cancelled
            // request), the lease discards its connection: one interrupted mid-statement
            // cannot go back to the pool, where it would fail (or hang) the next request.
            let mut lease = Lease(Some(self.checkout().await?));
            let reused = lease.recycle_count() > 0;
            let Some(client) = lease.client() else { return Err(DbError::Timeout) };
            match tokio::time::timeout(deadline, f(client)).await {
                Ok(Ok(value)) => {
                    lease.keep();
                    return Ok(value);
                }
                Ok(Err(e)) if is_connection_error(&e) => {
                    drop(lease);
                    if reused && attempt == 1 {
                        tracing::info!(error = %describe(&e), "pooled connection was dead; retrying on a new one");
                        continue;
                    }
                    return Err(DbError::Unavailable(describe(&e)));
                }
                Ok(Err(e)) => {
                    // The server refused the statement; the connection itself is fine.
                    lease.keep();
                    return Err(DbError::Query(e));
                }
                Err(_elapsed) => return Err(DbError::Timeout),
            }
        }
    }
}

/// A pooled connection on loan to one piece of work. It goes back to the pool only through
/// [`Lease::keep`], once that work finished cleanly; dropped any other way (the work timed
/// out, failed on the connection, or its future was dropped by an outer deadline) it is
/// detached from the pool and closed.
struct Lease(Option<Object>);

impl Lease {
    fn client(&mut self) -> Option<&mut Client> {
        self.0.as_deref_mut().map(|w| &mut **w)
    }

    fn recycle_count(&self) -> usize {
        self.0.as_ref().map_or(0, |o| Object::metrics(o).recycle_count)
    }

    /// Returns the connection to the pool.
    fn keep(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(obj) = self.0.take() {
            let _ = Object::take(obj);
        }
    }
}

fn pool_error(e: &PoolError) -> DbError {
    match e {
        PoolError::Timeout(_) => DbError::Timeout,
        PoolError::Backend(e) => DbError::Unavailable(describe(e)),
        other => DbError::Unavailable(other.to_string()),
    }
}

async fn read_secret(
    client: &SecretsClient,
    s: &DbSecretSettings,
) -> Result<ConnectSettings, DbSetupError> {
    let value = client.get(&s.arn, "AWSCURRENT").await?;
    ConnectSettings::from_secret(value.value.expose_secret(), s)
        .map_err(|p| ConfigError::new("DATABASE_SECRET_ARN", p).into())
}

fn build_pool(settings: &ConnectSettings, cfg: &DbConfig) -> Result<Pool, TlsError> {
    let mut pg = settings.pg.clone();
    pg.connect_timeout(cfg.connect_timeout);
    // A peer that goes silent (failover, an expired NAT or ENI flow) is noticed by the socket
    // too, not only by a statement's deadline: keepalive probes after 10 s idle, every 5 s,
    // 3 unanswered end it, and data unacknowledged for the statement deadline (at least
    // 10 s) ends it as well (TCP_USER_TIMEOUT, Linux).
    pg.keepalives(true);
    pg.keepalives_idle(Duration::from_secs(10));
    pg.keepalives_interval(Duration::from_secs(5));
    pg.keepalives_retries(3);
    pg.tcp_user_timeout(cfg.statement_timeout.max(Duration::from_secs(10)));
    if pg.get_application_name().is_none() {
        pg.application_name("auth-service");
    }
    let tls = crate::tls::connector(settings.tls, settings.root_cert.as_deref())?;
    let manager =
        Manager::from_config(pg, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(manager)
        .max_size(cfg.pool_max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(cfg.connect_timeout))
        .create_timeout(Some(cfg.connect_timeout))
        .recycle_timeout(Some(cfg.connect_timeout))
        .build()
        .expect("a pool with a runtime and timeouts always builds"))
}
