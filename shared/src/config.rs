//! Configuration from the environment: one loader per concern, typed settings, and start-up
//! errors that name the variable and what is wrong with it (never its value when it may hold a
//! secret).

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

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

    /// Reads a duration in milliseconds with a default and an inclusive range.
    pub fn millis(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::Policy;
    use crate::signing::KeySource;

    const URL: &str = "postgres://u:p@h/db";

    #[test]
    fn defaults_follow_the_contract() {
        let e = Env::from_pairs([("DATABASE_URL", URL)]);
        let t = TokenConfig::from_env(&e).unwrap();
        assert_eq!(
            (t.issuer.as_str(), t.audience.as_str(), t.ttl_seconds),
            ("auth-service", "auth-service", 3600)
        );
        assert_eq!(Policy::from_env(&e).unwrap().iterations, 600_000);
        assert!(KeySource::from_env(&e).unwrap().is_none());
    }

    #[test]
    fn values_are_parsed_and_ranges_enforced() {
        let e = Env::from_pairs([
            ("TOKEN_TTL_SECONDS", " 60 "),
            ("PBKDF2_ITERATIONS", "100000"),
            ("JWT_ISSUER", "me"),
        ]);
        assert_eq!(TokenConfig::from_env(&e).unwrap().ttl_seconds, 60);
        assert_eq!(TokenConfig::from_env(&e).unwrap().issuer, "me");
        assert_eq!(Policy::from_env(&e).unwrap().iterations, 100_000);
        for (var, value) in [
            ("TOKEN_TTL_SECONDS", "59"),
            ("TOKEN_TTL_SECONDS", "86401"),
            ("TOKEN_TTL_SECONDS", "1e3"),
            ("PBKDF2_ITERATIONS", "99999"),
            ("PBKDF2_ITERATIONS", "20000000"),
        ] {
            let e = Env::from_pairs([(var, value)]);
            let err =
                TokenConfig::from_env(&e).err().or_else(|| Policy::from_env(&e).err()).unwrap();
            assert_eq!(err.var, var, "{value}");
        }
    }

    #[test]
    fn empty_means_unset() {
        let e = Env::from_pairs([("DATABASE_URL", ""), ("SECRET_KEY", "  ")]);
        assert_eq!(e.optional("DATABASE_URL").unwrap(), None);
        assert!(KeySource::from_env(&e).unwrap().is_none());
    }
}
