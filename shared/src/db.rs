//! Database access: connection settings (URL or Secrets Manager), the pool built once per
//! container, deadlines, and the one place that retries a query whose pooled connection died
//! while the container was frozen.

use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::config::{ConfigError, DbConfig, DbSecretSettings, DbSource};
use crate::secrets::{SecretError, SecretsClient};
use crate::tls::{TlsError, TlsMode};

/// A boxed, sendable future borrowing a connection.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A parsed connection target: tokio-postgres settings plus our TLS mode and root certificate.
#[derive(Clone)]
pub struct ConnectSettings {
    /// Host, port, user, password, database and connection options.
    pub pg: tokio_postgres::Config,
    /// libpq's sslmode.
    pub tls: TlsMode,
    /// sslrootcert: a PEM file path, or `system`.
    pub root_cert: Option<String>,
}

impl std::fmt::Debug for ConnectSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSettings")
            .field("hosts", &self.pg.get_hosts())
            .field("dbname", &self.pg.get_dbname())
            .field("user", &self.pg.get_user())
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Decodes a URL query value as libpq does, refusing malformed escapes ("%zz") rather than
/// passing them through as the `percent-encoding` crate's decoder would.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or("has a bad %-escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "has a bad %-escape")?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "has a %-escape that is not UTF-8".into())
}

impl ConnectSettings {
    /// Parses a `postgres://` URL. `sslmode` (all five of libpq's) and `sslrootcert` are taken
    /// out and handled here; the rest goes to tokio-postgres. Errors never repeat the URL, which
    /// holds a password.
    pub fn from_url(url: &str) -> Result<Self, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("must be a postgres:// or postgresql:// URL".into());
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut sslmode = None;
        let mut root_cert = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => sslmode = Some(percent_decode(v)?),
                "sslrootcert" => root_cert = Some(percent_decode(v)?),
                _ => rest.push(pair),
            }
        }
        let rebuilt =
            if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
        let mut pg: tokio_postgres::Config =
            rebuilt.parse().map_err(|e| format!("is not a valid PostgreSQL URL ({e})"))?;
        if pg.get_hosts().is_empty() {
            return Err("names no host".into());
        }
        if pg.get_user().is_none() {
            return Err("names no user".into());
        }
        let tls = TlsMode::parse(sslmode.as_deref(), root_cert.is_some())?;
        pg.ssl_mode(tls.negotiation());
        Ok(Self { pg, tls, root_cert })
    }

    /// Builds settings from a database secret (`username`, `password`, optionally `host`,
    /// `port`, `dbname`) completed by DATABASE_HOST / _PORT / _NAME / _SSLMODE / _SSLROOTCERT.
    pub fn from_secret(json: &str, env: &DbSecretSettings) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Secret {
            username: String,
            password: String,
            host: Option<String>,
            port: Option<serde_json::Value>,
            dbname: Option<String>,
        }
        let s: Secret = serde_json::from_str(json)
            .map_err(|_| "is not a JSON object with string members username and password")?;
        let host = s.host.or_else(|| env.host.clone()).ok_or(
            "has no host, and DATABASE_HOST is not set (RDS-managed secrets hold only username and password)",
        )?;
        let port = match s.port {
            None => env.port.unwrap_or(5432),
            Some(serde_json::Value::Number(n)) => {
                n.as_u64().and_then(|p| u16::try_from(p).ok()).ok_or("has an invalid port")?
            }
            Some(serde_json::Value::String(p)) => p.parse().map_err(|_| "has an invalid port")?,
            Some(_) => return Err("has an invalid port".into()),
        };
        let dbname = s.dbname.or_else(|| env.dbname.clone()).unwrap_or_else(|| "postgres".into());
        let tls = TlsMode::parse(env.sslmode.as_deref(), env.sslrootcert.is_some())?;
        let mut pg = tokio_postgres::Config::new();
        pg.host(&host).port(port).user(&s.username).password(&s.password).dbname(&dbname);
        pg.ssl_mode(tls.negotiation());
        Ok(Self { pg, tls, root_cert: env.sslrootcert.clone() })
    }
}

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

    /// Takes a connection from the pool (opening one if needed) within DB_CONNECT_TIMEOUT_MS.
    /// When the server refuses the password and the settings come from a secret, the secret is
    /// re-read (rotation) and the connection tried once more.
    pub async fn checkout(&self) -> Result<Object, DbError> {
        match self.pool().get().await {
            Ok(obj) => Ok(obj),
            Err(e) if is_bad_password(&e) && self.refresh_secret().await => {
                self.pool().get().await.map_err(|e| pool_error(&e))
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
            let mut obj = self.checkout().await?;
            let reused = Object::metrics(&obj).recycle_count > 0;
            match tokio::time::timeout(deadline, f(&mut obj)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if is_connection_error(&e) => {
                    let _ = Object::take(obj);
                    if reused && attempt == 1 {
                        tracing::info!(error = %describe(&e), "pooled connection was dead; retrying on a new one");
                        continue;
                    }
                    return Err(DbError::Unavailable(describe(&e)));
                }
                Ok(Err(e)) => return Err(DbError::Query(e)),
                Err(_elapsed) => {
                    // The connection is mid-statement; it cannot go back to the pool.
                    let _ = Object::take(obj);
                    return Err(DbError::Timeout);
                }
            }
        }
    }
}

