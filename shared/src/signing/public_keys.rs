//! The public halves of the RS256 signing keys, as the jwks function publishes them, without
//! the private keys.
//!
//! The rotation function (functions/rotate-key) keeps a second secret beside the signing one,
//! SIGNING_PUBLIC_SECRET_ARN, that mirrors its versions: each version of the signing secret
//! has a version of the same id (the JWT `kid`) and the same stage in the public secret, whose
//! value is that key's public half as a JWK (RFC 7517), e.g.
//! `{"kty":"RSA","use":"sig","alg":"RS256","kid":"<version id>","n":"...","e":"AQAB"}`.
//! The jwks function reads AWSCURRENT, AWSPREVIOUS and AWSPENDING of that secret only (at cold
//! start, then whenever the cache is older than SECRET_CACHE_TTL_SECONDS), so it never holds a
//! private key and its role may read nothing else.
//!
//! A stage with no version in the public secret publishes nothing: a signing key made before
//! the public secret existed has no public version until the next rotation, whose createSecret
//! copies the public half of the signing AWSCURRENT there (the README asks operators to rotate
//! once after upgrading). jwks logs one line for each read that finds no AWSCURRENT.
//!
//! Locally (auth-local, or jwks run outside Lambda with SECRET_KEY) there is no public secret:
//! the public halves are those of the keys given in the process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretSlice};
use tokio::sync::Mutex;

use super::{Jwk, Key, MAX_RSA_BITS, MIN_RSA_BITS};
use crate::config::{ConfigError, Env};
use crate::secrets::{SecretError, SecretsClient};
use crate::signing::keys::{KeyError, Keys};
use crate::signing::{KeySource, SigningAlg};

/// The variable naming the public keys' secret (jwks reads it; rotate-key writes it).
pub const PUBLIC_SECRET_VAR: &str = "SIGNING_PUBLIC_SECRET_ARN";

/// The stages read, in the order the JWKS lists them.
const STAGES: [&str; 3] = ["AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"];

/// The public secret's value for `key`: its public half as a JWK in JSON; `None` for an HMAC
/// key, which has no public half.
pub fn public_value(key: &Key) -> Option<String> {
    key.jwk().map(|jwk| serde_json::to_string(&jwk).expect("a JWK serializes"))
}

/// Why a public secret's value is not a key to publish. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version {version_id} of the public keys' secret is not an RS256 public JWK: {why}")]
pub struct BadPublicKey {
    /// The version read.
    pub version_id: String,
    /// What is wrong.
    pub why: &'static str,
}

/// Reads a public secret's value as the JWK of version `version_id`: an RSA key for RS256
/// signatures, its `kid` the version id, 2048 to 4096 bits.
pub fn jwk_from_value(version_id: &str, value: &str) -> Result<Jwk, BadPublicKey> {
    let bad = |why| BadPublicKey { version_id: version_id.to_owned(), why };
    let jwk: Jwk = serde_json::from_str(value)
        .map_err(|_| bad("not a JSON object with kty, use, alg, kid, n and e"))?;
    if (jwk.kty.as_str(), jwk.use_.as_str(), jwk.alg.as_str()) != ("RSA", "sig", "RS256") {
        return Err(bad("kty, use and alg must be RSA, sig and RS256"));
    }
    if jwk.kid != version_id {
        return Err(bad("its kid is not the version id"));
    }
    let integer = |b64: &str| match URL_SAFE_NO_PAD.decode(b64) {
        Ok(bytes) if bytes.first().is_some_and(|b| *b != 0) => Some(bytes),
        _ => None,
    };
    let n = integer(&jwk.n).ok_or_else(|| bad("n is not a base64url integer"))?;
    integer(&jwk.e).ok_or_else(|| bad("e is not a base64url integer"))?;
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(bad("the modulus is not of 2048 to 4096 bits"));
    }
    Ok(jwk)
}

/// Where jwks finds the public keys (RS256). `Debug` shows the ARN, never a key.
#[derive(Clone, Debug)]
pub enum PublicKeySource {
    /// SIGNING_PUBLIC_SECRET_ARN: the public keys' secret.
    SecretsManager {
        /// The secret's ARN or name.
        arn: String,
        /// SECRET_CACHE_TTL_SECONDS.
        cache_ttl: Duration,
    },
    /// SECRET_KEY: an RSA private key given directly, local use only (refused inside Lambda).
    Local(SecretSlice<u8>),
}

