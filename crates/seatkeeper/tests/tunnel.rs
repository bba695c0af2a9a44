//! Safe behind a tunnel: every visitor arrives from 127.0.0.1, so nothing
//! may be granted because of the peer's address. A loopback relay stands in
//! for the tunnel (cloudflared, ngrok, a GPU cloud's proxy); each refusal
//! leaves the streaming session untouched.

use std::{net::SocketAddr, time::Duration};

use seatkeeper_testkit::{
    http::{exchange, http},
    wait_until, Client, Relay, Server,
};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");
const TOKEN: &str = "s3cret-admin-token";

fn error_code(body: &str) -> Value {
    serde_json::from_str::<Value>(body).map_or(Value::Null, |v| v["error"].clone())
}

/// A session streaming through the tunnel, and its id.
async fn streaming(via: SocketAddr) -> (Client, String) {
    let mut c = Client::connect(via).await;
    let ready = c.hello(json!({"client_id": "tab-42"})).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    c.take_slices(2).await;
    (c, ready["session_id"].as_str().unwrap().to_owned())
}

/// Every admin route, as a stranger would try it.
fn admin_attempts(id: &str) -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("DELETE", format!("/sessions/{id}"), ""),
        ("POST", format!("/sessions/{id}/cmd"), r#"{"type":"bye"}"#),
        ("POST", "/drain".to_owned(), ""),
        ("DELETE", "/drain".to_owned(), ""),
    ]
}

#[tokio::test]
async fn without_a_token_admin_is_off_through_the_tunnel_and_sessions_hide_addresses() {
    let s = Server::start(BIN, &[]).await;
    let tunnel = Relay::start(s.addr).await;
    let (mut c, id) = streaming(tunnel.addr).await;

    for (method, path, body) in admin_attempts(&id) {
        let (code, resp) = http(tunnel.addr, method, &path, &[], body).await.unwrap();
        assert_eq!(code, 403, "{method} {path}: {resp}");
        assert_eq!(
            error_code(&resp),
            "admin_disabled",
            "{method} {path}: {resp}"
        );
    }
    // Nothing happened: the session streams, the pod is still ready.
    c.take_slices(3).await;
    assert_eq!(
        s.get("/readyz").await.unwrap().0,
        503,
        "the one seat is held"
    );
    let listing = s.sessions().await;
    let session = &listing["sessions"][0];
    assert_eq!(session["id"], id.as_str());
    assert!(
        session.get("peer").is_none(),
        "address shown publicly: {session}"
    );
    let one = s.get_json(&format!("/sessions/{id}")).await;
    assert!(one.get("peer").is_none(), "{one}");
    assert_eq!(one["client_id"], "tab-42");

    // The admin listener is the operator's way in: the full view.
    let (code, body) = s.admin_request("GET", "/sessions", "").await.unwrap();
    assert_eq!(code, 200);
    let full: Value = serde_json::from_str(&body).unwrap();
    assert!(full["sessions"][0]["peer"].is_string(), "{full}");
}

#[tokio::test]
async fn with_a_token_only_the_right_bearer_is_admin() {
    let s = Server::start(BIN, &["--admin-token", TOKEN, "--seats", "3"]).await;
    let tunnel = Relay::start(s.addr).await;
    let (mut c, id) = streaming(tunnel.addr).await;
    let (mut bystander, _) = streaming(tunnel.addr).await;

    for auth in [None, Some("Bearer wrong-token!"), Some("Basic czNjcmV0")] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
        for (method, path, body) in admin_attempts(&id) {
            let (code, resp) = http(tunnel.addr, method, &path, &headers, body)
                .await
                .unwrap();
            assert_eq!(code, 401, "{method} {path} {auth:?}: {resp}");
            assert_eq!(error_code(&resp), "unauthorized");
        }
    }
    c.take_slices(2).await;
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let (code, body) = http(tunnel.addr, "GET", "/sessions", &auth, "")
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("\"peer\""),
        "the token shows addresses: {body}"
    );

    // Drain, then undo it: the pod is ready again without a restart.
    let authed = |m: &'static str, p: &'static str| http(tunnel.addr, m, p, &auth, "");
    assert_eq!(authed("POST", "/drain").await.unwrap().0, 202);
    let mut probe = Client::connect(tunnel.addr).await;
    assert_eq!(
        probe.hello(json!({})).await["type"],
        "busy",
        "draining admits nobody"
    );
    assert_eq!(authed("DELETE", "/drain").await.unwrap().0, 202);
    assert_eq!(
        s.get_json("/readyz/pool").await["draining"],
        false,
        "drain not undone"
    );

    // With the token, eviction happens and says so.
    let (code, _) = http(tunnel.addr, "DELETE", &format!("/sessions/{id}"), &auth, "")
        .await
        .unwrap();
    assert_eq!(code, 204);
    let end = c.until_closed(Duration::from_secs(5)).await;
    assert!(
        matches!(end, Some(seatkeeper_testkit::Event::Closed(Some(1000)))),
        "{end:?}"
    );
    bystander.take_slices(3).await;
}

