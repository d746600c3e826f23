//! The AWS SDK configuration every client of this crate is built from (Secrets Manager now;
//! any other AWS client later): the standard configuration chain (region, credentials,
//! `AWS_ENDPOINT_URL_*` overrides), rustls on ring, and deadlines on every call.
//!
//! The SDK sets only a connect timeout by default, so an endpoint that accepts the connection
//! and never answers held a request (or a cold start) until Lambda's own timeout. Every call
//! here is bounded: each attempt by [`ATTEMPT_TIMEOUT`], the whole call, retries and backoff
//! included, by [`OPERATION_TIMEOUT`], with at most [`MAX_ATTEMPTS`] attempts (the SDK's
//! standard retry mode, which also retries throttling). A cold start that reads two secrets
//! one after the other (the database's, then the signing key's) so gives up within about
//! 2 × [`OPERATION_TIMEOUT`], well inside Lambda's 10 s init phase and the functions'
//! 10 s timeout. AWS SDK docs: "Timeouts" and "Retries" in the AWS SDK for Rust developer
//! guide.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// Opening the TCP and TLS connection to an AWS endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// One attempt of a call, from sending it to the end of the answer (Secrets Manager answers
/// in tens of milliseconds).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
/// A whole call: every attempt and the backoff between them.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(2400);
/// Attempts of one call, the first included.
pub const MAX_ATTEMPTS: u32 = 2;

/// The SDK configuration for this container's AWS clients: the standard chain, rustls on
/// ring, and the deadlines above.
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(ATTEMPT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(100)),
        )
        .load()
        .await
}
