//! TLS 1.3 configuration for the `--tls` load client and ceiling servers:
//! rustls with the ring provider, certificate and key read from PEM files
//! (the throwaway self-signed pair `run.py` makes for each benchmark run).
//!
//! The client does not do web-PKI path building: a benchmark certificate is
//! self-signed (and often marked CA:TRUE, which webpki refuses as an end
//! entity). With `--tls-cert` it accepts exactly that certificate (pinned by
//! its DER bytes); without it, any certificate. The handshake signature is
//! checked either way, so the server does hold the key of what it presented.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme, SupportedProtocolVersion,
};

/// Only TLS 1.3: what a default Python server context negotiates with a
/// current client, and the only version the cells measure.
static VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file, in file order.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate PEM in {}: {e:?}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("no usable private key in {}: {e:?}", path.display()))
}

/// Accepts the pinned end-entity certificate (or any, when none is pinned) and
/// verifies the handshake signatures with the provider's algorithms.
struct PinnedCert {
    pinned: Option<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for PinnedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedCert")
            .field("pinned", &self.pinned.is_some())
            .finish()
    }
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.pinned {
            Some(pinned) if pinned.as_ref() != end_entity.as_ref() => {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Client configuration: TLS 1.3, no client certificate, the server's
/// certificate pinned to the first one in `server_cert` when given.
pub fn client_config(server_cert: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let pinned = match server_cert {
        Some(path) => read_certs(path)?.into_iter().next(),
        None => None,
    };
    let verifier = PinnedCert {
        pinned,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(|e| format!("TLS client configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Server configuration (for the ceiling): TLS 1.3 with the chain in `cert`
/// and the key in `key`.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| format!("TLS server configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(read_certs(cert)?, read_key(key)?)
        .map_err(|e| format!("TLS server certificate/key: {e}"))?;
    Ok(Arc::new(config))
}

/// "TLSv1_3/TLS13_AES_256_GCM_SHA384" for a finished handshake.
pub fn describe(conn: &rustls::CommonState) -> String {
    let version = conn
        .protocol_version()
        .map_or_else(|| "?".to_string(), |v| format!("{v:?}"));
    let suite = conn
        .negotiated_cipher_suite()
        .map_or_else(|| "?".to_string(), |s| format!("{:?}", s.suite()));
    format!("{version}/{suite}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_an_unpinned_client_config() {
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn reports_a_missing_certificate_file() {
        let err = client_config(Some(Path::new("/nonexistent/cert.pem"))).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
    }

    #[test]
    fn rejects_pem_without_certificates() {
        let dir = std::env::temp_dir().join(format!("loadclient-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("empty.pem");
        std::fs::write(&path, b"not a certificate\n").expect("write");
        let err = read_certs(&path).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("no certificate"), "{err}");
    }
}