/// The state of a function that needs only the database (health, test-db): the pool, built
/// once per container, its first connection opened during init.
pub struct DbState {
    /// The pool.
    pub db: Arc<Db>,
}

impl DbState {
    /// Builds the state from the environment (database settings only; no signing key).
    pub async fn from_env(env: &crate::config::Env) -> Result<Self, crate::lambda::StartupError> {
        let db = Arc::new(Db::connect(DbConfig::from_env(env, 1)?).await?);
        db.warm_up();
        Ok(Self::new(db))
    }

    /// Builds the state around an existing pool (local server, tests).
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
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
    ConnectSettings::from_secret(&value.value, s)
        .map_err(|p| ConfigError::new("DATABASE_SECRET_ARN", p).into())
}

fn build_pool(settings: &ConnectSettings, cfg: &DbConfig) -> Result<Pool, TlsError> {
    let mut pg = settings.pg.clone();
    pg.connect_timeout(cfg.connect_timeout);
    pg.keepalives(true);
    pg.keepalives_idle(Duration::from_secs(30));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_libpq_sslmodes_and_hide_passwords() {
        let s = ConnectSettings::from_url(
            "postgres://u:s3cret@db.example:6543/app?sslmode=verify-full&sslrootcert=%2Fopt%2Frds.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(s.tls, TlsMode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some("/opt/rds.pem"));
        assert_eq!(s.pg.get_ports(), &[6543]);
        assert_eq!(s.pg.get_application_name(), Some("x"));
        assert!(!format!("{s:?}").contains("s3cret"));

        let plain = ConnectSettings::from_url("postgresql://u@localhost/app").unwrap();
        assert_eq!(plain.tls, TlsMode::Prefer);
        for bad in [
            "mysql://u:p@h/db",
            "postgres://u:s3cret@h/db?sslmode=verify-full",
            "postgres://u:s3cret@h/db?sslmode=sometimes",
            "postgres://u:s3cret@h:notaport/db",
            "postgres://u:s3cret@h/db?sslrootcert=%zz",
            "postgres:///db",
        ] {
            let e = ConnectSettings::from_url(bad).unwrap_err();
            assert!(!e.contains("s3cret"), "{bad}: {e}");
        }
    }

    #[test]
    fn rds_secrets_are_completed_from_the_environment() {
        let env = DbSecretSettings {
            arn: "arn".into(),
            host: Some("db.internal".into()),
            port: Some(5433),
            dbname: Some("auth".into()),
            sslmode: Some("require".into()),
            sslrootcert: None,
        };
        let s =
            ConnectSettings::from_secret(r#"{"username":"app","password":"pw"}"#, &env).unwrap();
        assert_eq!(s.pg.get_ports(), &[5433]);
        assert_eq!(s.pg.get_dbname(), Some("auth"));
        assert_eq!(s.tls, TlsMode::Require);
        let full = ConnectSettings::from_secret(
            r#"{"username":"app","password":"pw","host":"other","port":"6000","dbname":"x"}"#,
            &env,
        )
        .unwrap();
        assert_eq!((full.pg.get_ports(), full.pg.get_dbname()), (&[6000u16][..], Some("x")));
        let no_host = DbSecretSettings { host: None, ..env.clone() };
        assert!(
            ConnectSettings::from_secret(r#"{"username":"a","password":"b"}"#, &no_host)
                .unwrap_err()
                .contains("DATABASE_HOST")
        );
        assert!(ConnectSettings::from_secret("not json", &env).is_err());
        assert!(
            ConnectSettings::from_secret(r#"{"username":"a","password":"b","port":true}"#, &env)
                .is_err()
        );
    }
}
