//! Optional TLS, for pods exposed without a terminating tunnel: rustls with
//! the `ring` provider, HTTP/1.1 over ALPN (WebSocket upgrades need it).

use std::{path::Path, sync::Arc};

use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio_rustls::{rustls::ServerConfig, TlsAcceptor};

use crate::ConfigError;

/// Loads a PEM certificate chain and private key into an acceptor.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ConfigError> {
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        ConfigError(format!("{what} {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad("cannot read --tls-cert", cert, &e))?;
    if certs.is_empty() {
        return Err(ConfigError(format!(
            "--tls-cert {} holds no certificate",
            cert.display()
        )));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| bad("cannot read --tls-key", key, &e))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            ConfigError(format!(
                "--tls-cert/--tls-key do not make a usable pair: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
