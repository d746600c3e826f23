//! The signing keys: where they come from (SECRET_KEY locally, Secrets Manager in AWS), how
//! long they are cached, and how a token's `kid` finds its key version.
//!
//! Rotation: tokens are signed with the AWSCURRENT version and verified with AWSCURRENT or
//! AWSPREVIOUS, chosen by `kid`. Cold start reads AWSCURRENT only (all login needs); AWSPREVIOUS
//! is read the first time a token names a version the container does not hold. Beyond that, a
//! `kid` that names neither refreshes the cache at most once a minute per container; a warm
//! container keeps serving from its cache while Secrets Manager is briefly unreachable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::Mutex;

use crate::config::{ConfigError, KeySource, check_key_length};
use crate::secrets::{SecretError, SecretsClient};
use crate::token::{Key, TokenError};

/// The `kid` of a key given directly (SECRET_KEY or the local server's random key).
pub const LOCAL_KID: &str = "local";
/// The least time between two refreshes caused by unknown `kid`s.
pub const UNKNOWN_KID_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The key versions in use.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// Signs new tokens (AWSCURRENT).
    pub current: Key,
    /// Still verifies tokens signed before the last rotation (AWSPREVIOUS).
    pub previous: Option<Key>,
}

impl KeySet {
    /// The version named `kid`, if any.
    pub fn find(&self, kid: &str) -> Option<&Key> {
        std::iter::once(&self.current).chain(&self.previous).find(|k| k.kid == kid)
    }
}

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading the secret failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The secret's value is not a usable key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key could not be prepared.
    #[error(transparent)]
    Token(#[from] TokenError),
}

struct Cache {
    set: Arc<KeySet>,
    fetched: Instant,
    last_kid_refresh: Option<Instant>,
    /// Whether AWSPREVIOUS has been read since AWSCURRENT last changed.
    previous_loaded: bool,
}

struct Managed {
    client: SecretsClient,
    arn: String,
    ttl: Duration,
}

/// The signing keys of this container.
pub struct Keys {
    managed: Option<Managed>,
    cache: Mutex<Cache>,
}

impl Keys {
    /// Keys from a secret given directly; never refreshed.
    pub fn local(secret: &[u8]) -> Result<Self, KeyError> {
        check_key_length("SECRET_KEY", secret)?;
        let set = KeySet { current: Key::new(LOCAL_KID, secret)?, previous: None };
        Ok(Self::cached(None, set))
    }

    fn cached(managed: Option<Managed>, set: KeySet) -> Self {
        let previous_loaded = managed.is_none();
        Self {
            managed,
            cache: Mutex::new(Cache {
                set: Arc::new(set),
                fetched: Instant::now(),
                last_kid_refresh: None,
                previous_loaded,
            }),
        }
    }

    /// Loads the keys from `source`: for Secrets Manager this reads AWSCURRENT now, at cold
    /// start, so a missing or unreadable secret stops the function.
    pub async fn load(source: &KeySource) -> Result<Self, KeyError> {
        match source {
            KeySource::Local(secret) => Self::local(secret.expose_secret()),
            KeySource::SecretsManager { arn, cache_ttl } => {
                let client = SecretsClient::from_env().await;
                let set = KeySet {
                    current: fetch_stage(&client, arn, "AWSCURRENT").await?,
                    previous: None,
                };
                Ok(Self::cached(Some(Managed { client, arn: arn.clone(), ttl: *cache_ttl }), set))
            }
        }
    }

