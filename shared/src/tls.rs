//! TLS to PostgreSQL with rustls, with libpq's `sslmode` meanings in one place.
//!
//! tokio-postgres itself knows only disable / prefer / require and leaves certificate checks to
//! the TLS connector; this module supplies the connector that makes `verify-ca` and
//! `verify-full` mean what they mean to libpq, and reads `sslrootcert`.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, no certificate check (libpq's default).
    Prefer,
    /// TLS always, no certificate check.
    Require,
    /// TLS always; the certificate must chain to `sslrootcert`.
    VerifyCa,
    /// TLS always; the certificate must chain to `sslrootcert` and name the host.
    VerifyFull,
}

impl TlsMode {
    /// Parses an `sslmode` value. As in libpq, `require` with a root certificate behaves as
    /// `verify-ca`, and the verifying modes need a root certificate.
    pub fn parse(mode: Option<&str>, has_root_cert: bool) -> Result<Self, String> {
        let mode = match mode.unwrap_or("prefer") {
            "disable" => Self::Disable,
            "prefer" | "allow" => Self::Prefer,
            "require" if has_root_cert => Self::VerifyCa,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                let shown: String = other.chars().take(20).collect();
                return Err(format!(
                    "has sslmode {shown:?}; expected disable, prefer, require, verify-ca or verify-full"
                ));
            }
        };
        if matches!(mode, Self::VerifyCa | Self::VerifyFull) && !has_root_cert {
            return Err(
                "has sslmode=verify-ca/verify-full without sslrootcert (a PEM CA bundle file, or \"system\")"
                    .into(),
            );
        }
        Ok(mode)
    }

    /// The mode tokio-postgres applies (it negotiates; we verify).
    pub fn negotiation(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode;
        match self {
            Self::Disable => SslMode::Disable,
            Self::Prefer => SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => SslMode::Require,
        }
    }
}

/// A TLS configuration problem found when building the connector.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The root certificate file could not be read or holds no certificate.
    #[error("sslrootcert {path:?} could not be used: {reason}")]
    RootCert {
        /// The configured path.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads the trust anchors named by `sslrootcert`: a PEM file, or `system` for the platform's
/// store.
fn load_roots(path: &str) -> Result<RootCertStore, TlsError> {
    let err = |reason: String| TlsError::RootCert { path: path.to_owned(), reason };
    let mut roots = RootCertStore::empty();
    if path == "system" {
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
    } else {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        let (_, rejected) = roots.add_parsable_certificates(certs);
        if rejected > 0 && roots.is_empty() {
            return Err(err("no certificate in it could be parsed".into()));
        }
    }
    if roots.is_empty() {
        return Err(err("it holds no certificate".into()));
    }
    Ok(roots)
}

/// Builds the connector for `mode`. For `Disable` tokio-postgres never calls it, but the pool
/// has one connector type either way.
pub fn connector(mode: TlsMode, root_cert: Option<&str>) -> Result<MakeRustlsConnect, TlsError> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, root_cert) {
        (TlsMode::VerifyCa | TlsMode::VerifyFull, Some(path)) => {
            let webpki = WebPkiServerVerifier::builder_with_provider(
                Arc::new(load_roots(path)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| TlsError::RootCert { path: path.to_owned(), reason: e.to_string() })?;
            if mode == TlsMode::VerifyFull { webpki } else { Arc::new(ChainOnly(webpki)) }
        }
        _ => Arc::new(Unverified(algorithms)),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `verify-ca`: the chain must be trusted, the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` / `require`: encrypted, certificate not checked (libpq's meaning of these modes).
#[derive(Debug)]
struct Unverified(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_meanings_follow_libpq() {
        assert_eq!(TlsMode::parse(None, false), Ok(TlsMode::Prefer));
        assert_eq!(TlsMode::parse(Some("disable"), false), Ok(TlsMode::Disable));
        assert_eq!(TlsMode::parse(Some("require"), false), Ok(TlsMode::Require));
        assert_eq!(TlsMode::parse(Some("require"), true), Ok(TlsMode::VerifyCa));
        assert_eq!(TlsMode::parse(Some("verify-full"), true), Ok(TlsMode::VerifyFull));
        assert!(TlsMode::parse(Some("verify-full"), false).unwrap_err().contains("sslrootcert"));
        assert!(TlsMode::parse(Some("verify-ca"), false).is_err());
        assert!(TlsMode::parse(Some("bogus"), false).unwrap_err().contains("bogus"));
    }

    #[test]
    fn missing_root_cert_file_is_a_clear_error() {
        let e = connector(TlsMode::VerifyFull, Some("/nonexistent/ca.pem")).err().unwrap();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
