//! The signing keys: where they come from (SECRET_KEY locally, Secrets Manager in AWS), how
//! long they are cached, which version signs, and how a token's `kid` finds its key version.
//!
//! Rotation: the versions staged AWSCURRENT, AWSPREVIOUS and AWSPENDING are read together
//! (at cold start, then whenever the cache is older than SECRET_CACHE_TTL_SECONDS); all three
//! verify tokens, chosen by `kid`, and all three are published in the JWKS. A version signs
//! only once it is JWKS_PUBLISH_LEAD_SECONDS old (Secrets Manager's CreatedDate), because a
//! verifier (API Gateway's JWT authorizer) may hold a JWKS fetched before the version existed
//! for up to two hours: until then AWSPREVIOUS keeps signing. A `kid` that names no version
//! held refreshes the cache at most once a minute per container; a warm container keeps
//! serving from its cache while Secrets Manager is briefly unreachable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::Mutex;

use crate::config::ConfigError;
use crate::secrets::{SecretError, SecretsClient};
use crate::signing::Key;
use crate::signing::{KeySource, SigningAlg, SigningConfig, check_key_length};
use crate::token::TokenError;

/// The `kid` of a key given directly (SECRET_KEY or the local server's random key).
pub const LOCAL_KID: &str = "local";
/// The least time between two refreshes caused by unknown `kid`s.
pub const UNKNOWN_KID_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The key versions in use.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// AWSCURRENT (or the one local key).
    pub current: Key,
    /// AWSPREVIOUS: verifies tokens signed before the last rotation, and signs while
    /// AWSCURRENT is younger than the publishing lead.
    pub previous: Option<Key>,
    /// AWSPENDING: a rotation under way; published, never signs.
    pub pending: Option<Key>,
    /// Versions an earlier read held that the last one could not confirm, because a stage's
    /// read failed (throttled, timed out): a failed read never takes a key away, so these
    /// keep verifying until a read succeeds in full.
    retained: Vec<Key>,
    /// Whether every stage was read (or known absent): false after a failed stage read.
    complete: bool,
    /// Whether AWSPREVIOUS is known: read, or known not to exist. False after a failed read
    /// of it with nothing held from before; then no version signs unless AWSCURRENT has
    /// itself been published for the lead.
    previous_known: bool,
    /// JWKS_PUBLISH_LEAD_SECONDS.
    lead_seconds: i64,
}

/// No version held can be shown to have been published for JWKS_PUBLISH_LEAD_SECONDS, so
/// none signs (the caller answers 503 `service_unavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no signing key version is known to have been published for the lead time")]
pub struct NotPublishedLongEnough;

impl KeySet {
    /// One key, signing at once.
    pub fn single(key: Key) -> Self {
        Self {
            current: key,
            previous: None,
            pending: None,
            retained: Vec::new(),
            complete: true,
            previous_known: true,
            lead_seconds: 0,
        }
    }

    /// When the next read of these versions is due: after `ttl`, or sooner after a read that
    /// left a stage unknown ([`PARTIAL_READ_RETRY`]).
    fn due_after(&self, ttl: Duration) -> Duration {
        if self.complete { ttl } else { ttl.min(PARTIAL_READ_RETRY) }
    }

    /// The version named `kid`, if any.
    pub fn find(&self, kid: &str) -> Option<&Key> {
        self.published().find(|k| k.kid == kid)
    }

    /// Every version held: current, previous, pending, and any retained after a failed read
    /// (the JWKS lists their public halves).
    pub fn published(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .chain(&self.pending)
            .chain(&self.retained)
    }

    /// The version that signs new tokens now.
    pub fn signing(&self) -> Result<&Key, NotPublishedLongEnough> {
        self.signing_at(crate::token::now())
    }

    /// Whether `key` has been published for the lead at `now`: its creation time (Secrets
    /// Manager's CreatedDate, seconds since the epoch) is at least the lead ago. A key given
    /// directly has no creation time and no lead, and is ready at once; a managed version
    /// without a creation time is never shown ready.
    fn ready(&self, key: &Key, now: i64) -> bool {
        match key.created_at {
            Some(created) => now - created >= self.lead_seconds,
            None => self.lead_seconds == 0,
        }
    }

