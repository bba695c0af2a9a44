//! The pong clock's stream offsets line up exactly with the client's view
//! of the TCP stream: a raw client counts every byte it receives from the
//! first byte of the HTTP upgrade response, notes where the first ping
//! frame ends, then stops reading (a 4 MiB buffer takes everything in, so
//! the server's TCP sees it all acknowledged) and never answers. The reap's
//! evidence must name that ping at exactly that offset. Under TLS the
//! offset is the TCP stream's, not the plaintext's.

use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use seatkeeper_testkit::{tls::SelfSigned, ws::frame, Server};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpSocket, TcpStream},
};

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");

/// The log with ANSI colour codes taken out.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The reap line's `ping_end_offset`.
fn reaped_offset(log: &str) -> Option<u64> {
    let line = plain(log)
        .lines()
        .find(|l| l.contains("reaped dead client") && l.contains("unresponsive"))?
        .to_owned();
    let rest = &line[line.find("ping_end_offset=")? + "ping_end_offset=".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// A TCP stream that counts the bytes read from it.
struct Counting(TcpStream, Arc<AtomicU64>);

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.0).poll_read(cx, buf);
        self.1
            .fetch_add((buf.filled().len() - before) as u64, Ordering::SeqCst);
        r
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Upgrades, says hello and reads frames until the first ping; returns the
/// plaintext offset at which it ended.
async fn to_first_ping<S: AsyncRead + AsyncWrite + Unpin>(c: &mut S, host: &str) -> u64 {
    let req = frame::upgrade_request(host, "/ws");
    c.write_all(req.as_bytes()).await.unwrap();
    c.flush().await.unwrap();
    // The response head, byte by byte so nothing after it is consumed.
    let head = frame::read_head(c).await.expect("upgrade response");
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    let mut offset = head.len() as u64;
    let hello = frame::encode(frame::TEXT, br#"{"type":"hello","client_id":"raw"}"#);
    c.write_all(&hello).await.unwrap();
    c.flush().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (op, _, len) = frame::read_frame(c).await.expect("a server frame");
            offset += len;
            if op == frame::PING {
                return offset;
            }
        }
    })
    .await
    .expect("a ping within 10 s")
}

#[tokio::test]
async fn the_reaped_pings_offset_is_where_the_client_saw_it_end() {
    let s = Server::start(
        BIN,
        &[
            "--ping-interval-s",
            "1",
            "--pong-timeout-s",
            "2",
            "--watchdog-interval-ms",
            "100",
            "--resume-window-s",
            "0",
        ],
    )
    .await;
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4 << 20).unwrap();
    let mut c = sock.connect(s.addr).await.unwrap();
    let ping_end = to_first_ping(&mut c, &s.addr.to_string()).await;
    // Never read again, never answer.
    let released = s.wait_released(Duration::from_secs(15)).await;
    assert!(released.is_some(), "not reaped: {}", s.log_text());
    assert_eq!(
        reaped_offset(&s.log_text()),
        Some(ping_end),
        "the client saw the ping end at {ping_end}: {}",
        plain(&s.log_text())
    );
    drop(c);
}

#[tokio::test]
async fn under_tls_the_offset_counts_tcp_bytes_not_plaintext() {
    let cert = SelfSigned::new("pongtls");
    let port = seatkeeper_testkit::server::free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = cert.dir.join("server.log");
    let _child = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", &listen])
        .args(["--tls-cert", &cert.cert(), "--tls-key", &cert.key()])
        .args(["--ping-interval-s", "1", "--pong-timeout-s", "2"])
        .args(["--watchdog-interval-ms", "100", "--resume-window-s", "0"])
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let tls = cert.connector();
    let mut tcp = None;
    for _ in 0..100 {
        let sock = TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4 << 20).unwrap();
        if let Ok(t) = sock.connect(listen.parse().unwrap()).await {
            tcp = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = Arc::new(AtomicU64::new(0));
    let counting = Counting(tcp.expect("server up"), Arc::clone(&seen));
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut c = tls.connect(name, counting).await.expect("TLS handshake");
    let plaintext_end = to_first_ping(&mut c, &format!("localhost:{port}")).await;
    let tcp_seen = seen.load(Ordering::SeqCst);
    // Never read again, never answer.
    let mut offset = None;
    for _ in 0..150 {
        offset = reaped_offset(&std::fs::read_to_string(&log).unwrap_or_default());
        if offset.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let offset = offset.unwrap_or_else(|| panic!("not reaped unresponsive: {text}"));
    // The ping ended inside what the client's TCP had read by then, and
    // past its plaintext end: handshake and record overhead are counted.
    assert!(
        offset > plaintext_end && offset <= tcp_seen,
        "offset {offset}, plaintext {plaintext_end}, TCP bytes read {tcp_seen}"
    );
    drop(c);
}
