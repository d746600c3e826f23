//! The mailer's job queue: each job is one SQS message whose body is the job as JSON
//! (SendMessage, Amazon SQS API reference), or, in a local run, one string on an in-process
//! channel that the local mailer reads. The job type is the caller's; this only serialises it.
//! The SQS client comes from [`crate::aws::sdk_config`] (`AWS_ENDPOINT_URL_SQS` points it at
//! a local emulator).

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::MailError;

/// A job for the mailer (the payload of one SQS message, JSON). Generic: the caller defines
/// the job type; this just serialises with serde_json.
#[derive(Clone, Debug)]
pub struct Queue {
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    /// An SQS queue, by its URL.
    Sqs { client: aws_sdk_sqs::Client, url: String },
    /// A local run's channel.
    Local(UnboundedSender<String>),
}

impl Queue {
    /// The SQS queue at `url` (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`), through a
    /// client built from [`crate::aws::sdk_config`].
    pub async fn sqs(url: String) -> Self {
        let client = aws_sdk_sqs::Client::new(&crate::aws::sdk_config().await);
        Self { inner: Inner::Sqs { client, url } }
    }

    /// An in-process queue, and the receiving end the local mailer reads: each job arrives
    /// as its JSON string, in the order sent.
    pub fn local() -> (Self, UnboundedReceiver<String>) {
        let (tx, rx) = unbounded_channel();
        (Self { inner: Inner::Local(tx) }, rx)
    }

    /// Puts `job`, serialised as JSON, on the queue (one SQS message, MessageBody = the JSON;
    /// SQS takes at most 256 KiB).
    ///
    /// Errors: [`MailError::Json`] when `job` cannot be serialised; [`MailError::Sqs`] when
    /// SQS refuses or cannot be reached (the AWS error code and message, or the transport's
    /// error chain; never the job), or a local queue's receiver is gone.
    pub async fn send<T: serde::Serialize>(&self, job: &T) -> Result<(), MailError> {
        let body = serde_json::to_string(job)?;
        match &self.inner {
            Inner::Sqs { client, url } => {
                client
                    .send_message()
                    .queue_url(url)
                    .message_body(body)
                    .send()
                    .await
                    .map_err(|e| MailError::Sqs(super::describe(e)))?;
                Ok(())
            }
            Inner::Local(tx) => tx
                .send(body)
                .map_err(|_| MailError::Sqs("the local queue's receiver is gone".into())),
        }
    }
}