    /// The version that signs at `now`: AWSCURRENT once it has been published for the lead
    /// time; until then AWSPREVIOUS, the version that signed before this rotation (and so was
    /// published before it); AWSCURRENT when there is known to be no previous version (the
    /// first key of a deployment, which no verifier can have cached a key set without). When
    /// AWSPREVIOUS could not be read and nothing was held from before, none signs: the young
    /// AWSCURRENT cannot be shown to be published long enough.
    pub fn signing_at(&self, now: i64) -> Result<&Key, NotPublishedLongEnough> {
        if self.ready(&self.current, now) {
            return Ok(&self.current);
        }
        match &self.previous {
            Some(previous) => Ok(previous),
            None if self.previous_known => Ok(&self.current),
            None => Err(NotPublishedLongEnough),
        }
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
    /// How long after `fetched` the next read is due: the TTL, or [`PARTIAL_READ_RETRY`] after
    /// a read that left a stage unknown.
    due_after: Duration,
    last_kid_refresh: Option<Instant>,
}

/// After a read that left AWSPREVIOUS or AWSPENDING unknown (a failed read of it), the next
/// read comes this soon rather than after the TTL: a cold container in that state signs
/// nothing while AWSCURRENT is younger than the lead.
pub const PARTIAL_READ_RETRY: Duration = Duration::from_secs(30);

struct Managed {
    client: SecretsClient,
    arn: String,
    ttl: Duration,
    lead_seconds: i64,
}

/// The signing keys of this container.
pub struct Keys {
    alg: SigningAlg,
    managed: Option<Managed>,
    cache: Mutex<Cache>,
}

impl Keys {
    /// An HS256 key given directly; never refreshed.
    pub fn local(secret: &[u8]) -> Result<Self, KeyError> {
        check_key_length("SECRET_KEY", secret)?;
        Ok(Self::cached(SigningAlg::Hs256, None, KeySet::single(Key::new(LOCAL_KID, secret)?)))
    }

    /// A key of `alg` given directly (SECRET_KEY: the HMAC secret, or an RSA private key in
    /// PKCS#8 PEM); signs at once, never refreshed.
    pub fn local_with(alg: SigningAlg, secret: &[u8]) -> Result<Self, KeyError> {
        match alg {
            SigningAlg::Hs256 => Self::local(secret),
            SigningAlg::Rs256 => {
                let text = std::str::from_utf8(secret).map_err(|_| {
                    ConfigError::new("SECRET_KEY", TokenError::NotRsaPkcs8.to_string())
                })?;
                let key = Key::rsa_pem(LOCAL_KID, text)
                    .map_err(|e| ConfigError::new("SECRET_KEY", e.to_string()))?;
                Ok(Self::cached(alg, None, KeySet::single(key)))
            }
        }
    }

    fn cached(alg: SigningAlg, managed: Option<Managed>, set: KeySet) -> Self {
        let due_after = set.due_after(managed.as_ref().map_or(Duration::MAX, |m| m.ttl));
        Self {
            alg,
            managed,
            cache: Mutex::new(Cache {
                due_after,
                set: Arc::new(set),
                fetched: Instant::now(),
                last_kid_refresh: None,
            }),
        }
    }

    /// Loads the keys from `source`: for Secrets Manager this reads the versions now, at cold
    /// start, so a missing or unreadable secret (or an AWSCURRENT that is not a key of the
    /// configured algorithm) stops the function.
    pub async fn load(source: &KeySource, signing: &SigningConfig) -> Result<Self, KeyError> {
        match source {
            KeySource::Local(secret) => Self::local_with(signing.alg, secret.expose_secret()),
            KeySource::SecretsManager { arn, cache_ttl } => {
                let client = SecretsClient::from_env().await;
                let managed = Managed {
                    client,
                    arn: arn.clone(),
                    ttl: *cache_ttl,
                    lead_seconds: i64::try_from(signing.publish_lead_seconds).unwrap_or(i64::MAX),
                };
                let set = fetch(&managed, signing.alg, None).await?;
                Ok(Self::cached(signing.alg, Some(managed), set))
            }
        }
    }

