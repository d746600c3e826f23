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
//!
//! Trust: inside Lambda (AWS_LAMBDA_RUNTIME_API set) the clients trust only the five roots of
//! Amazon Trust Services ([`AMAZON_TRUST_ROOTS`]), which every AWS service endpoint's
//! certificate chains to ("AWS services moving to Amazon Trust Services", AWS Security Blog).
//! Loading and parsing the system store instead (about 145 certificates) took 5-12 ms of every
//! cold start, before the first call. Elsewhere (auth-admin on an operator's machine, perhaps
//! behind a proxy that re-signs TLS) they trust the system store. Local emulators (moto) are
//! reached over plain HTTP through `AWS_ENDPOINT_URL_*` and need no trust at all.

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

/// The roots of Amazon Trust Services (Amazon Root CA 1-4 and Starfield Services Root
/// Certificate Authority - G2, which cross-signs them), PEM, from
/// <https://www.amazontrust.com/repository/>.
pub const AMAZON_TRUST_ROOTS: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// What the clients trust: Amazon Trust Services' roots inside Lambda, the system's store
/// elsewhere (see the module docs).
fn trust_store() -> aws_smithy_http_client::tls::TrustStore {
    use aws_smithy_http_client::tls::TrustStore;
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        TrustStore::empty().with_pem_certificate(AMAZON_TRUST_ROOTS)
    } else {
        TrustStore::default()
    }
}

/// The SDK configuration for this container's AWS clients: the standard chain, rustls on
/// ring, the trust of [`trust_store`], and the deadlines above. Built once per process and
/// shared by every client (one HTTP client, one connection pool, the chain resolved once): a
/// function with two clients (the signing secret and the mail queue, say) paid for the chain
/// and the TLS set-up twice in its cold start.
pub async fn sdk_config() -> aws_config::SdkConfig {
    static CONFIG: tokio::sync::OnceCell<aws_config::SdkConfig> =
        tokio::sync::OnceCell::const_new();
    CONFIG.get_or_init(load).await.clone()
}

async fn load() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, TlsContext, rustls_provider::CryptoMode};
    let tls = TlsContext::builder().with_trust_store(trust_store()).build().unwrap_or_default();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls)
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

#[cfg(test)]
mod tests {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    use super::AMAZON_TRUST_ROOTS;

    /// SHA-256 fingerprints as published at <https://www.amazontrust.com/repository/>.
    const PUBLISHED: [&str; 5] = [
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e", // Amazon Root CA 1
        "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4", // Amazon Root CA 2
        "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4", // Amazon Root CA 3
        "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092", // Amazon Root CA 4
        "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5", // Starfield G2
    ];

    #[test]
    fn the_embedded_roots_are_amazon_trust_services_five_and_parse_as_trust_anchors() {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(AMAZON_TRUST_ROOTS)
                .collect::<Result<_, _>>()
                .expect("the embedded PEM parses");
        let found: Vec<String> = certs
            .iter()
            .map(|c| hex::encode(ring::digest::digest(&ring::digest::SHA256, c)))
            .collect();
        assert_eq!(found, PUBLISHED);
        let mut roots = rustls::RootCertStore::empty();
        let (added, refused) = roots.add_parsable_certificates(certs);
        assert_eq!((added, refused), (5, 0));
    }
}
