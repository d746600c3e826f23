//! Configuration from the environment: one loader per concern, typed settings, and start-up
//! errors that name the variable and what is wrong with it (never its value when it may hold a
//! secret).

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use crate::db::ConnectSettings;

/// A variable that is missing or invalid; stops the function at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {var} {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it, as the end of a sentence ("is not set").
    pub problem: String,
}

impl ConfigError {
    /// Builds an error for `var`.
    pub fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self { var, problem: problem.into() }
    }
}

/// A snapshot of the environment that the loaders read; tests build one from pairs instead of
/// mutating the process environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, Option<String>>,
}

impl Env {
    /// The process environment. Values that are not UTF-8 are kept as invalid.
    pub fn process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok())))
                .collect(),
        }
    }

    /// An environment made of the given pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), Some(v.into()))).collect() }
    }

    /// Sets (or overrides) one variable in this snapshot.
    pub fn set(&mut self, var: &str, value: impl Into<String>) {
        self.vars.insert(var.to_owned(), Some(value.into()));
    }

    /// Reads `var`; unset and empty both mean "not given", since SAM passes "" for an empty
    /// parameter.
    pub fn optional(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        match self.vars.get(var) {
            None => Ok(None),
            Some(None) => Err(ConfigError::new(var, "is not valid UTF-8")),
            Some(Some(v)) if v.trim().is_empty() => Ok(None),
            Some(Some(v)) => Ok(Some(v.clone())),
        }
    }

    /// Reads an integer variable with a default and an inclusive range.
    pub fn integer<T>(
        &self,
        var: &'static str,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        let Some(raw) = self.optional(var)? else { return Ok(default) };
        let shown: String = raw.chars().take(40).collect();
        let problem = || format!("must be a whole number from {min} to {max}, got {shown:?}");
        let value: T = raw.trim().parse().map_err(|_| ConfigError::new(var, problem()))?;
        if value < min || value > max {
            return Err(ConfigError::new(var, problem()));
        }
        Ok(value)
    }

    fn millis(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.integer(var, default, min, max).map(Duration::from_millis)
    }

    fn is_set(&self, var: &str) -> bool {
        self.vars.get(var).is_some_and(|v| v.as_deref().is_some_and(|v| !v.is_empty()))
    }

    /// True inside a real AWS Lambda execution environment, where local-only settings such as
    /// SECRET_KEY are refused. `sam local` (AWS_SAM_LOCAL=true) and local emulators count as
    /// local: Lambda sets AWS_LAMBDA_INITIALIZATION_TYPE, emulators generally do not.
    pub fn in_lambda(&self) -> bool {
        let get = |v: &str| self.vars.get(v).cloned().flatten().unwrap_or_default();
        let sam_local = get("AWS_SAM_LOCAL").eq_ignore_ascii_case("true");
        let execution_env = get("AWS_EXECUTION_ENV").starts_with("AWS_Lambda_");
        (self.is_set("AWS_LAMBDA_INITIALIZATION_TYPE") || execution_env) && !sam_local
    }
}

/// Where the database connection settings come from.
#[derive(Clone)]
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

/// Database pool and deadline settings.
#[derive(Clone)]
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

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL holds a password: never print it.
        f.debug_struct("DbConfig")
            .field("pool_max_size", &self.pool_max_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("health_timeout", &self.health_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
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
            crate::tls::TlsMode::parse(s.sslmode.as_deref(), s.sslrootcert.is_some())
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

/// Token settings: issuer, audience, lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// JWT_ISSUER, the `iss` claim.
    pub issuer: String,
    /// JWT_AUDIENCE, the `aud` claim.
    pub audience: String,
    /// TOKEN_TTL_SECONDS.
    pub ttl_seconds: u64,
}

impl TokenConfig {
    /// Loads JWT_ISSUER, JWT_AUDIENCE and TOKEN_TTL_SECONDS.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            issuer: env.optional("JWT_ISSUER")?.unwrap_or_else(|| "auth-service".into()),
            audience: env.optional("JWT_AUDIENCE")?.unwrap_or_else(|| "auth-service".into()),
            ttl_seconds: env.integer("TOKEN_TTL_SECONDS", 3600, 60, 86_400)?,
        })
    }
}

