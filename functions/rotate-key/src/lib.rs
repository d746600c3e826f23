//! Secrets Manager rotation of the token signing key: the four steps Secrets Manager invokes
//! a rotation function with (`{"SecretId","ClientRequestToken","Step"}`), each idempotent, as
//! AWS's rotation guide requires (a step may be retried):
//!
//! - `createSecret`: if the version named by the token already holds AWSPENDING, nothing;
//!   while AWSCURRENT is younger than JWKS_PUBLISH_LEAD_SECONDS and not the deployment's first
//!   key (there is an AWSPREVIOUS), the step fails: the signing functions sign with
//!   AWSPREVIOUS through the lead, so it must itself have been published long enough;
//!   otherwise put a new key there as AWSPENDING: 64 random base64url characters (HS256), or a
//!   new 2048-bit RSA key in PKCS#8 PEM (RS256; the `rsa` crate only generates it, ring signs).
//! - `setSecret`: nothing; the key lives in this secret only.
//! - `testSecret`: the pending value must parse as a key of TOKEN_SIGNING_ALG and sign a token
//!   that verifies; otherwise the step fails and AWSCURRENT stays where it is.
//! - `finishSecret`: move AWSCURRENT to the token's version (once; Secrets Manager stages the
//!   old one AWSPREVIOUS). The signing functions publish it at once and sign with it after
//!   JWKS_PUBLISH_LEAD_SECONDS.
//!
//! With RS256 it also keeps the public keys' secret (SIGNING_PUBLIC_SECRET_ARN), the only one
//! the jwks function reads, in step with the signing secret: the same version ids, each
//! holding the public half of the key of that id as a JWK (`auth_shared::signing::public_keys`), and
//! the same stages.
//!
//! - `createSecret` puts the pending key's public half there as AWSPENDING, unless that
//!   version exists already (also when the signing version existed: a retried step completes
//!   what a failed one began). If the public secret has no version of the signing AWSCURRENT
//!   (a key made before the public secret existed), it first copies that key's public half
//!   there as AWSCURRENT, so the key that keeps signing during the lead time stays published.
//! - `testSecret` also checks that the public pending version is the pending key's public half.
//! - `finishSecret` moves AWSCURRENT of the public secret first (the old version becomes
//!   AWSPREVIOUS there too) and takes AWSPENDING off it, then moves the signing secret's: if
//!   the second move fails, the retried step finds the public one done and does the rest.

use std::collections::HashMap;
use std::process::ExitCode;

use auth_shared::config::{ConfigError, Env, TokenConfig};
use auth_shared::secrets::{SecretError, SecretsClient};
use auth_shared::signing::Key;
use auth_shared::signing::public_keys::{self, PUBLIC_SECRET_VAR};
use auth_shared::signing::{SigningAlg, SigningConfig};
use auth_shared::token::{self};
use base64::Engine;
use lambda_runtime::{LambdaEvent, service_fn};
use secrecy::ExposeSecret;
use serde::Deserialize;

/// What the function keeps between invocations: the Secrets Manager client, the algorithm and
/// (RS256) the public keys' secret.
pub struct State {
    client: SecretsClient,
    alg: SigningAlg,
    public: Option<String>,
    /// JWKS_PUBLISH_LEAD_SECONDS.
    lead_seconds: u64,
}

/// The event Secrets Manager sends a rotation function.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEvent {
    /// The secret's ARN.
    pub secret_id: String,
    /// The new version's id.
    pub client_request_token: String,
    /// `createSecret`, `setSecret`, `testSecret` or `finishSecret`.
    pub step: String,
}

