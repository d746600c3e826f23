//! Database connection settings, in one place: where to connect (DATABASE_URL, or
//! DATABASE_SECRET_ARN completed by DATABASE_HOST / _PORT / _NAME / _SSLMODE / _SSLROOTCERT),
//! libpq's sslmode and sslrootcert, and the pool's size and deadlines, with their loader.

use std::time::Duration;

use crate::config::{ConfigError, Env};
use crate::tls::TlsMode;

/// A parsed connection target: tokio-postgres settings plus our TLS mode and root certificate.
/// Its `Debug` never shows the password (tokio-postgres redacts it).
#[derive(Clone, Debug)]
pub struct ConnectSettings {
    /// Host, port, user, password, database and connection options.
    pub pg: tokio_postgres::Config,
    /// libpq's sslmode.
    pub tls: TlsMode,
    /// sslrootcert: a PEM file path, or `system`.
    pub root_cert: Option<String>,
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

/// Where the database connection settings come from.
#[derive(Clone, Debug)]
pub enum DbSource {
    /// DATABASE_URL, parsed (with our sslmode / sslrootcert handling).
    Url(ConnectSettings),
    /// DATABASE_SECRET_ARN plus DATABASE_HOST / _PORT / _NAME / _SSLMODE / _SSLROOTCERT.
    Secret(DbSecretSettings),
}

/// The parts of a Secrets-Manager-backed database connection that come from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSecretSettings {
    /// The secret's ARN (or name).
    pub arn: String,
    /// DATABASE_HOST, used when the secret has no `host`.
    pub host: Option<String>,
    /// DATABASE_PORT, used when the secret has no `port`.
    pub port: Option<u16>,
    /// DATABASE_NAME, used when the secret has no `dbname`.
    pub dbname: Option<String>,
    /// DATABASE_SSLMODE (default prefer, as libpq).
    pub sslmode: Option<String>,
    /// DATABASE_SSLROOTCERT.
    pub sslrootcert: Option<String>,
}

/// Database pool and deadline settings. `Debug` shows no password.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// Where to connect.
    pub source: DbSource,
    /// DB_POOL_MAX_SIZE.
    pub pool_max_size: usize,
    /// DB_CONNECT_TIMEOUT_MS: deadline to open a connection, and to wait for a pooled one.
    pub connect_timeout: Duration,
    /// HEALTH_DB_TIMEOUT_MS: the whole health check's deadline.
    pub health_timeout: Duration,
    /// DB_STATEMENT_TIMEOUT_MS: deadline of one query round trip.
    pub statement_timeout: Duration,
}

impl DbConfig {
    /// Loads the database settings. `default_pool` is 1 inside Lambda (one request at a time per
    /// container) and larger for the local server.
    pub fn from_env(env: &Env, default_pool: usize) -> Result<Self, ConfigError> {
        let url = env.optional("DATABASE_URL")?;
        let arn = env.optional("DATABASE_SECRET_ARN")?;
        let source = match (url, arn) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "DATABASE_URL",
                    "and DATABASE_SECRET_ARN are both set; set only one",
                ));
            }
            (Some(url), None) => DbSource::Url(
                ConnectSettings::from_url(&url)
                    .map_err(|problem| ConfigError::new("DATABASE_URL", problem))?,
            ),
            (None, Some(arn)) => DbSource::Secret(DbSecretSettings {
                arn,
                host: env.optional("DATABASE_HOST")?,
                port: match env.optional("DATABASE_PORT")? {
                    Some(_) => Some(env.integer("DATABASE_PORT", 5432u16, 1, u16::MAX)?),
                    None => None,
                },
                dbname: env.optional("DATABASE_NAME")?,
                sslmode: env.optional("DATABASE_SSLMODE")?,
                sslrootcert: env.optional("DATABASE_SSLROOTCERT")?,
            }),
            (None, None) => {
                return Err(ConfigError::new(
                    "DATABASE_URL",
                    "is not set (set DATABASE_URL, or DATABASE_SECRET_ARN and DATABASE_HOST)",
                ));
            }
        };
        if let DbSource::Secret(s) = &source {
            // Check the sslmode early so a typo stops the start, not the first request.
            TlsMode::parse(s.sslmode.as_deref(), s.sslrootcert.is_some())
                .map_err(|p| ConfigError::new("DATABASE_SSLMODE", p))?;
        }
        Ok(Self {
            source,
            pool_max_size: env.integer("DB_POOL_MAX_SIZE", default_pool, 1, 1000)?,
            connect_timeout: env.millis("DB_CONNECT_TIMEOUT_MS", 3000, 100, 60_000)?,
            health_timeout: env.millis("HEALTH_DB_TIMEOUT_MS", 2000, 100, 60_000)?,
            statement_timeout: env.millis("DB_STATEMENT_TIMEOUT_MS", 5000, 100, 300_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "postgres://u:p@h/db";

    #[test]
    fn defaults_and_ranges_follow_the_contract() {
        let db = DbConfig::from_env(&Env::from_pairs([("DATABASE_URL", URL)]), 1).unwrap();
        assert_eq!(db.pool_max_size, 1);
        assert_eq!(db.connect_timeout, Duration::from_millis(3000));
        assert_eq!(db.health_timeout, Duration::from_millis(2000));
        let e = Env::from_pairs([("DATABASE_URL", URL), ("DB_POOL_MAX_SIZE", "0")]);
        assert_eq!(DbConfig::from_env(&e, 1).unwrap_err().var, "DB_POOL_MAX_SIZE");
    }

    #[test]
    fn empty_means_unset_and_sources_are_exclusive() {
        let e = Env::from_pairs([("DATABASE_URL", ""), ("SECRET_KEY", "  ")]);
        assert_eq!(DbConfig::from_env(&e, 1).unwrap_err().var, "DATABASE_URL");
        let both = Env::from_pairs([("DATABASE_URL", URL), ("DATABASE_SECRET_ARN", "arn")]);
        assert!(DbConfig::from_env(&both, 1).unwrap_err().problem.contains("both set"));
        let secret = Env::from_pairs([
            ("DATABASE_SECRET_ARN", "arn"),
            ("DATABASE_HOST", "h"),
            ("DATABASE_PORT", "6432"),
        ]);
        let DbSource::Secret(s) = DbConfig::from_env(&secret, 1).unwrap().source else { panic!() };
        assert_eq!((s.host.as_deref(), s.port), (Some("h"), Some(6432)));
        let bad_mode =
            Env::from_pairs([("DATABASE_SECRET_ARN", "arn"), ("DATABASE_SSLMODE", "verify-full")]);
        assert_eq!(DbConfig::from_env(&bad_mode, 1).unwrap_err().var, "DATABASE_SSLMODE");
    }

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
