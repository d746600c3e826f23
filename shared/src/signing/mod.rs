//! Signing keys, in one place: the algorithm and its settings ([`SigningAlg`],
//! [`SigningConfig`]), where the key comes from ([`KeySource`]), the key itself and its JWK
//! ([`Key`], [`Jwk`], in `key`), the size bounds of HS256 secrets and RSA moduli (here), the
//! crypto jsonwebtoken is given (`provider`: HS256 and RS256 only), the cached versions of a
//! Secrets Manager secret and which one signs ([`keys`]), and the public halves the jwks
//! function publishes ([`public_keys`]). The tokens signed with them are [`crate::token`];
//! new keys are made by the rotation function (functions/rotate-key).

pub(crate) mod key;
pub mod keys;
mod provider;
pub mod public_keys;

pub use key::{Jwk, Key};

use std::time::Duration;

use secrecy::SecretSlice;

use crate::config::{ConfigError, Env};

/// The smallest RSA modulus accepted for RS256 (RFC 7518 §3.3), and the size of the keys the
/// rotation function makes.
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted (ring signs with 2048 to 4096 bits).
pub const MAX_RSA_BITS: usize = 4096;

/// TOKEN_SIGNING_ALG: how tokens are signed (docs/tokens-and-keys.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlg {
    /// HMAC-SHA256 with a shared secret (the default; the Flask service's tokens).
    #[default]
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256: an RSA private key signs, anyone with the public key
    /// verifies.
    Rs256,
}

impl SigningAlg {
    /// The JOSE name (`alg` header, JWKS, discovery).
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
        }
    }

    /// Loads TOKEN_SIGNING_ALG (exactly `HS256` or `RS256`; default HS256).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        match env.optional("TOKEN_SIGNING_ALG")?.as_deref().map(str::trim) {
            None | Some("HS256") => Ok(Self::Hs256),
            Some("RS256") => Ok(Self::Rs256),
            Some(other) => {
                let shown: String = other.chars().take(20).collect();
                Err(ConfigError::new(
                    "TOKEN_SIGNING_ALG",
                    format!("must be HS256 or RS256, got {shown:?}"),
                ))
            }
        }
    }
}

/// The signing settings beside the key itself: the algorithm and how long a new key version
/// is published before it signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningConfig {
    /// TOKEN_SIGNING_ALG.
    pub alg: SigningAlg,
    /// JWKS_PUBLISH_LEAD_SECONDS: a Secrets Manager version signs only once it is this old
    /// (API Gateway's JWT authorizer caches a JWKS for up to two hours).
    pub publish_lead_seconds: u64,
}

impl Default for SigningConfig {
    fn default() -> Self {
        Self { alg: SigningAlg::Hs256, publish_lead_seconds: DEFAULT_PUBLISH_LEAD_SECONDS }
    }
}

/// JWKS_PUBLISH_LEAD_SECONDS's default: API Gateway's two hours of JWKS caching, plus margin.
pub const DEFAULT_PUBLISH_LEAD_SECONDS: u64 = 7500;

impl SigningConfig {
    /// Loads TOKEN_SIGNING_ALG and JWKS_PUBLISH_LEAD_SECONDS.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            alg: SigningAlg::from_env(env)?,
            publish_lead_seconds: env.integer(
                "JWKS_PUBLISH_LEAD_SECONDS",
                DEFAULT_PUBLISH_LEAD_SECONDS,
                0,
                30 * 86_400,
            )?,
        })
    }
}

/// Where the token signing key comes from. `Debug` shows the ARN, never a key.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// SECRET_ARN: a Secrets Manager secret (plain string, or JSON with `SECRET_KEY`).
    SecretsManager {
        /// The secret's ARN or name.
        arn: String,
        /// SECRET_CACHE_TTL_SECONDS.
        cache_ttl: Duration,
    },
    /// SECRET_KEY: the key itself, local use only.
    Local(SecretSlice<u8>),
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
                Ok(Some(Self::Local(key.into_bytes().into())))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::Env;

    #[test]
    fn secret_key_is_local_only() {
        let key = "k".repeat(32);
        let local = Env::from_pairs([("SECRET_KEY", key.as_str())]);
        let Some(KeySource::Local(got)) = KeySource::from_env(&local).unwrap() else { panic!() };
        assert_eq!(got.expose_secret(), key.as_bytes());
        for lambda in [
            Env::from_pairs([
                ("SECRET_KEY", key.as_str()),
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ]),
            Env::from_pairs([
                ("SECRET_KEY", key.as_str()),
                ("AWS_EXECUTION_ENV", "AWS_Lambda_rust"),
            ]),
        ] {
            assert!(lambda.in_lambda());
            assert!(
                KeySource::from_env(&lambda)
                    .unwrap_err()
                    .problem
                    .contains("refused inside AWS Lambda")
            );
        }
        let sam = Env::from_pairs([
            ("SECRET_KEY", key.as_str()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_SAM_LOCAL", "true"),
        ]);
        assert!(!sam.in_lambda());
        assert!(KeySource::from_env(&sam).is_ok());
        let arn = Env::from_pairs([
            ("SECRET_ARN", "arn:aws:secretsmanager:x"),
            ("SECRET_CACHE_TTL_SECONDS", "60"),
        ]);
        let KeySource::SecretsManager { arn, cache_ttl } =
            KeySource::require_from_env(&arn).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (arn.as_str(), cache_ttl),
            ("arn:aws:secretsmanager:x", Duration::from_secs(60))
        );
        assert_eq!(KeySource::require_from_env(&Env::default()).unwrap_err().var, "SECRET_ARN");
        assert!(!format!("{:?}", KeySource::Local(key.clone().into_bytes().into())).contains(&key));
    }

    #[test]
    fn signing_settings_are_checked() {
        assert_eq!(SigningConfig::from_env(&Env::default()).unwrap(), SigningConfig::default());
        let rs =
            Env::from_pairs([("TOKEN_SIGNING_ALG", "RS256"), ("JWKS_PUBLISH_LEAD_SECONDS", "5")]);
        assert_eq!(
            SigningConfig::from_env(&rs).unwrap(),
            SigningConfig { alg: SigningAlg::Rs256, publish_lead_seconds: 5 }
        );
        for bad in ["rs256", "none", "ES256", "HS512"] {
            let e = SigningConfig::from_env(&Env::from_pairs([("TOKEN_SIGNING_ALG", bad)]));
            let e = e.unwrap_err();
            assert_eq!(e.var, "TOKEN_SIGNING_ALG", "{bad}");
            assert!(e.to_string().contains("must be HS256 or RS256"), "{e}");
        }
        let e = SigningConfig::from_env(&Env::from_pairs([("JWKS_PUBLISH_LEAD_SECONDS", "-1")]));
        assert_eq!(e.unwrap_err().var, "JWKS_PUBLISH_LEAD_SECONDS");
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
