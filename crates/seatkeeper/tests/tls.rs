//! Optional TLS: `--tls-cert`/`--tls-key` serve HTTPS and WSS on the one port.

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::{CertificateDer, ServerName};
use seatkeeper_testkit::http::{exchange_on, http};
use tokio_rustls::{
    rustls::{ClientConfig, RootCertStore},
    TlsConnector,
};
use tokio_tungstenite::{client_async, tungstenite::Message};

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");

struct Certs {
    dir: std::path::PathBuf,
    der: CertificateDer<'static>,
}

fn certs() -> Certs {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let dir = std::env::temp_dir().join(format!("seatkeeper-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    Certs {
        dir,
        der: cert.cert.der().clone(),
    }
}

fn connector(der: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(der.clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(cfg))
}

#[tokio::test]
async fn wss_and_https_on_the_one_port() {
    let c = certs();
    let cert = c.dir.join("cert.pem").display().to_string();
    let key = c.dir.join("key.pem").display().to_string();
    // testkit probes /healthz over plain HTTP, so start without it and poll over TLS.
    let port = seatkeeper_testkit::server::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &listen,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ])
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let tls = connector(&c.der);
    let name = ServerName::try_from("localhost").unwrap();
    let mut healthz = None;
    for _ in 0..100 {
        if let Ok(tcp) = tokio::net::TcpStream::connect(&listen).await {
            let s = tls.connect(name.clone(), tcp).await.expect("TLS handshake");
            let get = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            healthz = Some(exchange_on(s, get).await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(matches!(healthz, Some(Ok((200, _)))), "{healthz:?}");

    let tcp = tokio::net::TcpStream::connect(&listen).await.unwrap();
    let stream = tls.connect(name, tcp).await.unwrap();
    let (mut ws, _) = client_async(format!("wss://localhost:{port}/ws"), stream)
        .await
        .expect("wss handshake");
    ws.send(Message::text(r#"{"type":"hello"}"#)).await.unwrap();
    let ready = ws.next().await.unwrap().unwrap();
    assert!(
        ready.to_text().unwrap().contains(r#""type":"ready""#),
        "{ready}"
    );
    let slice = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ok(Message::Binary(b))) = ws.next().await {
                return b;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(slice[0], 1, "a slice frame, version 1");

    // Plain HTTP on the TLS port is not served.
    let plain = http(listen.parse().unwrap(), "GET", "/healthz", &[], "").await;
    assert!(!matches!(plain, Ok((200, _))), "{plain:?}");
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&c.dir);
}

#[tokio::test]
async fn unreadable_tls_files_exit_2_with_one_line() {
    let out = std::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent.pem",
            "--tls-key",
            "/nonexistent.key",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-cert"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
