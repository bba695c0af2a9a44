//! The pong clock's stream offsets line up exactly with the client's view
//! of the TCP stream: a raw client counts every byte it receives from the
//! first byte of the HTTP upgrade response, notes where the first ping
//! frame ends, then stops reading (a 4 MiB buffer takes everything in, so
//! the server's TCP sees it all acknowledged) and never answers. The reap's
//! evidence must name that ping at exactly that offset.

use std::time::Duration;

use seatkeeper_testkit::Server;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");

/// A masked client text frame (a zero mask: legal, and the payload stays
/// readable).
fn text_frame(payload: &str) -> Vec<u8> {
    let p = payload.as_bytes();
    assert!(p.len() < 126);
    let mut f = vec![0x81, 0x80 | p.len() as u8, 0, 0, 0, 0];
    f.extend_from_slice(p);
    f
}

/// Reads one server frame; returns its opcode and its length on the wire.
async fn frame(s: &mut TcpStream) -> (u8, u64) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.expect("frame header");
    let (len, ext) = match h[1] & 0x7f {
        126 => (u64::from(s.read_u16().await.expect("len16")), 2),
        127 => (s.read_u64().await.expect("len64"), 8),
        n => (u64::from(n), 0),
    };
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body).await.expect("frame body");
    (h[0] & 0x0f, 2 + ext + len)
}

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
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        s.addr
    );
    c.write_all(req.as_bytes()).await.unwrap();
    // The response head, byte by byte so nothing after it is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(c.read_u8().await.expect("upgrade response"));
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    let mut offset = head.len() as u64;
    c.write_all(&text_frame(r#"{"type":"hello","client_id":"raw"}"#))
        .await
        .unwrap();
    let ping_end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (op, len) = frame(&mut c).await;
            offset += len;
            if op == 0x9 {
                return offset;
            }
        }
    })
    .await
    .expect("a ping within 10 s");
    // Never read again, never answer.
    let released = s.wait_released(Duration::from_secs(15)).await;
    let log = plain(&s.log_text());
    assert!(released.is_some(), "not reaped: {log}");
    let line = log
        .lines()
        .find(|l| l.contains("reaped dead client"))
        .expect("reap line");
    assert!(line.contains("reason=\"unresponsive\""), "{line}");
    assert!(
        line.contains(&format!("ping_end_offset={ping_end} "))
            || line.ends_with(&format!("ping_end_offset={ping_end}")),
        "the client saw the ping end at {ping_end}: {line}"
    );
    drop(c);
}
