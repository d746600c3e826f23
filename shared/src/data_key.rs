//! The data key: a secret of its own (never in the database) that keys the hashes of mailed
//! codes and link tokens, so that a copy of the database alone recovers none of them.
//!
//! It lives in its own Secrets Manager secret (DATA_KEY_SECRET_ARN; a plain string of at least
//! 32 bytes, as the template generates it), or locally in DATA_KEY (refused inside Lambda, as
//! SECRET_KEY is; auth-local makes a random one per run when neither is set). Every stored
//! value names the key version it was made with (the secret's version id, or `local`), and is
//! checked with that version, so a rotated key does not void codes made a moment before; a
//! version no longer readable makes its values simply fail, as an expired code does.
//!
//! Each use gets its own subkey, HMAC-SHA-256(key, label) (HKDF-Expand's one-block form,
//! RFC 5869 §2.3), so no two uses ever share a MAC key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice};

use crate::config::{ConfigError, Env};
use crate::secrets::{SecretError, SecretsClient};

type HmacSha256 = Hmac<sha2::Sha256>;

/// The shortest key accepted, in bytes (as for an HS256 key, RFC 7518 §3.2).
pub const MIN_DATA_KEY_BYTES: usize = 32;

/// The version id of a key given in DATA_KEY (or made for an auth-local run).
pub const LOCAL_VERSION: &str = "local";

/// Where the data key comes from. `Debug` shows the ARN, never a key.
#[derive(Clone, Debug)]
pub enum DataKeySource {
    /// DATA_KEY_SECRET_ARN: a Secrets Manager secret holding the key as a string.
    SecretsManager {
        /// The secret's ARN or name.
        arn: String,
        /// SECRET_CACHE_TTL_SECONDS: how long the current version is reused.
        cache_ttl: Duration,
    },
    /// DATA_KEY: the key itself, local use only.
    Local(SecretSlice<u8>),
}

impl DataKeySource {
    /// Loads DATA_KEY_SECRET_ARN or DATA_KEY. Inside Lambda DATA_KEY is refused; a key shorter
    /// than [`MIN_DATA_KEY_BYTES`] is refused. `None` when neither is set.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let arn = env.optional("DATA_KEY_SECRET_ARN")?;
        let key = env.optional("DATA_KEY")?;
        let cache_ttl =
            Duration::from_secs(env.integer("SECRET_CACHE_TTL_SECONDS", 300u64, 0, 86_400)?);
        match (arn, key) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                "DATA_KEY",
                "and DATA_KEY_SECRET_ARN are both set; set only one",
            )),
            (Some(arn), None) => Ok(Some(Self::SecretsManager { arn, cache_ttl })),
            (None, Some(key)) => {
                if env.in_lambda() {
                    return Err(ConfigError::new(
                        "DATA_KEY",
                        "is refused inside AWS Lambda: store the key in Secrets Manager and set DATA_KEY_SECRET_ARN",
                    ));
                }
                check_length("DATA_KEY", key.len())?;
                Ok(Some(Self::Local(key.into_bytes().into())))
            }
            (None, None) => Ok(None),
        }
    }

    /// Like [`DataKeySource::from_env`], but a key is required (the Lambda functions).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable.
    pub fn require_from_env(env: &Env) -> Result<Self, ConfigError> {
        Self::from_env(env)?.ok_or_else(|| {
            ConfigError::new(
                "DATA_KEY_SECRET_ARN",
                "is not set (the data key's Secrets Manager secret)",
            )
        })
    }

    /// A random key for one auth-local run.
    pub fn random() -> Self {
        Self::Local(crate::random::bytes::<32>().to_vec().into())
    }
}

fn check_length(var: &'static str, len: usize) -> Result<(), ConfigError> {
    if len < MIN_DATA_KEY_BYTES {
        return Err(ConfigError::new(
            var,
            format!(
                "is too short: the data key needs at least {MIN_DATA_KEY_BYTES} bytes, this one has {len}"
            ),
        ));
    }
    Ok(())
}

/// Why a key version could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DataKeyError {
    /// Secrets Manager failed or refused (its message names the secret, never a value).
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The secret's value is shorter than [`MIN_DATA_KEY_BYTES`].
    #[error("the data key secret {arn} holds fewer than {MIN_DATA_KEY_BYTES} bytes")]
    TooShort {
        /// The secret.
        arn: String,
    },
}

