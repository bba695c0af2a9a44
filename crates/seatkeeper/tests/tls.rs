//! Optional TLS: `--tls-cert`/`--tls-key` serve HTTPS and WSS on the one port.

use std::time::Duration;

use rustls_pki_types::ServerName;
use seatkeeper_testkit::{
    http::{exchange_on, http},
    tls::SelfSigned,
    ws, Event,
};

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");

#[tokio::test]
async fn wss_and_https_on_the_one_port() {
    let c = SelfSigned::new("tls");
    let (cert, key) = (c.cert(), c.key());
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
    let tls = c.connector();
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
    let mut ws = ws::Client::handshake(stream, &format!("wss://localhost:{port}/ws"))
        .await
        .expect("wss handshake");
    ws.send_text(r#"{"type":"hello"}"#).await.unwrap();
    let ready = ws.next(Duration::from_secs(10)).await;
    assert!(
        matches!(&ready, Some(Event::Text(v)) if v["type"] == "ready"),
        "{ready:?}"
    );
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    let slice = loop {
        match ws
            .next(end.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            Some(Event::Text(_)) => continue,
            other => break other,
        }
    };
    // A slice event is a frame whose header decoded: version 1.
    assert!(matches!(slice, Some(Event::Slice(..))), "{slice:?}");

    // Plain HTTP on the TLS port is not served.
    let plain = http(listen.parse().unwrap(), "GET", "/healthz", &[], "").await;
    assert!(!matches!(plain, Ok((200, _))), "{plain:?}");
    let _ = child.kill().await;
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
