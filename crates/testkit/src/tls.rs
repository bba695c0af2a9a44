//! TLS under test: a self-signed `localhost` certificate on disk for
//! `serve --tls-cert/--tls-key`, and a client connector that trusts only it.

use std::{path::PathBuf, sync::Arc};

use rustls_pki_types::CertificateDer;
use tokio_rustls::{
    rustls::{ClientConfig, RootCertStore},
    TlsConnector,
};

/// A fresh self-signed certificate for `localhost`, in its own temp dir
/// (removed on drop).
pub struct SelfSigned {
    /// The directory holding `cert.pem` and `key.pem`.
    pub dir: PathBuf,
    der: CertificateDer<'static>,
}

impl SelfSigned {
    /// Generates one into a temp dir named after `tag` and the pid.
    pub fn new(tag: &str) -> Self {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let dir = std::env::temp_dir().join(format!("seatkeeper-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cert dir");
        std::fs::write(dir.join("cert.pem"), cert.cert.pem()).expect("cert.pem");
        std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).expect("key.pem");
        Self {
            dir,
            der: cert.cert.der().clone(),
        }
    }

    /// The certificate's path (`--tls-cert`).
    pub fn cert(&self) -> String {
        self.dir.join("cert.pem").display().to_string()
    }

    /// The key's path (`--tls-key`).
    pub fn key(&self) -> String {
        self.dir.join("key.pem").display().to_string()
    }

    /// A client that trusts this certificate alone and offers HTTP/1.1.
    pub fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).expect("root");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut cfg = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsConnector::from(Arc::new(cfg))
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