    /// The key versions to sign with, AWSCURRENT re-read when older than
    /// SECRET_CACHE_TTL_SECONDS. If the read fails the cached versions keep serving.
    pub async fn current(&self) -> Arc<KeySet> {
        let mut cache = self.cache.lock().await;
        if let Some(m) = &self.managed
            && cache.fetched.elapsed() >= m.ttl
        {
            match fetch_stage(&m.client, &m.arn, "AWSCURRENT").await {
                Ok(current) => {
                    if current.kid != cache.set.current.kid {
                        // Rotated: AWSPREVIOUS moved too; read it when a token asks for it.
                        cache.set = Arc::new(KeySet { current, previous: None });
                        cache.previous_loaded = false;
                    }
                    cache.fetched = Instant::now();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "signing key refresh failed; serving cached keys");
                }
            }
        }
        cache.set.clone()
    }

    /// The key version named `kid`. An unknown `kid` refreshes the cache, at most once a minute.
    pub async fn for_kid(&self, kid: &str) -> Option<Key> {
        let set = self.current().await;
        if let Some(key) = set.find(kid) {
            return Some(key.clone());
        }
        let m = self.managed.as_ref()?;
        let mut cache = self.cache.lock().await;
        if let Some(key) = cache.set.find(kid) {
            // Someone else refreshed while we waited.
            return Some(key.clone());
        }
        if !cache.previous_loaded {
            // Not a refresh: completing the set, once per rotation, so a token of AWSPREVIOUS
            // is never refused because an unknown kid used up the minute first.
            cache.previous_loaded = true;
            match fetch_stage(&m.client, &m.arn, "AWSPREVIOUS").await {
                Ok(previous) => {
                    let current = cache.set.current.clone();
                    cache.set = Arc::new(KeySet { current, previous: Some(previous) });
                    if let Some(key) = cache.set.find(kid) {
                        return Some(key.clone());
                    }
                }
                Err(KeyError::Secret(SecretError::NotFound { .. })) => {}
                Err(e) => {
                    cache.previous_loaded = false;
                    tracing::warn!(error = %e, "AWSPREVIOUS signing key could not be read");
                }
            }
        }
        if cache.last_kid_refresh.is_some_and(|t| t.elapsed() < UNKNOWN_KID_REFRESH_INTERVAL) {
            return None;
        }
        cache.last_kid_refresh = Some(Instant::now());
        self.refresh(m, &mut cache).await;
        cache.set.find(kid).cloned()
    }

    async fn refresh(&self, m: &Managed, cache: &mut Cache) {
        match fetch(&m.client, &m.arn).await {
            Ok(set) => {
                cache.set = Arc::new(set);
                cache.fetched = Instant::now();
                cache.previous_loaded = true;
            }
            Err(e) => {
                // Serve from the cache and try again at the next request.
                tracing::warn!(error = %e, "signing key refresh failed; serving cached keys");
            }
        }
    }
}

/// Reads one version stage as a key.
async fn fetch_stage(client: &SecretsClient, arn: &str, stage: &str) -> Result<Key, KeyError> {
    let v = client.get(arn, stage).await?;
    key_from_secret(v.version_id, v.value.expose_secret())
}

/// Reads AWSCURRENT and, when it exists, AWSPREVIOUS.
async fn fetch(client: &SecretsClient, arn: &str) -> Result<KeySet, KeyError> {
    let current = fetch_stage(client, arn, "AWSCURRENT").await?;
    let previous = match fetch_stage(client, arn, "AWSPREVIOUS").await {
        Ok(k) => Some(k),
        Err(KeyError::Secret(SecretError::NotFound { .. })) => None,
        Err(e) => {
            tracing::warn!(error = %e, "AWSPREVIOUS signing key could not be read");
            None
        }
    };
    Ok(KeySet { current, previous })
}

/// A key from a secret's value: the plain string, or the `SECRET_KEY` member of a JSON object.
fn key_from_secret(version_id: String, value: &str) -> Result<Key, KeyError> {
    let secret = match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(map)) => match map.get("SECRET_KEY") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => {
                return Err(ConfigError::new(
                    "SECRET_ARN",
                    "names a JSON secret without a string member SECRET_KEY",
                )
                .into());
            }
        },
        _ => value.to_owned(),
    };
    check_key_length("SECRET_ARN", secret.as_bytes())?;
    Ok(Key::new(version_id, secret.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_plain_and_json() {
        let k = key_from_secret("v1".into(), &"x".repeat(32)).unwrap();
        assert_eq!(k.kid, "v1");
        assert!(
            key_from_secret("v1".into(), &format!("{{\"SECRET_KEY\":\"{}\"}}", "y".repeat(40)))
                .is_ok()
        );
        let short = key_from_secret("v1".into(), r#"{"SECRET_KEY":"short"}"#).unwrap_err();
        assert!(short.to_string().contains("at least 32 bytes"), "{short}");
        let wrong = key_from_secret("v1".into(), r#"{"key":"0123456789012345678901234567890123"}"#);
        assert!(wrong.unwrap_err().to_string().contains("SECRET_KEY"));
    }

    #[tokio::test]
    async fn local_keys_find_by_kid() {
        let keys = Keys::local(&[9u8; 32]).unwrap();
        assert_eq!(keys.current().await.current.kid, LOCAL_KID);
        assert!(keys.for_kid(LOCAL_KID).await.is_some());
        assert!(keys.for_kid("other").await.is_none());
    }
}