/// Where the token signing key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// SECRET_ARN: a Secrets Manager secret (plain string, or JSON with `SECRET_KEY`).
    SecretsManager {
        /// The secret's ARN or name.
        arn: String,
        /// SECRET_CACHE_TTL_SECONDS.
        cache_ttl: Duration,
    },
    /// SECRET_KEY: the key itself, local use only.
    Local(Vec<u8>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SecretsManager { arn, cache_ttl } => f
                .debug_struct("SecretsManager")
                .field("arn", arn)
                .field("cache_ttl", cache_ttl)
                .finish(),
            Self::Local(_) => f.write_str("Local(<redacted>)"),
        }
    }
}

/// The minimum key length for HS256 (RFC 7518 §3.2).
pub const MIN_KEY_BYTES: usize = 32;

impl KeySource {
    /// Loads SECRET_ARN or SECRET_KEY. Inside Lambda SECRET_KEY is refused. Returns `None` when
    /// neither is set, so the local server can make a key for the run.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let arn = env.optional("SECRET_ARN")?;
        let key = env.optional("SECRET_KEY")?;
        // Checked even when unused, so a typo shows at start-up rather than after a switch.
        let cache_ttl =
            Duration::from_secs(env.integer("SECRET_CACHE_TTL_SECONDS", 300u64, 0, 86_400)?);
        match (arn, key) {
            (Some(_), Some(_)) => {
                Err(ConfigError::new("SECRET_KEY", "and SECRET_ARN are both set; set only one"))
            }
            (Some(arn), None) => Ok(Some(Self::SecretsManager { arn, cache_ttl })),
            (None, Some(key)) => {
                if env.in_lambda() {
                    return Err(ConfigError::new(
                        "SECRET_KEY",
                        "is refused inside AWS Lambda: store the key in Secrets Manager and set SECRET_ARN",
                    ));
                }
                check_key_length("SECRET_KEY", key.as_bytes())?;
                Ok(Some(Self::Local(key.into_bytes())))
            }
            (None, None) => Ok(None),
        }
    }

    /// Like [`KeySource::from_env`], but a key is required (the Lambda functions).
    pub fn require_from_env(env: &Env) -> Result<Self, ConfigError> {
        Self::from_env(env)?.ok_or_else(|| {
            ConfigError::new("SECRET_ARN", "is not set (the signing key's Secrets Manager secret)")
        })
    }
}

/// Refuses HS256 keys shorter than 32 bytes.
pub fn check_key_length(var: &'static str, key: &[u8]) -> Result<(), ConfigError> {
    if key.len() < MIN_KEY_BYTES {
        return Err(ConfigError::new(
            var,
            format!(
                "is too short: an HS256 key needs at least {MIN_KEY_BYTES} bytes, this one has {}",
                key.len()
            ),
        ));
    }
    Ok(())
}

/// The lowest work factor accepted for new hashes.
pub const MIN_PBKDF2_ITERATIONS: u32 = 100_000;
/// The default work factor for new hashes (OWASP's figure for PBKDF2-HMAC-SHA256).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;