impl PublicKeySource {
    /// Loads SIGNING_PUBLIC_SECRET_ARN or, outside Lambda, SECRET_KEY. SECRET_ARN, the signing
    /// secret, is refused: jwks never reads private keys from Secrets Manager.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        if env.optional("SECRET_ARN")?.is_some() {
            return Err(ConfigError::new(
                "SECRET_ARN",
                format!(
                    "is set, but jwks does not read the signing secret: set {PUBLIC_SECRET_VAR} (the public keys' secret) instead"
                ),
            ));
        }
        let public = env.optional(PUBLIC_SECRET_VAR)?;
        match (public, KeySource::from_env(env)?) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                "SECRET_KEY",
                format!("and {PUBLIC_SECRET_VAR} are both set; set only one"),
            )),
            (Some(arn), None) => {
                let cache_ttl = Duration::from_secs(env.integer(
                    "SECRET_CACHE_TTL_SECONDS",
                    300u64,
                    0,
                    86_400,
                )?);
                Ok(Self::SecretsManager { arn, cache_ttl })
            }
            (None, Some(KeySource::Local(key))) => Ok(Self::Local(key)),
            (None, Some(KeySource::SecretsManager { .. })) => unreachable!("SECRET_ARN refused"),
            (None, None) => Err(ConfigError::new(
                PUBLIC_SECRET_VAR,
                "is not set (the Secrets Manager secret of the signing keys' public halves, written by the rotation function)",
            )),
        }
    }
}

struct Cache {
    keys: Arc<Vec<Jwk>>,
    fetched: Instant,
}

struct Managed {
    client: SecretsClient,
    arn: String,
    ttl: Duration,
    cache: Mutex<Cache>,
}

enum Inner {
    /// Keys held in the process (local): their public halves.
    InProcess(Arc<Keys>),
    /// The public keys' secret.
    Managed(Managed),
}

/// The public keys this container publishes.
pub struct PublicKeys {
    inner: Inner,
}

impl PublicKeys {
    /// The public halves of keys held in the process (auth-local, SECRET_KEY).
    pub fn in_process(keys: Arc<Keys>) -> Self {
        Self { inner: Inner::InProcess(keys) }
    }

    /// Loads the public keys from `source`. For Secrets Manager this reads the versions now,
    /// at cold start, so an unreadable secret (denied, unreachable) stops the function; a
    /// secret with no AWSCURRENT yet publishes nothing and logs one line.
    pub async fn load(source: &PublicKeySource) -> Result<Self, KeyError> {
        match source {
            PublicKeySource::Local(secret) => Ok(Self::in_process(Arc::new(Keys::local_with(
                SigningAlg::Rs256,
                secret.expose_secret(),
            )?))),
            PublicKeySource::SecretsManager { arn, cache_ttl } => {
                let client = SecretsClient::from_env().await;
                let keys = fetch(&client, arn).await?;
                let cache = Mutex::new(Cache { keys: Arc::new(keys), fetched: Instant::now() });
                Ok(Self {
                    inner: Inner::Managed(Managed {
                        client,
                        arn: arn.clone(),
                        ttl: *cache_ttl,
                        cache,
                    }),
                })
            }
        }
    }

    /// The keys to publish: current, previous, pending. From the public secret, re-read when
    /// older than SECRET_CACHE_TTL_SECONDS; if that read fails the cached keys keep serving.
    pub async fn jwks(&self) -> Arc<Vec<Jwk>> {
        match &self.inner {
            Inner::InProcess(keys) => {
                Arc::new(keys.current().await.published().filter_map(Key::jwk).collect())
            }
            Inner::Managed(m) => {
                let mut cache = m.cache.lock().await;
                if cache.fetched.elapsed() >= m.ttl {
                    match fetch(&m.client, &m.arn).await {
                        Ok(keys) => cache.keys = Arc::new(keys),
                        Err(e) => {
                            tracing::warn!(error = %e, "public key refresh failed; serving cached keys")
                        }
                    }
                    cache.fetched = Instant::now();
                }
                cache.keys.clone()
            }
        }
    }
}

