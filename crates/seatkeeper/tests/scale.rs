//! A small version of the scale run (issue 9): 500 sessions of 10 slices/s
//! of 1 KiB for 20 s from `seatkeeper load` in its own process. No client
//! may be reaped or cut off, and every seat must come back at the end. The
//! figures (latency, RSS, watchdog cost) are benchmarks: BENCHMARKS.md.

use std::time::Duration;

use seatkeeper_testkit::Server;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");

#[tokio::test]
async fn five_hundred_sessions_stream_without_a_reap_and_give_every_seat_back() {
    let s = Server::start(
        BIN,
        &[
            "--seats",
            "1000",
            "--engine",
            "synthetic:10:1024",
            "--dead-client-stall-s",
            "10",
        ],
    )
    .await;
    let out = tokio::process::Command::new(BIN)
        .args([
            "load",
            "--url",
            &s.ws_url(),
            "--sessions",
            "500",
            "--duration-s",
            "20",
        ])
        .output()
        .await
        .expect("run seatkeeper load");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    println!("{report}");
    assert_eq!(report["ready"], 500, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["ended_early"], serde_json::json!({}), "{report}");
    assert_eq!(report["seq_gaps"], 0, "{report}");
    // 500 sessions × 10/s × ~19 s counted: allow a loaded machine half of it.
    assert!(
        report["slices"].as_u64().unwrap() > 500 * 10 * 10,
        "{report}"
    );
    for reason in ["send_stall", "peer_close", "unresponsive"] {
        let n = s
            .metric(&format!("seatkeeper_reaps_total{{reason=\"{reason}\"}}"))
            .await;
        assert_eq!(n, Some(0.0), "{reason}");
    }
    assert!(
        s.wait_released(Duration::from_secs(20)).await.is_some(),
        "{}",
        s.sessions().await["seats"]
    );
}
