//! Logging: structured `tracing` events, in Lambda's JSON log format when
//! AWS_LAMBDA_LOG_FORMAT=JSON, at AWS_LAMBDA_LOG_LEVEL (or RUST_LOG, default INFO).

/// Installs the subscriber once per process.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