/// Reads the three stages of the public secret at once. AWSCURRENT must be readable (it may
/// be missing: nothing is published for it, and one line says so); a missing previous or
/// pending is nothing, a bad or unreadable one is logged and left out.
async fn fetch(client: &SecretsClient, arn: &str) -> Result<Vec<Jwk>, SecretError> {
    let (current, previous, pending) = tokio::join!(
        client.get(arn, STAGES[0]),
        client.get(arn, STAGES[1]),
        client.get(arn, STAGES[2])
    );
    let mut keys: Vec<Jwk> = Vec::with_capacity(3);
    for (stage, got) in STAGES.into_iter().zip([current, previous, pending]) {
        let value = match got {
            Ok(v) => v,
            Err(SecretError::NotFound { .. }) if stage == "AWSCURRENT" => {
                tracing::warn!(
                    secret = arn,
                    "the public keys' secret has no AWSCURRENT version: nothing published for it until a rotation of the signing secret writes it"
                );
                continue;
            }
            Err(SecretError::NotFound { .. }) => continue,
            Err(e) if stage == "AWSCURRENT" => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, stage, "public key version could not be read; left out");
                continue;
            }
        };
        match jwk_from_value(&value.version_id, value.value.expose_secret()) {
            Ok(jwk) if keys.iter().any(|k| k.kid == jwk.kid) => {}
            Ok(jwk) => keys.push(jwk),
            Err(e) => tracing::warn!(error = %e, stage, "public key version left out"),
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_key(kid: &str) -> Key {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        Key::rsa_pem(kid, &key.to_pkcs8_pem(LineEnding::LF).unwrap()).unwrap()
    }

    #[test]
    fn a_public_value_holds_the_jwk_and_nothing_private() {
        let key = rsa_key("v1");
        let value = public_value(&key).unwrap();
        assert_eq!(jwk_from_value("v1", &value).unwrap(), key.jwk().unwrap());
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&value).unwrap();
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["alg", "e", "kid", "kty", "n", "use"], "no d, p, q");
        assert!(
            public_value(&Key::new("h", &[1u8; 32]).unwrap()).is_none(),
            "HMAC: no public half"
        );
    }

    #[test]
    fn bad_public_values_are_refused() {
        let key = rsa_key("v1");
        let value = public_value(&key).unwrap();
        assert!(jwk_from_value("v2", &value).unwrap_err().why.contains("kid"));
        assert!(jwk_from_value("v1", "-----BEGIN PRIVATE KEY-----").is_err());
        let mut jwk = key.jwk().unwrap();
        jwk.alg = "HS256".into();
        assert!(jwk_from_value("v1", &serde_json::to_string(&jwk).unwrap()).is_err());
        let mut short = key.jwk().unwrap();
        short.n = URL_SAFE_NO_PAD.encode([0xffu8; 128]);
        let e = jwk_from_value("v1", &serde_json::to_string(&short).unwrap()).unwrap_err();
        assert!(e.to_string().contains("2048 to 4096 bits"), "{e}");
        assert!(!e.to_string().contains(&short.n), "the value is never echoed");
    }

    #[test]
    fn jwks_reads_the_public_secret_never_the_signing_one() {
        let arn = Env::from_pairs([(PUBLIC_SECRET_VAR, "arn:public")]);
        let PublicKeySource::SecretsManager { arn, .. } = PublicKeySource::from_env(&arn).unwrap()
        else {
            panic!()
        };
        assert_eq!(arn, "arn:public");
        let both =
            Env::from_pairs([(PUBLIC_SECRET_VAR, "arn:public"), ("SECRET_ARN", "arn:signing")]);
        assert_eq!(PublicKeySource::from_env(&both).unwrap_err().var, "SECRET_ARN");
        let signing = Env::from_pairs([("SECRET_ARN", "arn:signing")]);
        assert_eq!(PublicKeySource::from_env(&signing).unwrap_err().var, "SECRET_ARN");
        assert_eq!(PublicKeySource::from_env(&Env::default()).unwrap_err().var, PUBLIC_SECRET_VAR);
        let local = Env::from_pairs([("SECRET_KEY", "k".repeat(40))]);
        assert!(matches!(PublicKeySource::from_env(&local).unwrap(), PublicKeySource::Local(_)));
    }

    #[tokio::test]
    async fn in_process_keys_publish_their_public_halves() {
        let keys = Arc::new(Keys::local_with(SigningAlg::Hs256, &[3u8; 32]).unwrap());
        assert!(PublicKeys::in_process(keys).jwks().await.is_empty());
    }
}
