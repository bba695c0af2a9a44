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
