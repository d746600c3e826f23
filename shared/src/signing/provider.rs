//! jsonwebtoken's crypto, reduced to the two algorithms this service can be configured with:
//! HS256 (RustCrypto's HMAC) and RS256 (ring: constant-time, unlike the `rsa` crate, see
//! RUSTSEC-2023-0071). Installed as the process's provider, it refuses every other algorithm
//! at the crypto layer too, and keeps the ECDSA and EdDSA code of the crate's backends out of
//! the binaries. Which of the two a token may use is pinned above it, by the key's algorithm.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::AlgorithmFamily;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};

type HmacSha256 = Hmac<sha2::Sha256>;

struct Hs256(HmacSha256);

impl Hs256 {
    fn new(secret: &[u8]) -> Result<Self> {
        Ok(Self(HmacSha256::new_from_slice(secret).map_err(|_| ErrorKind::InvalidKeyFormat)?))
    }
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        // verify_slice compares in constant time.
        mac.verify_slice(sig).map_err(signature::Error::from_source)
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

/// An RSA private key, parsed once per key version: parsing checks the key's consistency,
/// which costs about as much as a signature, so the parsed pairs are kept (a few versions
/// at most live in a container).
struct Rs256Signer(Arc<RsaKeyPair>);

fn key_pair(pkcs8: &[u8]) -> Result<Arc<RsaKeyPair>> {
    static PARSED: Mutex<Vec<(Vec<u8>, Arc<RsaKeyPair>)>> = Mutex::new(Vec::new());
    let mut parsed = PARSED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, pair)) = parsed.iter().find(|(der, _)| der.as_slice() == pkcs8) {
        return Ok(pair.clone());
    }
    let pair = Arc::new(
        RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| ErrorKind::InvalidRsaKey(String::new()))?,
    );
    if parsed.len() >= 8 {
        parsed.remove(0);
    }
    parsed.push((pkcs8.to_vec(), pair.clone()));
    Ok(pair)
}

impl Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut sig = vec![0; self.0.public().modulus_len()];
        // PKCS#1 v1.5 padding is deterministic: the generator is not used.
        let rng = ring::rand::SystemRandom::new();
        self.0.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig).map_err(|_| signature::Error::new())?;
        Ok(sig)
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// An RSA public key (DER RSAPublicKey), 2048 to 8192 bits.
struct Rs256Verifier(Vec<u8>);

impl Verifier<Vec<u8>> for Rs256Verifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.0)
            .verify(msg, sig)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Rs256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

// Each algorithm only with a key of its own family: an RSA public key's bytes never
// become an HMAC secret (RFC 8725 §2.1), nor a secret an RSA key.
fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    match (alg, key.family()) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => Ok(Box::new(Hs256::new(key.as_bytes())?)),
        (Algorithm::RS256, AlgorithmFamily::Rsa) => {
            Ok(Box::new(Rs256Signer(key_pair(key.as_bytes())?)))
        }
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match (alg, key.family()) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => {
            Ok(Box::new(Hs256::new(key.try_get_as_bytes()?)?))
        }
        (Algorithm::RS256, AlgorithmFamily::Rsa) => {
            Ok(Box::new(Rs256Verifier(key.try_get_as_bytes()?.to_vec())))
        }
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Installs the provider (once per process; later calls do nothing).
pub(super) fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = PROVIDER.install_default();
    });
}
