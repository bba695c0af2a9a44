//! The cheaper sweep against the real binary: a client that keeps up is
//! mostly exempt from kernel looks, and a client beside it that freezes is
//! still reaped after the grace window. Grace 4 s, sweeps every 50 ms (a
//! look at least every 10 sweeps); bounds are generous — figures live in
//! BENCHMARKS.md.

use std::time::{Duration, Instant};

use seatkeeper_testkit::{wait_until, Client, Server};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");
const GRACE: Duration = Duration::from_secs(4);
const SLACK: Duration = Duration::from_secs(5);

async fn metric(s: &Server, name: &str) -> f64 {
    s.metric(name).await.unwrap_or(-1.0)
}

#[tokio::test]
async fn a_client_that_keeps_up_is_exempt_and_a_frozen_neighbour_is_still_reaped() {
    let s = Server::start(
        BIN,
        &[
            "--seats",
            "2",
            "--engine",
            "synthetic:50:32768",
            "--dead-client-stall-s",
            "4",
            "--watchdog-interval-ms",
            "50",
            "--resume-window-s",
            "0",
        ],
    )
    .await;
    let mut active = Client::connect(s.addr).await;
    assert_eq!(active.hello(json!({})).await["type"], "ready");
    let mut frozen = Client::connect(s.addr).await;
    assert_eq!(frozen.hello(json!({})).await["type"], "ready");
    let streaming = tokio::spawn(async move {
        let (n, _) = active.stream_for(GRACE * 2 + SLACK, true).await;
        (active, n)
    });
    frozen.stream_for(Duration::from_secs(1), true).await;
    let frozen_at = Instant::now();
    // The frozen client never reads again.
    let reaped = wait_until(GRACE + SLACK, || async {
        (metric(&s, "seatkeeper_reaps_total{reason=\"send_stall\"}").await >= 1.0).then_some(())
    })
    .await;
    assert!(
        reaped.is_some(),
        "the frozen client was not reaped: {}",
        s.log_text()
    );
    assert!(
        frozen_at.elapsed() >= GRACE,
        "reaped before the grace window"
    );
    // The active client alone now: most of its sweeps are no kernel look.
    let (looks0, exempt0) = (
        metric(&s, "seatkeeper_watchdog_looks_total").await,
        metric(&s, "seatkeeper_watchdog_exempt_total").await,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let looks = metric(&s, "seatkeeper_watchdog_looks_total").await - looks0;
    let exempt = metric(&s, "seatkeeper_watchdog_exempt_total").await - exempt0;
    assert!(
        looks >= 1.0,
        "the active socket must still be looked at: {looks}"
    );
    assert!(exempt > looks, "exempt {exempt}, looks {looks}");
    let (_active, n) = streaming.await.unwrap();
    assert!(n > 100, "the active client kept streaming: {n} slices");
    let sessions = s.sessions().await;
    assert_eq!(
        sessions["sessions"].as_array().map(Vec::len),
        Some(1),
        "{sessions}"
    );
    assert_eq!(
        metric(&s, "seatkeeper_reaps_total{reason=\"send_stall\"}").await,
        1.0
    );
    drop(frozen);
}
