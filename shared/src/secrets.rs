//! Secrets Manager access: one client per container, built from the standard AWS configuration
//! chain (so AWS_ENDPOINT_URL_SECRETS_MANAGER points it at a local emulator), with rustls on
//! ring as its TLS stack and a deadline on every call ([`crate::aws`]).

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use secrecy::SecretString;

/// A secret's value at one version stage. `Debug` shows the version id, never the value.
#[derive(Clone, Debug)]
pub struct SecretValue {
    /// The version id (used as the JWT `kid`).
    pub version_id: String,
    /// The secret string.
    pub value: SecretString,
    /// When the version was created, seconds since the epoch (when Secrets Manager says).
    pub created_at: Option<i64>,
}

/// Why a secret could not be read. Messages name the secret and stage, never a value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretError {
    /// The secret, or the stage, does not exist.
    #[error("secret {arn} has no {stage} version (ResourceNotFoundException)")]
    NotFound {
        /// The secret asked for.
        arn: String,
        /// The version stage asked for.
        stage: String,
    },
    /// IAM or the key policy refused the read.
    #[error("reading secret {arn} was denied ({code}): check the function's IAM policy")]
    Denied {
        /// The secret asked for.
        arn: String,
        /// The AWS error code.
        code: String,
    },
    /// The secret has no string value (binary secrets are not supported).
    #[error("secret {arn} has no SecretString (binary secrets are not supported)")]
    NotAString {
        /// The secret asked for.
        arn: String,
    },
    /// Secrets Manager could not be reached or failed.
    #[error("secret {arn} could not be read: {reason}")]
    Unavailable {
        /// The secret asked for.
        arn: String,
        /// What went wrong, as the SDK tells it.
        reason: String,
    },
}

/// A Secrets Manager client.
#[derive(Clone, Debug)]
pub struct SecretsClient {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsClient {
    /// Builds the client from the environment's AWS configuration (region, credentials,
    /// endpoint overrides), with the deadlines of [`crate::aws`].
    pub async fn from_env() -> Self {
        Self { client: aws_sdk_secretsmanager::Client::new(&crate::aws::sdk_config().await) }
    }

    /// Reads the secret `arn` at version stage `stage` (AWSCURRENT, AWSPREVIOUS, AWSPENDING).
    pub async fn get(&self, arn: &str, stage: &str) -> Result<SecretValue, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .version_stage(stage)
            .send()
            .await
            .map_err(|e| classify(arn, stage, e))?;
        value_of(arn, stage, out)
    }
}

/// A GetSecretValue answer as a [`SecretValue`]; `fallback_id` names it when the answer has
/// no version id. Errors: [`SecretError::NotAString`] for a binary secret.
fn value_of(
    arn: &str,
    fallback_id: &str,
    out: aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput,
) -> Result<SecretValue, SecretError> {
    let value = out.secret_string.ok_or_else(|| SecretError::NotAString { arn: arn.to_owned() })?;
    Ok(SecretValue {
        version_id: out.version_id.unwrap_or_else(|| fallback_id.to_owned()),
        value: value.into(),
        created_at: out.created_date.map(|d| d.secs()),
    })
}

/// What a rotation needs beside reading: the version stages, reading a version by id, adding
/// a version, and moving or removing a stage (the rotation function's calls).
impl SecretsClient {
    /// The secret's versions and their stages (DescribeSecret's VersionIdsToStages).
    pub async fn version_stages(
        &self,
        arn: &str,
    ) -> Result<std::collections::HashMap<String, Vec<String>>, SecretError> {
        let out = self
            .client
            .describe_secret()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| classify(arn, "(describe)", e))?;
        Ok(out.version_ids_to_stages.unwrap_or_default())
    }

    /// Reads version `version_id`, whatever its stages (a version with none left has been
    /// retired by Secrets Manager and cannot be read).
    pub async fn get_version_any_stage(
        &self,
        arn: &str,
        version_id: &str,
    ) -> Result<SecretValue, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| classify(arn, version_id, e))?;
        value_of(arn, version_id, out)
    }

    /// Reads version `version_id`, which must carry `stage`.
    pub async fn get_version(
        &self,
        arn: &str,
        version_id: &str,
        stage: &str,
    ) -> Result<SecretValue, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .version_id(version_id)
            .version_stage(stage)
            .send()
            .await
            .map_err(|e| classify(arn, stage, e))?;
        value_of(arn, version_id, out)
    }

    /// Adds version `version_id` holding `value`, staged `stage` (AWSPENDING for a new key;
    /// AWSCURRENT moves that stage to it, and Secrets Manager stages the old one AWSPREVIOUS).
    /// Idempotent for the same token and value, as PutSecretValue is.
    pub async fn put_version(
        &self,
        arn: &str,
        version_id: &str,
        value: &str,
        stage: &str,
    ) -> Result<(), SecretError> {
        self.client
            .put_secret_value()
            .secret_id(arn)
            .client_request_token(version_id)
            .secret_string(value)
            .version_stages(stage)
            .send()
            .await
            .map_err(|e| classify(arn, stage, e))?;
        Ok(())
    }

    /// Moves `stage` to `to` from `from` (Secrets Manager then stages the old AWSCURRENT
    /// AWSPREVIOUS).
    pub async fn move_stage(
        &self,
        arn: &str,
        stage: &str,
        to: &str,
        from: Option<&str>,
    ) -> Result<(), SecretError> {
        self.client
            .update_secret_version_stage()
            .secret_id(arn)
            .version_stage(stage)
            .move_to_version_id(to)
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await
            .map_err(|e| classify(arn, stage, e))?;
        Ok(())
    }

    /// Takes `stage` off version `from`, leaving it on no version.
    pub async fn remove_stage(
        &self,
        arn: &str,
        stage: &str,
        from: &str,
    ) -> Result<(), SecretError> {
        self.client
            .update_secret_version_stage()
            .secret_id(arn)
            .version_stage(stage)
            .remove_from_version_id(from)
            .send()
            .await
            .map_err(|e| classify(arn, stage, e))?;
        Ok(())
    }
}

fn classify<E>(arn: &str, stage: &str, e: SdkError<E, HttpResponse>) -> SecretError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let arn = arn.to_owned();
    // A 403 is a refusal whatever its body says (some emulators answer in XML).
    if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) {
        let code = e.code().unwrap_or("AccessDenied (HTTP 403)").to_owned();
        return SecretError::Denied { arn, code };
    }
    match e.code() {
        Some("ResourceNotFoundException") => SecretError::NotFound { arn, stage: stage.to_owned() },
        Some(
            code @ ("AccessDeniedException"
            | "AccessDenied"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "KMSAccessDeniedException"
            | "DecryptionFailure"),
        ) => SecretError::Denied { arn, code: code.to_owned() },
        Some(code) => SecretError::Unavailable {
            arn,
            reason: format!("{code}: {}", e.message().unwrap_or("no message")),
        },
        None => {
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                reason = format!("{reason}: {s}");
                source = s.source();
            }
            SecretError::Unavailable { arn, reason }
        }
    }
}