/// PBKDF2_ITERATIONS: the work factor for new hashes.
pub fn pbkdf2_iterations(env: &Env) -> Result<u32, ConfigError> {
    env.integer(
        "PBKDF2_ITERATIONS",
        DEFAULT_PBKDF2_ITERATIONS,
        MIN_PBKDF2_ITERATIONS,
        crate::password::MAX_ITERATIONS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    const URL: &str = "postgres://u:p@h/db";

    #[test]
    fn defaults_follow_the_contract() {
        let e = env(&[("DATABASE_URL", URL)]);
        let db = DbConfig::from_env(&e, 1).unwrap();
        assert_eq!(db.pool_max_size, 1);
        assert_eq!(db.connect_timeout, Duration::from_millis(3000));
        assert_eq!(db.health_timeout, Duration::from_millis(2000));
        let t = TokenConfig::from_env(&e).unwrap();
        assert_eq!(
            (t.issuer.as_str(), t.audience.as_str(), t.ttl_seconds),
            ("auth-service", "auth-service", 3600)
        );
        assert_eq!(pbkdf2_iterations(&e).unwrap(), 600_000);
        assert_eq!(KeySource::from_env(&e).unwrap(), None);
    }

    #[test]
    fn values_are_parsed_and_ranges_enforced() {
        let e = env(&[
            ("TOKEN_TTL_SECONDS", " 60 "),
            ("PBKDF2_ITERATIONS", "100000"),
            ("JWT_ISSUER", "me"),
        ]);
        assert_eq!(TokenConfig::from_env(&e).unwrap().ttl_seconds, 60);
        assert_eq!(TokenConfig::from_env(&e).unwrap().issuer, "me");
        assert_eq!(pbkdf2_iterations(&e).unwrap(), 100_000);
        for (var, value) in [
            ("TOKEN_TTL_SECONDS", "59"),
            ("TOKEN_TTL_SECONDS", "86401"),
            ("TOKEN_TTL_SECONDS", "1e3"),
            ("PBKDF2_ITERATIONS", "99999"),
            ("PBKDF2_ITERATIONS", "20000000"),
        ] {
            let e = env(&[(var, value)]);
            let err =
                TokenConfig::from_env(&e).err().or_else(|| pbkdf2_iterations(&e).err()).unwrap();
            assert_eq!(err.var, var, "{value}");
        }
        let e = env(&[("DATABASE_URL", URL), ("DB_POOL_MAX_SIZE", "0")]);
        assert_eq!(DbConfig::from_env(&e, 1).unwrap_err().var, "DB_POOL_MAX_SIZE");
    }

    #[test]
    fn empty_means_unset_and_sources_are_exclusive() {
        let e = env(&[("DATABASE_URL", ""), ("SECRET_KEY", "  ")]);
        assert_eq!(DbConfig::from_env(&e, 1).unwrap_err().var, "DATABASE_URL");
        assert_eq!(KeySource::from_env(&e).unwrap(), None);
        let both = env(&[("DATABASE_URL", URL), ("DATABASE_SECRET_ARN", "arn")]);
        assert!(DbConfig::from_env(&both, 1).unwrap_err().problem.contains("both set"));
        let secret = env(&[
            ("DATABASE_SECRET_ARN", "arn"),
            ("DATABASE_HOST", "h"),
            ("DATABASE_PORT", "6432"),
        ]);
        let DbSource::Secret(s) = DbConfig::from_env(&secret, 1).unwrap().source else { panic!() };
        assert_eq!((s.host.as_deref(), s.port), (Some("h"), Some(6432)));
        let bad_mode = env(&[("DATABASE_SECRET_ARN", "arn"), ("DATABASE_SSLMODE", "verify-full")]);
        assert_eq!(DbConfig::from_env(&bad_mode, 1).unwrap_err().var, "DATABASE_SSLMODE");
    }

    #[test]
    fn secret_key_is_local_only() {
        let key = "k".repeat(32);
        let local = env(&[("SECRET_KEY", &key)]);
        assert_eq!(
            KeySource::from_env(&local).unwrap(),
            Some(KeySource::Local(key.clone().into_bytes()))
        );
        for lambda in [
            env(&[("SECRET_KEY", &key), ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")]),
            env(&[("SECRET_KEY", &key), ("AWS_EXECUTION_ENV", "AWS_Lambda_rust")]),
        ] {
            assert!(lambda.in_lambda());
            assert!(
                KeySource::from_env(&lambda)
                    .unwrap_err()
                    .problem
                    .contains("refused inside AWS Lambda")
            );
        }
        let sam = env(&[
            ("SECRET_KEY", &key),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_SAM_LOCAL", "true"),
        ]);
        assert!(!sam.in_lambda());
        assert!(KeySource::from_env(&sam).is_ok());
        let arn =
            env(&[("SECRET_ARN", "arn:aws:secretsmanager:x"), ("SECRET_CACHE_TTL_SECONDS", "60")]);
        assert_eq!(
            KeySource::require_from_env(&arn).unwrap(),
            KeySource::SecretsManager {
                arn: "arn:aws:secretsmanager:x".into(),
                cache_ttl: Duration::from_secs(60)
            }
        );
        assert_eq!(KeySource::require_from_env(&env(&[])).unwrap_err().var, "SECRET_ARN");
        assert!(!format!("{:?}", KeySource::Local(key.clone().into_bytes())).contains(&key));
    }

    #[test]
    fn key_length_is_checked() {
        assert!(check_key_length("SECRET_KEY", &[0; 31]).is_err());
        assert!(check_key_length("SECRET_KEY", &[0; 32]).is_ok());
        let e = check_key_length("SECRET_KEY", b"short").unwrap_err();
        assert_eq!(e.var, "SECRET_KEY");
        assert!(e.to_string().contains("at least 32 bytes"), "{e}");
        assert!(!e.to_string().contains("short\""), "the key itself is never echoed: {e}");
    }
}