/// One version of the data key.
pub struct KeyVersion {
    /// The secret's version id (or [`LOCAL_VERSION`]); stored beside every value made with it.
    pub id: String,
    key: SecretSlice<u8>,
}

impl std::fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersion").field("id", &self.id).finish_non_exhaustive()
    }
}

impl KeyVersion {
    /// A version from its id and key bytes (tests, and the sources below).
    pub fn new(id: impl Into<String>, key: Vec<u8>) -> Self {
        Self { id: id.into(), key: key.into() }
    }

    /// HMAC-SHA-256 under this version's subkey for `label`, over `parts`, each prefixed with
    /// its length (8 bytes, big-endian), so that no two different lists of parts give the
    /// same input. 32 bytes.
    pub fn mac(&self, label: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.subkey_mac(label);
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `expected` is [`KeyVersion::mac`] of `parts`, compared in constant time.
    pub fn verify(&self, label: &str, parts: &[&[u8]], expected: &[u8]) -> bool {
        let mut mac = self.subkey_mac(label);
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.verify_slice(expected).is_ok()
    }

    /// A 32-byte subkey for `label` (HKDF-Expand with one block: HMAC(key, label || 0x01)).
    pub fn subkey(&self, label: &str) -> SecretSlice<u8> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.key.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(label.as_bytes());
        mac.update(&[1]);
        mac.finalize().into_bytes().to_vec().into()
    }

    fn subkey_mac(&self, label: &str) -> HmacSha256 {
        let sub = self.subkey(label);
        <HmacSha256 as KeyInit>::new_from_slice(sub.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"))
    }
}

/// The data key as a function holds it: the current version (re-read from Secrets Manager
/// after its cache time), and older versions by id as stored values name them.
pub struct DataKey {
    source: DataKeySource,
    secrets: Option<SecretsClient>,
    current: Mutex<Option<(Arc<KeyVersion>, Instant)>>,
    by_id: Mutex<HashMap<String, Arc<KeyVersion>>>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("source", &self.source).finish_non_exhaustive()
    }
}

impl DataKey {
    /// Builds the key holder; a Secrets Manager source is read on first use (and
    /// [`DataKey::current`] at start-up proves it readable).
    pub async fn new(source: DataKeySource) -> Self {
        let secrets = match source {
            DataKeySource::SecretsManager { .. } => Some(SecretsClient::from_env().await),
            DataKeySource::Local(_) => None,
        };
        Self { source, secrets, current: Mutex::new(None), by_id: Mutex::new(HashMap::new()) }
    }

    /// The version new values are made with (AWSCURRENT).
    ///
    /// # Errors
    /// [`DataKeyError`] when the secret cannot be read or is too short.
    pub async fn current(&self) -> Result<Arc<KeyVersion>, DataKeyError> {
        match (&self.source, &self.secrets) {
            (DataKeySource::SecretsManager { arn, cache_ttl }, Some(secrets)) => {
                if let Some((v, at)) = &*self.current.lock().unwrap_or_else(|p| p.into_inner())
                    && at.elapsed() < *cache_ttl
                {
                    return Ok(v.clone());
                }
                let value = secrets.get(arn, "AWSCURRENT").await?;
                let v = Arc::new(Self::version_of(arn, value.version_id, value.value)?);
                *self.current.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((v.clone(), Instant::now()));
                self.remember(&v);
                Ok(v)
            }
            (DataKeySource::Local(key), _) => {
                Ok(Arc::new(KeyVersion::new(LOCAL_VERSION, key.expose_secret().to_vec())))
            }
            (DataKeySource::SecretsManager { .. }, None) => {
                unreachable!("a Secrets Manager source always has its client")
            }
        }
    }

