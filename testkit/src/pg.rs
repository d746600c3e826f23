//! Per-test PostgreSQL databases on a shared server: the one DATABASE_URL names (the test
//! command starts one for the whole run), or else a throwaway cluster started once per test
//! process. Each test gets its own database with the migrations applied, so tests run in
//! parallel without seeing each other's rows.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use auth_shared::db::{ConnectSettings, Db};
use auth_shared::db::{DbConfig, DbSource};
use auth_shared::password::{self, Policy};
use auth_shared::users::{self, NewUser};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

static CLUSTER: OnceLock<tempdb::Cluster> = OnceLock::new();

/// The admin URL of the shared server (database `postgres`).
pub fn server_url() -> String {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.is_empty()
    {
        return url;
    }
    CLUSTER
        .get_or_init(|| {
            tempdb::Cluster::start(tempdb::Options::default())
                .unwrap_or_else(|e| panic!("test PostgreSQL could not start: {e}"))
        })
        .url("postgres")
}

/// Replaces the database name in a URL.
pub fn with_dbname(url: &str, dbname: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{dbname}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Opens a plain client (no pool) to `url`.
pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test database failed: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A database of its own for one test.
pub struct TestDb {
    /// Its URL (superuser, no TLS).
    pub url: String,
    /// Its name.
    pub name: String,
}

/// The hashing policy tests use for the users they create (the minimum the service allows,
/// to keep the suite quick; the default policy is exercised by its own tests).
pub const TEST_POLICY: Policy = Policy { iterations: 100_000 };

impl TestDb {
    /// Creates the database and applies the migrations.
    pub async fn new() -> Self {
        let db = Self::empty().await;
        let mut c = connect(&db.url).await;
        auth_shared::migrate::run(&mut c)
            .await
            .unwrap_or_else(|e| panic!("migrations failed: {e}"));
        db
    }

    /// Creates the database without applying the migrations.
    pub async fn empty() -> Self {
        let admin = server_url();
        let name = format!("t_{}", Uuid::from_bytes(auth_shared::random::bytes()).simple());
        let client = connect(&admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE failed: {e}"));
        Self { url: with_dbname(&admin, &name), name }
    }

    /// A migrated database whose character classification and collation are `locale` (`C`,
    /// `C.UTF-8`), for what must not depend on the database's locale.
    pub async fn with_locale(locale: &str) -> Self {
        let admin = server_url();
        let name = format!("t_{}", Uuid::from_bytes(auth_shared::random::bytes()).simple());
        connect(&admin)
            .await
            .batch_execute(&format!(
                "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
                 LC_COLLATE '{locale}' LC_CTYPE '{locale}'"
            ))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE with locale {locale} failed: {e}"));
        let db = Self { url: with_dbname(&admin, &name), name };
        let mut c = connect(&db.url).await;
        auth_shared::migrate::run(&mut c).await.expect("migrations apply");
        db
    }

    /// A plain client for direct SQL.
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// The service's pool over this database, with the given pool size.
    pub fn db(&self, pool_max_size: usize) -> Arc<Db> {
        let settings = ConnectSettings::from_url(&self.url).expect("test URL parses");
        Arc::new(
            Db::with_settings(settings.clone(), db_config(settings, pool_max_size))
                .expect("pool builds"),
        )
    }

    /// Creates an account with `password` hashed under [`TEST_POLICY`]; returns its id.
    pub async fn create_user(&self, username: &str, email: &str, password: &str) -> Uuid {
        let hash = password::hash(password, TEST_POLICY);
        self.create_user_with_hash(username, email, &hash).await
    }

    /// Creates an account with a given stored hash (legacy formats); returns its id.
    pub async fn create_user_with_hash(&self, username: &str, email: &str, hash: &str) -> Uuid {
        let c = self.client().await;
        let new = NewUser {
            username,
            email,
            full_name: Some("Test User"),
            password_hash: hash,
            email_verified: true,
        };
        users::create(&c, &new).await.unwrap_or_else(|e| panic!("creating {username}: {e}")).id
    }
}

/// A database configuration with test deadlines.
pub fn db_config(settings: ConnectSettings, pool_max_size: usize) -> DbConfig {
    DbConfig {
        source: DbSource::Url(settings),
        pool_max_size,
        connect_timeout: Duration::from_secs(3),
        health_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(10),
    }
}