/// Why a step failed: the invocation fails, and Secrets Manager stops the rotation.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// A step this function does not know.
    #[error("unknown rotation step {0:?}")]
    UnknownStep(String),
    /// The token names a version that is not pending.
    #[error("version {0} of the secret is not staged AWSPENDING")]
    NotPending(String),
    /// Secrets Manager refused or failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The pending value is not a usable key.
    #[error("the pending version is not a usable {alg} key: {why}")]
    BadKey {
        /// The configured algorithm.
        alg: &'static str,
        /// What is wrong (never the value).
        why: String,
    },
    /// A new key could not be made.
    #[error("a new key could not be generated: {0}")]
    Generate(String),
    /// The public keys' secret does not hold the pending key's public half.
    #[error("the public keys' secret does not hold the pending key's public half: {0}")]
    PublicKey(String),
    /// AWSCURRENT has not been published for the lead yet.
    #[error(
        "AWSCURRENT ({version}) was created {age_seconds} s ago, inside JWKS_PUBLISH_LEAD_SECONDS \
         ({lead_seconds} s): rotating now would leave AWSPREVIOUS signing a version verifiers \
         may not have; rotate again after the lead"
    )]
    TooSoon {
        /// AWSCURRENT's version id.
        version: String,
        /// Its age, in seconds.
        age_seconds: i64,
        /// JWKS_PUBLISH_LEAD_SECONDS.
        lead_seconds: u64,
    },
}

impl State {
    /// Builds the state from the environment (TOKEN_SIGNING_ALG, with RS256
    /// SIGNING_PUBLIC_SECRET_ARN, and the AWS configuration).
    pub async fn from_env(env: &Env) -> Result<Self, auth_shared::lambda::StartupError> {
        let signing = SigningConfig::from_env(env)?;
        let alg = signing.alg;
        let public = match alg {
            SigningAlg::Hs256 => None,
            SigningAlg::Rs256 => Some(env.optional(PUBLIC_SECRET_VAR)?.ok_or_else(|| {
                ConfigError::new(
                    PUBLIC_SECRET_VAR,
                    "is not set (with RS256 the rotation writes the public keys there, for jwks)",
                )
            })?),
        };
        Ok(Self {
            client: SecretsClient::from_env().await,
            alg,
            public,
            lead_seconds: signing.publish_lead_seconds,
        })
    }
}

