//! One version of the signing key ([`Key`]) and its public half as a JWK ([`Jwk`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};

use super::{SigningAlg, provider};
use crate::token::TokenError;

/// One version of the signing key: an HMAC secret (HS256) or an RSA key pair (RS256).
#[derive(Clone)]
pub struct Key {
    /// Key id: the Secrets Manager version id, or `local`.
    pub kid: String,
    /// When the version was created (Secrets Manager's CreatedDate, seconds since the epoch);
    /// `None` for a key given directly, which may sign at once.
    pub created_at: Option<i64>,
    alg: SigningAlg,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    /// RS256 only: the public modulus and exponent, big-endian without leading zeros.
    public: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A public key as a JSON Web Key (RFC 7517 §4, RFC 7518 §6.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `RSA`.
    pub kty: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Always `RS256`.
    pub alg: String,
    /// The key version id, as in the tokens' `kid`.
    pub kid: String,
    /// The modulus, base64url without padding.
    pub n: String,
    /// The public exponent, base64url without padding.
    pub e: String,
}

impl Key {
    /// An HS256 key from a secret of at least 32 bytes.
    pub fn new(kid: impl Into<String>, secret: &[u8]) -> Result<Self, TokenError> {
        provider::install();
        if secret.len() < super::MIN_KEY_BYTES {
            return Err(TokenError::KeyTooShort);
        }
        Ok(Self {
            kid: kid.into(),
            created_at: None,
            alg: SigningAlg::Hs256,
            encoding: EncodingKey::from_secret(secret).map_err(|_| TokenError::KeyTooShort)?,
            decoding: DecodingKey::from_secret(secret).map_err(|_| TokenError::KeyTooShort)?,
            public: None,
        })
    }

    /// An RS256 key from an RSA private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`),
    /// 2048 to 4096 bits.
    pub fn rsa_pem(kid: impl Into<String>, pem: &str) -> Result<Self, TokenError> {
        provider::install();
        let der = pkcs8_der(pem)?;
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| {
            match e.to_string().as_str() {
                "TooSmall" => TokenError::RsaKeyTooShort,
                "TooLarge" => TokenError::RsaKeyTooLong,
                _ => TokenError::NotRsaPkcs8,
            }
        })?;
        let components: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
        Ok(Self {
            kid: kid.into(),
            created_at: None,
            alg: SigningAlg::Rs256,
            encoding: EncodingKey::from_rsa_der(&der),
            decoding: DecodingKey::from_rsa_der(pair.public().as_ref()),
            public: Some((components.n, components.e)),
        })
    }

    /// A key of `alg` from a secret's text: the secret itself (HS256) or a PKCS#8 PEM (RS256).
    pub fn parse(
        kid: impl Into<String>,
        alg: SigningAlg,
        secret: &str,
    ) -> Result<Self, TokenError> {
        match alg {
            SigningAlg::Hs256 => Self::new(kid, secret.as_bytes()),
            SigningAlg::Rs256 => Self::rsa_pem(kid, secret),
        }
    }

    /// The same key with its creation time.
    pub fn created(mut self, at: Option<i64>) -> Self {
        self.created_at = at;
        self
    }

    /// The algorithm this key signs and verifies (and nothing else).
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public half as a JWK; `None` for an HMAC key, which has no public half.
    pub fn jwk(&self) -> Option<Jwk> {
        let (n, e) = self.public.as_ref()?;
        Some(Jwk {
            kty: "RSA".into(),
            use_: "sig".into(),
            alg: "RS256".into(),
            kid: self.kid.clone(),
            n: URL_SAFE_NO_PAD.encode(n),
            e: URL_SAFE_NO_PAD.encode(e),
        })
    }
}

/// The DER inside a PKCS#8 PEM private key (RFC 7468 §10).
pub(crate) fn pkcs8_der(pem: &str) -> Result<Vec<u8>, TokenError> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let pem = pem.trim();
    let body = pem
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or(TokenError::NotRsaPkcs8)?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| TokenError::NotRsaPkcs8)
}
