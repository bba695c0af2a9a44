//! Graceful shutdown under load: SIGTERM with 200 sessions streaming closes
//! every one with 1001 and exits 0 within the contract's 5 s.

use std::time::{Duration, Instant};

use seatkeeper_testkit::Server;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");

#[tokio::test]
async fn sigterm_under_load_closes_every_session_1001_and_exits_zero() {
    let mut s = Server::start(BIN, &["--seats", "300", "--engine", "synthetic:50:4096"]).await;
    let load = tokio::process::Command::new(BIN)
        .args([
            "load",
            "--url",
            &s.ws_url(),
            "--sessions",
            "200",
            "--duration-s",
            "20",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("seatkeeper load");
    let all_up = seatkeeper_testkit::wait_until(Duration::from_secs(15), || async {
        (s.sessions().await["seats"]["held"] == 200).then_some(())
    })
    .await;
    assert!(all_up.is_some(), "{}", s.sessions().await["seats"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    s.sigterm();
    let status = s.wait_exit(Duration::from_secs(8)).await.expect("exited");
    assert!(status.success(), "{status:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(5) + Duration::from_secs(2),
        "{:?}",
        t0.elapsed()
    );
    let out = tokio::time::timeout(Duration::from_secs(30), load.wait_with_output())
        .await
        .expect("load ends once the server is gone")
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(
        report["ended_early"],
        json!({"close:1001": 200}),
        "{report}"
    );
}

/// A Rust engine that says hello, then never answers `session_start`, and
/// reports every message it is sent.
async fn mute_engine(path: std::path::PathBuf) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    use seatkeeper_engine::external::frame::{self, Incoming};
    use tokio::io::AsyncWriteExt;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut s = loop {
            match tokio::net::UnixStream::connect(&path).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let hello = json!({"type": "hello", "name": "mute", "version": "1", "capabilities": {}, "warm": true});
        s.write_all(&frame::encode_json(&hello)).await.unwrap();
        while let Ok(Some(Incoming::Json(body))) = frame::read(&mut s, 1 << 20).await {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                let _ = tx.send(v);
            }
        }
    });
    rx
}

#[tokio::test]
async fn sigterm_while_the_engine_opens_a_session_closes_1001_and_tells_the_engine() {
    let dir = std::env::temp_dir().join(format!("sk-open-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("engine.sock");
    let mut s = Server::start(BIN, &["--engine", &format!("unix:{}", sock.display())]).await;
    let mut engine = mute_engine(sock).await;
    let welcome = tokio::time::timeout(Duration::from_secs(10), engine.recv())
        .await
        .expect("welcome")
        .unwrap();
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let ready = seatkeeper_testkit::wait_until(Duration::from_secs(10), || async {
        (s.get("/readyz").await.ok()?.0 == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "engine never ready");

    let mut c = seatkeeper_testkit::Client::connect(s.addr).await;
    c.send(json!({"type": "hello"})).await;
    let start = tokio::time::timeout(Duration::from_secs(10), engine.recv())
        .await
        .expect("session_start")
        .unwrap();
    assert_eq!(start["type"], "session_start", "{start}");
    s.sigterm();
    let end = c.until_closed(Duration::from_secs(8)).await;
    assert!(
        matches!(end, Some(seatkeeper_testkit::Event::Closed(Some(1001)))),
        "{end:?}"
    );
    let told = tokio::time::timeout(Duration::from_secs(8), async {
        while let Some(m) = engine.recv().await {
            if m["type"] == "session_end" {
                return Some(m);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("the engine heard no session_end");
    assert_eq!(told["reason"], "shutdown", "{told}");
    assert_eq!(told["session_id"], start["session_id"]);
    let status = s.wait_exit(Duration::from_secs(8)).await.expect("exited");
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
