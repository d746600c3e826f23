//! The mailer: an SQS-triggered Lambda function that sends the account mails the routes put on
//! the queue (docs/accounts.md). Each message is one job (`auth_shared::accounts::Job`); what
//! it does with one is `auth_shared::accounts::mailer`. It answers with a partial batch
//! response (SQS `ReportBatchItemFailures`): a job that failed (database, key, SES) is
//! reported by its message id and retried alone by SQS, until the queue's redrive policy moves
//! it to the dead-letter queue; the others of the batch are done.

use std::process::ExitCode;
use std::sync::Arc;

use auth_shared::accounts::AccountConfig;
use auth_shared::accounts::mailer::{Delivery, Mailer};
use auth_shared::config::{ConfigError, Env};
use auth_shared::data_key::{DataKey, DataKeySource};
use auth_shared::lambda::StartupError;
use auth_shared::mail::Sender;
use auth_shared::state::DbState;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

/// What the mailer keeps between invocations.
pub struct State {
    /// The mailer's parts: pool, data key, settings, sender, SES.
    pub mailer: Mailer,
}

impl State {
    /// Builds the state from the environment: the database, DATA_KEY_SECRET_ARN, the account
    /// settings, EMAIL_FROM and EMAIL_LINK_BASE_URL (both required: a mail needs a sender,
    /// and its links a page to open) and the SES client.
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let cfg = AccountConfig::from_env(env)?;
        let from = env.optional("EMAIL_FROM")?.ok_or_else(|| {
            ConfigError::new("EMAIL_FROM", "is not set (the SES identity mail is sent from)")
        })?;
        let sender = Sender::new(&cfg.app_name, &from)
            .map_err(|e| ConfigError::new("EMAIL_FROM", format!("is not usable: {e}")))?;
        let base = cfg.link_base.clone().ok_or_else(|| {
            ConfigError::new("EMAIL_LINK_BASE_URL", "is not set (the page mail links open)")
        })?;
        let source = DataKeySource::require_from_env(env)?;
        let keys = Arc::new(DataKey::new(source).await);
        keys.current().await?;
        let db = DbState::from_env(env).await?.db;
        let delivery = Delivery::Ses(auth_shared::mail::ses_client().await);
        Ok(Self { mailer: Mailer { db, keys, cfg, sender, delivery, default_link_base: base } })
    }
}

/// Handles one batch: every message's job, and the ids of those to retry.
pub async fn handle(state: &State, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.unwrap_or_default();
        let body = record.body.unwrap_or_default();
        if let Err(e) = state.mailer.process(&body).await {
            tracing::warn!(event = "mail_failed", message_id = %id, error = %e, "mail_failed; SQS retries it");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Runs the Lambda loop: one SQS batch per invocation. An event that is not an SQS batch is
/// that invocation's error, with one log line.
pub async fn run(state: Result<State, StartupError>) -> ExitCode {
    auth_shared::telemetry::init();
    let state: &'static State = match state {
        Ok(s) => Box::leak(Box::new(s)),
        Err(e) => {
            tracing::error!("start-up failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let service = service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let batch: SqsEvent = serde_json::from_value(event.payload).map_err(|e| {
            tracing::error!("not an SQS event: {e}");
            format!("not an SQS event: {e}")
        })?;
        let response = handle(state, batch).await;
        serde_json::to_value(response).map_err(|e| e.to_string())
    });
    match lambda_runtime::run(service).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