#[tokio::test]
async fn the_admin_listener_refuses_rebound_host_names() {
    let s = Server::start(BIN, &[]).await;
    let admin = s.admin.unwrap();
    for host in ["127.0.0.1", "localhost:1320", "[::1]"] {
        let head = format!("GET /sessions HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let (code, text) = exchange(admin, head.as_bytes()).await.unwrap();
        assert_eq!(code, 200, "{host}: {text}");
    }
    for host in ["attacker.example", "localhost.attacker.example:1320"] {
        let head = format!(
            "POST /drain HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (code, text) = exchange(admin, head.as_bytes()).await.unwrap();
        assert_eq!(code, 403, "{host}: {text}");
        assert!(text.contains("bad_host"), "{text}");
    }
    assert_eq!(
        s.get("/readyz").await.unwrap().0,
        200,
        "a refused drain drained"
    );
    // The admin listener serves no sessions and no web client.
    assert_eq!(s.admin_request("GET", "/", "").await.unwrap().0, 404);
}

#[tokio::test]
async fn admin_over_a_unix_socket_and_drain_cancel() {
    let dir = std::env::temp_dir().join(format!("sk-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("admin.sock");
    let spec = format!("unix:{}", sock.display());
    let s = Server::start(BIN, &["--admin-listen", &spec]).await;
    let drain = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["drain", "--admin-listen", &spec]).args(extra);
        cmd.output().unwrap()
    };
    let out = drain(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.get("/readyz").await.unwrap().0, 503);
    let out = drain(&["--cancel"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.get("/readyz").await.unwrap().0, 200);
    // Through the public port without a token, drain is refused.
    let out = std::process::Command::new(BIN)
        .args(["drain", "--listen", &s.addr.to_string()])
        .env_remove("SEATKEEPER_ADMIN_LISTEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_disabled"));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes a request head promising `len` body bytes, then one byte a second.
async fn trickle(addr: SocketAddr, head: String) -> tokio::task::JoinHandle<Option<Duration>> {
    tokio::spawn(async move {
        let t0 = tokio::time::Instant::now();
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(head.as_bytes()).await.ok()?;
        let mut buf = [0u8; 1024];
        for _ in 0..60 {
            tokio::select! {
                r = s.read(&mut buf) => {
                    // An answer or a close: the server gave up on the body.
                    let _ = r;
                    return Some(t0.elapsed());
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if s.write_all(b"x").await.is_err() {
                        return Some(t0.elapsed());
                    }
                }
            }
        }
        None
    })
}

#[tokio::test]
async fn trickled_bodies_are_dropped_at_the_request_deadline_while_healthz_answers() {
    let s = Server::start(BIN, &["--admin-token", TOKEN, "--max-connections", "8"]).await;
    let (mut c, id) = streaming(s.addr).await;
    let authed = format!(
        "POST /sessions/{id}/cmd HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n{{"
    );
    let stranger =
        format!("POST /sessions/{id}/cmd HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{");
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(trickle(s.addr, authed.clone()).await);
    }
    // A stranger's body is never read: refused at once.
    let refused = trickle(s.addr, stranger).await.await.unwrap();
    assert!(
        refused.is_some_and(|t| t < Duration::from_secs(3)),
        "unauthenticated body was read: {refused:?}"
    );
    // While four bodies trickle, health checks and the session go on.
    for _ in 0..3 {
        assert_eq!(s.get("/healthz").await.unwrap().0, 200);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    c.take_slices(3).await;
    for t in slow {
        let took = t.await.unwrap().expect("trickled body never dropped");
        assert!(
            took >= Duration::from_secs(8) && took < Duration::from_secs(20),
            "dropped after {took:?}, the deadline is 10 s"
        );
    }
    c.take_slices(2).await;
}

#[tokio::test]
async fn a_client_close_is_answered_with_its_code() {
    let s = Server::start(BIN, &[]).await;
    for code in [1000u16, 1001, 4321] {
        let (mut c, _) = streaming(s.addr).await;
        c.close(code).await;
        // The server's answer is a close frame with the same code (the
        // client library surfaces it), then the connection ends cleanly.
        let mut answered = None;
        while let Some(ev) = c.next(Duration::from_secs(5)).await {
            if let seatkeeper_testkit::Event::Closed(code) = ev {
                answered = code;
                break;
            }
        }
        assert_eq!(answered, Some(code), "close {code} not echoed");
        assert!(
            s.wait_released(Duration::from_secs(5)).await.is_some(),
            "a clean close did not release the seat"
        );
    }
}

#[tokio::test]
async fn a_client_still_writing_an_oversize_message_reads_1009() {
    let s = Server::start(BIN, &["--seats", "2"]).await;
    let (mut bystander, _) = streaming(s.addr).await;
    let (c, _) = streaming(s.addr).await;
    use futures_util::{SinkExt, StreamExt};
    let (mut tx, mut rx) = c.into_inner().ws.split();
    let writer = tokio::spawn(async move {
        let big = "x".repeat(2 << 20);
        let _ = tx
            .send(tokio_tungstenite::tungstenite::Message::text(big))
            .await;
        tx
    });
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = rx.next().await {
            match msg {
                Ok(tokio_tungstenite::tungstenite::Message::Close(f)) => {
                    return f.map(|f| u16::from(f.code));
                }
                Ok(_) => continue,
                Err(e) => panic!("the client saw {e} instead of a close frame"),
            }
        }
        None
    })
    .await
    .expect("no close in time");
    assert_eq!(code, Some(1009));
    let _ = writer.await;
    bystander.take_slices(3).await;
    let held = wait_until(Duration::from_secs(5), || async {
        (s.sessions().await["seats"]["held"] == 1).then_some(())
    })
    .await;
    assert!(held.is_some(), "the refused client's seat is still held");
}