    /// The version `id` names if it is the current one or one this holder has already read;
    /// never a lookup of another (for ids a caller chose, before any signature over them is
    /// checked).
    pub async fn held(&self, id: &str) -> Option<Arc<KeyVersion>> {
        if let Some(v) = self.by_id.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Some(v.clone());
        }
        let current = self.current().await.ok()?;
        (current.id == id).then_some(current)
    }

    /// The version `id` names, or `None` when it is not (or no longer) readable: a value made
    /// with it then fails its check, as an expired one does.
    pub async fn version(&self, id: &str) -> Option<Arc<KeyVersion>> {
        if let Some(v) = self.by_id.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Some(v.clone());
        }
        match (&self.source, &self.secrets) {
            (DataKeySource::Local(_), _) => {
                (id == LOCAL_VERSION).then(|| self.current_local()).flatten()
            }
            (DataKeySource::SecretsManager { arn, .. }, Some(secrets)) => {
                let current = self.current().await.ok()?;
                if current.id == id {
                    return Some(current);
                }
                let value = match secrets.get_version_any_stage(arn, id).await {
                    Ok(value) => value,
                    Err(e) => {
                        tracing::warn!(error = %e, version = id, "a data key version could not be read");
                        return None;
                    }
                };
                let v = Arc::new(Self::version_of(arn, value.version_id, value.value).ok()?);
                self.remember(&v);
                Some(v)
            }
            (DataKeySource::SecretsManager { .. }, None) => None,
        }
    }

    fn current_local(&self) -> Option<Arc<KeyVersion>> {
        match &self.source {
            DataKeySource::Local(key) => {
                Some(Arc::new(KeyVersion::new(LOCAL_VERSION, key.expose_secret().to_vec())))
            }
            DataKeySource::SecretsManager { .. } => None,
        }
    }

    fn remember(&self, v: &Arc<KeyVersion>) {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).insert(v.id.clone(), v.clone());
    }

    fn version_of(
        arn: &str,
        id: String,
        value: secrecy::SecretString,
    ) -> Result<KeyVersion, DataKeyError> {
        let bytes = value.expose_secret().as_bytes();
        if bytes.len() < MIN_DATA_KEY_BYTES {
            return Err(DataKeyError::TooShort { arn: arn.to_owned() });
        }
        Ok(KeyVersion::new(id, bytes.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn configuration_is_checked() {
        assert!(DataKeySource::from_env(&env(&[])).unwrap().is_none());
        let key = "k".repeat(32);
        assert!(matches!(
            DataKeySource::from_env(&env(&[("DATA_KEY", &key)])).unwrap(),
            Some(DataKeySource::Local(_))
        ));
        let e = DataKeySource::from_env(&env(&[("DATA_KEY", "short")])).unwrap_err();
        assert_eq!(e.var, "DATA_KEY");
        assert!(e.problem.contains("too short") && !e.problem.contains("short\""), "{e}");
        let e = DataKeySource::from_env(&env(&[("DATA_KEY", &key), ("DATA_KEY_SECRET_ARN", "a")]))
            .unwrap_err();
        assert!(e.problem.contains("both set"), "{e}");
        let lambda = [("DATA_KEY", key.as_str()), ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")];
        let e = DataKeySource::from_env(&env(&lambda)).unwrap_err();
        assert!(e.problem.contains("refused inside AWS Lambda"), "{e}");
        assert!(!e.to_string().contains(&key), "never the key: {e}");
        let e = DataKeySource::require_from_env(&env(&[])).unwrap_err();
        assert_eq!(e.var, "DATA_KEY_SECRET_ARN");
    }

    #[test]
    fn macs_are_keyed_labelled_and_unambiguous() {
        let a = KeyVersion::new("1", vec![1; 32]);
        let b = KeyVersion::new("2", vec![2; 32]);
        let m = a.mac("code", &[b"ab", b"c"]);
        assert!(a.verify("code", &[b"ab", b"c"], &m));
        assert!(!b.verify("code", &[b"ab", b"c"], &m), "another key");
        assert!(!a.verify("token", &[b"ab", b"c"], &m), "another label");
        assert!(!a.verify("code", &[b"a", b"bc"], &m), "parts are length-prefixed");
        assert!(!a.verify("code", &[b"ab", b"c"], &m[..31]), "a short tag");
        assert_ne!(a.subkey("x").expose_secret(), a.subkey("y").expose_secret());
        assert!(!format!("{a:?}").contains("1, 1"), "Debug hides the key");
    }

    #[tokio::test]
    async fn a_local_key_has_one_version() {
        let k = DataKey::new(DataKeySource::Local(vec![7; 32].into())).await;
        let v = k.current().await.unwrap();
        assert_eq!(v.id, LOCAL_VERSION);
        assert!(k.version(LOCAL_VERSION).await.is_some());
        assert!(k.version("another").await.is_none());
    }
}