/// Runs the Lambda loop: one rotation step per invocation.
pub async fn run(state: Result<State, auth_shared::lambda::StartupError>) -> ExitCode {
    auth_shared::telemetry::init();
    let state: &'static State = match state {
        Ok(s) => Box::leak(Box::new(s)),
        Err(e) => {
            tracing::error!("start-up failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let service = service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let event: RotationEvent = serde_json::from_value(event.payload)
            .map_err(|e| format!("not a Secrets Manager rotation event: {e}"))?;
        handle(state, &event).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(serde_json::Value::Null)
    });
    match lambda_runtime::run(service).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One rotation step.
pub async fn handle(state: &State, event: &RotationEvent) -> Result<(), RotationError> {
    let (arn, token) = (event.secret_id.as_str(), event.client_request_token.as_str());
    let stages = state.client.version_stages(arn).await?;
    let of_token = stages.get(token).cloned().unwrap_or_default();
    if of_token.iter().any(|s| s == "AWSCURRENT") {
        // Finished already: every step is then a no-op.
        tracing::info!(step = %event.step, version = token, "version is already AWSCURRENT");
        return Ok(());
    }
    match event.step.as_str() {
        "createSecret" => {
            let has_previous = stages.values().any(|s| s.iter().any(|s| s == "AWSPREVIOUS"));
            create(state, arn, token, current_of(&stages), has_previous).await
        }
        "setSecret" => Ok(()),
        "testSecret" => test(state, arn, token).await,
        "finishSecret" => {
            if !of_token.iter().any(|s| s == "AWSPENDING") {
                return Err(RotationError::NotPending(token.to_owned()));
            }
            if let Some(public) = &state.public {
                finish_public(state, public, token).await?;
            }
            let current = current_of(&stages);
            state.client.move_stage(arn, "AWSCURRENT", token, current).await?;
            tracing::info!(version = token, previous = ?current, "rotation finished: new AWSCURRENT");
            Ok(())
        }
        other => Err(RotationError::UnknownStep(other.to_owned())),
    }
}

/// The version staged AWSCURRENT, if any.
fn current_of(stages: &HashMap<String, Vec<String>>) -> Option<&str> {
    stages.iter().find(|(_, s)| s.iter().any(|s| s == "AWSCURRENT")).map(|(v, _)| v.as_str())
}

/// Refuses to start a rotation while AWSCURRENT is younger than the publishing lead, unless it
/// is the deployment's first key (no AWSPREVIOUS: the template's rotation at deploy). The
/// signing functions sign with AWSPREVIOUS until AWSCURRENT is old enough, so a second
/// rotation inside the lead would have them sign with a version published only since the
/// first one, which a verifier caching the JWKS may not have.
async fn check_not_too_soon(
    state: &State,
    arn: &str,
    current: &str,
    has_previous: bool,
) -> Result<(), RotationError> {
    if !has_previous || state.lead_seconds == 0 {
        return Ok(());
    }
    let v = state.client.get_version(arn, current, "AWSCURRENT").await?;
    let Some(created) = v.created_at else { return Ok(()) };
    let age_seconds = token::now() - created;
    if age_seconds < i64::try_from(state.lead_seconds).unwrap_or(i64::MAX) {
        return Err(RotationError::TooSoon {
            version: current.to_owned(),
            age_seconds,
            lead_seconds: state.lead_seconds,
        });
    }
    Ok(())
}

async fn create(
    state: &State,
    arn: &str,
    token: &str,
    current: Option<&str>,
    has_previous: bool,
) -> Result<(), RotationError> {
    let public_stages = match &state.public {
        Some(public) => {
            let mut public_stages = state.client.version_stages(public).await?;
            if let Some(current) = current.filter(|c| !public_stages.contains_key(*c)) {
                backfill_current(state, arn, public, current).await?;
                public_stages = state.client.version_stages(public).await?;
            }
            Some(public_stages)
        }
        None => None,
    };
    let value = match state.client.get_version(arn, token, "AWSPENDING").await {
        Ok(v) => {
            tracing::info!(version = token, "createSecret: the pending version exists already");
            v.value
        }
        Err(SecretError::NotFound { .. }) => {
            if let Some(current) = current {
                check_not_too_soon(state, arn, current, has_previous).await?;
            }
            let alg = state.alg;
            let value = tokio::task::spawn_blocking(move || new_key(alg))
                .await
                .map_err(|e| RotationError::Generate(e.to_string()))??;
            state.client.put_version(arn, token, &value, "AWSPENDING").await?;
            tracing::info!(
                version = token,
                alg = alg.name(),
                "createSecret: new key staged AWSPENDING"
            );
            value.into()
        }
        Err(e) => return Err(e.into()),
    };
    if let (Some(public), Some(public_stages)) = (&state.public, public_stages) {
        if public_stages.contains_key(token) {
            tracing::info!(version = token, "createSecret: the public version exists already");
            return Ok(());
        }
        let key = pending_key(state, token, value.expose_secret())?;
        let jwk = public_keys::public_value(&key)
            .ok_or_else(|| RotationError::PublicKey("an HMAC key has no public half".into()))?;
        state.client.put_version(public, token, &jwk, "AWSPENDING").await?;
        tracing::info!(version = token, "createSecret: its public half staged AWSPENDING");
    }
    Ok(())
}

/// Copies the public half of the signing AWSCURRENT into the public keys' secret as version
/// `current`, staged AWSCURRENT: the key made before the public secret existed keeps signing
/// during the lead time, so it must stay published. A current that is no RS256 key (a switch
/// from HS256) has no public half: one line, and nothing copied.
async fn backfill_current(
    state: &State,
    arn: &str,
    public: &str,
    current: &str,
) -> Result<(), RotationError> {
    let value = state.client.get_version(arn, current, "AWSCURRENT").await?;
    match auth_shared::signing::keys::key_from_secret(
        current.to_owned(),
        state.alg,
        value.value.expose_secret(),
    ) {
        Ok(key) => {
            let jwk = public_keys::public_value(&key)
                .ok_or_else(|| RotationError::PublicKey("an HMAC key has no public half".into()))?;
            state.client.put_version(public, current, &jwk, "AWSCURRENT").await?;
            tracing::info!(
                version = current,
                "createSecret: the current key's public half copied to the public keys' secret"
            );
        }
        Err(e) => tracing::warn!(
            version = current,
            error = %e,
            "createSecret: the current version is no key of this algorithm; no public half to copy"
        ),
    }
    Ok(())
}

/// finishSecret on the public keys' secret: AWSCURRENT to `token` (the old version becomes
/// AWSPREVIOUS), then AWSPENDING off it, so the public secret shows no rotation under way
/// (jwks would only read the same version twice). Each part only when not done yet.
async fn finish_public(state: &State, public: &str, token: &str) -> Result<(), RotationError> {
    let stages = state.client.version_stages(public).await?;
    let Some(of_token) = stages.get(token) else {
        return Err(RotationError::PublicKey(format!("it has no version {token}")));
    };
    if !of_token.iter().any(|s| s == "AWSCURRENT") {
        let current = current_of(&stages);
        state.client.move_stage(public, "AWSCURRENT", token, current).await?;
        tracing::info!(version = token, previous = ?current, "public keys' secret: new AWSCURRENT");
    }
    if of_token.iter().any(|s| s == "AWSPENDING") {
        state.client.remove_stage(public, "AWSPENDING", token).await?;
    }
    Ok(())
}

fn pending_key(state: &State, token: &str, value: &str) -> Result<Key, RotationError> {
    let bad = |why: String| RotationError::BadKey { alg: state.alg.name(), why };
    auth_shared::signing::keys::key_from_secret(token.to_owned(), state.alg, value)
        .map_err(|e| bad(e.to_string()))
}

async fn test(state: &State, arn: &str, token: &str) -> Result<(), RotationError> {
    let pending = state.client.get_version(arn, token, "AWSPENDING").await?;
    let key = pending_key(state, token, pending.value.expose_secret())?;
    check_signs(&key)
        .map_err(|e| RotationError::BadKey { alg: state.alg.name(), why: e.to_string() })?;
    if let Some(public) = &state.public {
        let published = state
            .client
            .get_version(public, token, "AWSPENDING")
            .await
            .map_err(|e| RotationError::PublicKey(e.to_string()))?;
        let jwk = public_keys::jwk_from_value(token, published.value.expose_secret())
            .map_err(|e| RotationError::PublicKey(e.to_string()))?;
        if Some(jwk) != key.jwk() {
            return Err(RotationError::PublicKey(format!(
                "version {token} holds another key's public half"
            )));
        }
    }
    tracing::info!(version = token, "testSecret: the pending key signs and verifies");
    Ok(())
}

/// Signs a token with `key` and verifies it.
pub fn check_signs(key: &Key) -> Result<(), token::TokenError> {
    let cfg = TokenConfig {
        issuer: "rotation-test".into(),
        audience: "rotation-test".into(),
        ttl_seconds: 60,
    };
    let now = token::now();
    let t = token::issue(&cfg, key, uuid::Uuid::nil(), "rotation-test", None, now)?;
    token::verify(&cfg, key, &t, now).map(drop)
}

/// A new key's secret value for `alg`: 64 base64url characters from 48 random bytes (384
/// bits) for HS256, a new 2048-bit RSA key in PKCS#8 PEM for RS256.
pub fn new_key(alg: SigningAlg) -> Result<String, RotationError> {
    match alg {
        SigningAlg::Hs256 => Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(auth_shared::random::bytes::<48>())),
        SigningAlg::Rs256 => {
            use rsa::pkcs8::{EncodePrivateKey, LineEnding};
            let key = rsa::RsaPrivateKey::new(
                &mut rsa::rand_core::OsRng,
                auth_shared::signing::MIN_RSA_BITS,
            )
            .map_err(|e| RotationError::Generate(e.to_string()))?;
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| RotationError::Generate(e.to_string()))?;
            Ok(pem.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keys_parse_and_sign() {
        let hs = new_key(SigningAlg::Hs256).unwrap();
        assert_eq!(hs.len(), 64);
        check_signs(&Key::parse("v", SigningAlg::Hs256, &hs).unwrap()).unwrap();
        let rs = new_key(SigningAlg::Rs256).unwrap();
        assert!(rs.starts_with("-----BEGIN PRIVATE KEY-----"));
        check_signs(&Key::parse("v", SigningAlg::Rs256, &rs).unwrap()).unwrap();
        assert!(Key::parse("v", SigningAlg::Rs256, &hs).is_err());
    }
}