    /// The algorithm every key of this container signs and verifies.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The key versions, re-read when older than SECRET_CACHE_TTL_SECONDS. If the read fails
    /// the cached versions keep serving.
    pub async fn current(&self) -> Arc<KeySet> {
        let mut cache = self.cache.lock().await;
        if let Some(m) = &self.managed
            && cache.fetched.elapsed() >= cache.due_after
        {
            self.refresh(m, &mut cache).await;
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
        if cache.last_kid_refresh.is_some_and(|t| t.elapsed() < UNKNOWN_KID_REFRESH_INTERVAL) {
            return None;
        }
        cache.last_kid_refresh = Some(Instant::now());
        self.refresh(m, &mut cache).await;
        cache.set.find(kid).cloned()
    }

    async fn refresh(&self, m: &Managed, cache: &mut Cache) {
        match fetch(m, self.alg, Some(&cache.set)).await {
            Ok(set) => {
                cache.due_after = set.due_after(m.ttl);
                cache.set = Arc::new(set);
                cache.fetched = Instant::now();
            }
            Err(e) => {
                // Serve from the cache and try again after the TTL.
                cache.fetched = Instant::now();
                cache.due_after = m.ttl;
                tracing::warn!(error = %e, "signing key refresh failed; serving cached keys");
            }
        }
    }
}

/// Reads one version stage as a key; a version already held (`known`) is not parsed again.
async fn fetch_stage(
    m: &Managed,
    alg: SigningAlg,
    stage: &str,
    known: Option<&KeySet>,
) -> Result<Key, KeyError> {
    let v = m.client.get(&m.arn, stage).await?;
    if let Some(key) = known.and_then(|k| k.find(&v.version_id)) {
        return Ok(key.clone());
    }
    Ok(key_from_secret(v.version_id, alg, v.value.expose_secret())?.created(v.created_at))
}

/// What reading an optional stage (AWSPREVIOUS, AWSPENDING) came to.
enum Stage {
    /// A usable version other than AWSCURRENT.
    Held(Key),
    /// Known: the stage is on no version, on AWSCURRENT's, or on one that is not a key.
    Absent,
    /// The read failed (throttled, timed out, unreachable): nothing is known.
    Unknown,
}

fn stage_of(current: &Key, stage: &str, got: Result<Key, KeyError>) -> Stage {
    match got {
        Ok(k) if k.kid != current.kid => Stage::Held(k),
        Ok(_) | Err(KeyError::Secret(SecretError::NotFound { .. })) => Stage::Absent,
        Err(KeyError::Secret(e)) => {
            tracing::debug!(error = %e, stage, "signing key version could not be read");
            Stage::Unknown
        }
        Err(e) => {
            tracing::warn!(error = %e, stage, "signing key version is not a usable key; left out");
            Stage::Absent
        }
    }
}

/// Reads AWSCURRENT, and AWSPREVIOUS and AWSPENDING when they exist, at once. Only
/// AWSCURRENT must be read and be a usable key; a bad previous or pending version is logged
/// and left out. When a previous or pending read fails, nothing held before (`known`) is
/// dropped: its versions stay, retained for verification, and AWSPREVIOUS is taken from what
/// was held (the former AWSCURRENT when AWSCURRENT has moved since, as Secrets Manager
/// stages it AWSPREVIOUS), with one warning for the whole read.
async fn fetch(m: &Managed, alg: SigningAlg, known: Option<&KeySet>) -> Result<KeySet, KeyError> {
    let (current, previous, pending) = tokio::join!(
        fetch_stage(m, alg, "AWSCURRENT", known),
        fetch_stage(m, alg, "AWSPREVIOUS", known),
        fetch_stage(m, alg, "AWSPENDING", known),
    );
    let current = current?;
    let previous = stage_of(&current, "AWSPREVIOUS", previous);
    let pending = stage_of(&current, "AWSPENDING", pending);
    let failed = matches!(previous, Stage::Unknown) || matches!(pending, Stage::Unknown);
    let (previous, previous_known) = match (previous, known) {
        (Stage::Held(k), _) => (Some(k), true),
        (Stage::Absent, _) => (None, true),
        (Stage::Unknown, None) => (None, false),
        (Stage::Unknown, Some(old)) if old.current.kid == current.kid => {
            (old.previous.clone(), old.previous_known)
        }
        (Stage::Unknown, Some(old)) => (Some(old.current.clone()), true),
    };
    let pending = match pending {
        Stage::Held(k) => Some(k),
        Stage::Absent | Stage::Unknown => None,
    };
    let mut set = KeySet {
        current,
        previous,
        pending,
        retained: Vec::new(),
        complete: !failed,
        previous_known,
        lead_seconds: m.lead_seconds,
    };
    if failed {
        if let Some(old) = known {
            set.retained =
                old.published().filter(|k| set.find(&k.kid).is_none()).cloned().collect();
        }
        tracing::warn!(
            signing_version = set.signing().map_or("none", |k| k.kid.as_str()),
            "signing key versions could not all be read; keeping every version held"
        );
    }
    Ok(set)
}

/// A key from a secret's value: the plain string, or the `SECRET_KEY` member of a JSON object;
/// for RS256, an RSA private key in PKCS#8 PEM.
pub fn key_from_secret(version_id: String, alg: SigningAlg, value: &str) -> Result<Key, KeyError> {
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
    match alg {
        SigningAlg::Hs256 => {
            check_key_length("SECRET_ARN", secret.as_bytes())?;
            Ok(Key::new(version_id, secret.as_bytes())?)
        }
        SigningAlg::Rs256 => Key::rsa_pem(version_id, &secret)
            .map_err(|e| ConfigError::new("SECRET_ARN", e.to_string()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_plain_and_json() {
        let hs = SigningAlg::Hs256;
        let k = key_from_secret("v1".into(), hs, &"x".repeat(32)).unwrap();
        assert_eq!(k.kid, "v1");
        assert!(
            key_from_secret("v1".into(), hs, &format!("{{\"SECRET_KEY\":\"{}\"}}", "y".repeat(40)))
                .is_ok()
        );
        let short = key_from_secret("v1".into(), hs, r#"{"SECRET_KEY":"short"}"#).unwrap_err();
        assert!(short.to_string().contains("at least 32 bytes"), "{short}");
        let wrong =
            key_from_secret("v1".into(), hs, r#"{"key":"0123456789012345678901234567890123"}"#);
        assert!(wrong.unwrap_err().to_string().contains("SECRET_KEY"));
        let not_pem = key_from_secret("v1".into(), SigningAlg::Rs256, &"x".repeat(64));
        let e = not_pem.unwrap_err().to_string();
        assert!(e.contains("SECRET_ARN is not an RSA private key in PKCS#8 PEM"), "{e}");
    }

    #[tokio::test]
    async fn local_keys_find_by_kid() {
        let keys = Keys::local(&[9u8; 32]).unwrap();
        assert_eq!(keys.current().await.current.kid, LOCAL_KID);
        assert!(keys.for_kid(LOCAL_KID).await.is_some());
        assert!(keys.for_kid("other").await.is_none());
    }

    fn hs(kid: &str, created: Option<i64>) -> Key {
        Key::new(kid, &[7u8; 32]).unwrap().created(created)
    }

    fn set(current: Key, previous: Option<Key>, previous_known: bool) -> KeySet {
        KeySet {
            current,
            previous,
            pending: Some(hs("next", Some(1001))),
            retained: Vec::new(),
            complete: true,
            previous_known,
            lead_seconds: 100,
        }
    }

    fn signer(set: &KeySet, now: i64) -> Option<&str> {
        set.signing_at(now).ok().map(|k| k.kid.as_str())
    }

    #[test]
    fn a_new_version_signs_only_after_the_lead() {
        let s = set(hs("new", Some(1000)), Some(hs("old", Some(0))), true);
        assert_eq!(signer(&s, 1050), Some("old"));
        assert_eq!(signer(&s, 1099), Some("old"));
        assert_eq!(signer(&s, 1100), Some("new"));
        let kids: Vec<&str> = s.published().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["new", "old", "next"]);
        // The first key of a deployment has nothing before it: it signs at once.
        let first = set(hs("new", Some(1000)), None, true);
        assert_eq!(signer(&first, 1001), Some("new"));
        // A key given directly has no creation time and signs at once.
        assert_eq!(signer(&KeySet::single(hs("local", None)), 0), Some("local"));
    }

    #[test]
    fn nothing_signs_that_cannot_be_shown_published_for_the_lead() {
        // AWSPREVIOUS could not be read and nothing was held: a young AWSCURRENT does not
        // sign (503), an old enough one does.
        let unknown = set(hs("new", Some(1000)), None, false);
        assert_eq!(signer(&unknown, 1060), None);
        assert_eq!(signer(&unknown, 1100), Some("new"));
        // AWSPREVIOUS signed before the rotation: it signs during the lead whatever its age.
        let young = set(hs("new", Some(1000)), Some(hs("old", Some(990))), true);
        assert_eq!(signer(&young, 1050), Some("old"));
        // A read that left a stage unknown is retried sooner than the TTL.
        let partial = KeySet { complete: false, ..unknown.clone() };
        assert_eq!(partial.due_after(Duration::from_secs(300)), PARTIAL_READ_RETRY);
        assert_eq!(partial.due_after(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(unknown.due_after(Duration::from_secs(300)), Duration::from_secs(300));
        // A managed version without a creation time is never shown ready.
        let undated = set(hs("new", None), Some(hs("old", Some(0))), true);
        assert_eq!(signer(&undated, 5000), Some("old"));
    }
}
