//! The dead-client reaper, over real sockets against the real binary
//! (issue 2's table). Grace 3 s, sampling 250 ms; bounds are generous —
//! timing figures live in BENCHMARKS.md, not here.

use std::time::{Duration, Instant};

use seatkeeper_testkit::{Client, Event, Relay, Server};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");
const GRACE: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_millis(250);
/// Slack for a loaded 2-core CI machine on top of each contract bound.
const SLACK: Duration = Duration::from_secs(3);

async fn server(extra: &[&str]) -> Server {
    let mut args = vec![
        "--dead-client-stall-s",
        "3",
        "--watchdog-interval-ms",
        "250",
        "--resume-window-s",
        "0",
    ];
    args.extend_from_slice(extra);
    Server::start(BIN, &args).await
}

async fn reaps(s: &Server, reason: &str) -> f64 {
    s.metric(&format!("seatkeeper_reaps_total{{reason=\"{reason}\"}}"))
        .await
        .unwrap_or(-1.0)
}

async fn total_reaps(s: &Server) -> f64 {
    let mut n = 0.0;
    for r in ["send_stall", "peer_close", "unresponsive"] {
        n += reaps(s, r).await;
    }
    n
}

#[tokio::test]
async fn an_active_client_is_kept_and_slices_flow() {
    let s = server(&[]).await;
    let mut c = Client::connect(s.addr).await;
    let ready = c.hello(json!({})).await;
    assert_eq!(ready["type"], "ready");
    let (n, _) = c.stream_for(GRACE * 2, true).await;
    assert!(n >= 40, "about 60 demo slices in 6 s, got {n}");
    let sessions = s.sessions().await;
    assert_eq!(sessions["lockHeld"], true);
    assert_eq!(sessions["sessions"][0]["state"], "streaming");
    assert!(sessions["sessions"][0]["last_ack_seq"].as_u64().unwrap() >= 40);
    assert_eq!(total_reaps(&s).await, 0.0);
}

#[tokio::test]
async fn a_paused_client_that_reads_and_pongs_but_never_acks_is_kept() {
    let s = server(&["--ping-interval-s", "1", "--pong-timeout-s", "5"]).await;
    let mut c = Client::connect(s.addr).await;
    c.hello(json!({})).await;
    let (n, _) = c.stream_for(GRACE * 4, false).await;
    assert_eq!(
        n, 16,
        "exactly one window of slices, then nothing until an ack"
    );
    let sessions = s.sessions().await;
    let session = &sessions["sessions"][0];
    assert_eq!(session["state"], "streaming", "{sessions}");
    assert!(
        session["slices_dropped"].as_u64().unwrap() > 50,
        "{session}"
    );
    assert_eq!(total_reaps(&s).await, 0.0);
    // The window reopens with one ack, and the newest slice comes first.
    c.send(json!({"type": "ack", "seq": 16})).await;
    match c.next(Duration::from_secs(5)).await {
        Some(Event::Slice(h, ..)) => assert_eq!(h.seq, 17),
        Some(Event::Text(v)) if v["type"] == "stats" => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_slow_link_that_drains_a_little_keeps_its_seat() {
    // 64 KiB slices at 20 Hz = 1.3 MB/s; the client reads a third of that
    // through a 32 KiB receive buffer, so the server's send queue is never
    // empty but always moving.
    let s = server(&["--engine", "synthetic:20:65536"]).await;
    let mut c = Client::connect_with(s.addr, Some(32 << 10)).await;
    c.hello(json!({})).await;
    let end = Instant::now() + GRACE * 3;
    let mut n = 0u64;
    let mut saw_queue = false;
    while Instant::now() < end {
        if let Some(Event::Slice(h, ..)) = c.next(Duration::from_secs(5)).await {
            n += 1;
            c.send(json!({"type": "ack", "seq": h.seq})).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
            if n.is_multiple_of(5) {
                let q = s.sessions().await["sessions"][0]["socket"]["send_queue_bytes"].as_u64();
                saw_queue |= q.unwrap_or(0) > 0;
            }
        }
    }
    assert!(n >= 20, "{n}");
    assert!(saw_queue, "the link should have been the bottleneck");
    assert_eq!(s.sessions().await["lockHeld"], true);
    assert_eq!(total_reaps(&s).await, 0.0);
}

#[tokio::test]
async fn a_frozen_client_is_reaped_for_send_stall() {
    let s = server(&[]).await;
    let mut c = Client::connect(s.addr).await;
    c.hello(json!({})).await;
    c.stream_for(Duration::from_secs(1), true).await;
    let frozen_at = Instant::now();
    // Stop reading: keep the socket, never poll it again.
    let released = s
        .wait_released(GRACE + 2 * TICK + SLACK + Duration::from_secs(2))
        .await;
    let took = frozen_at.elapsed();
    assert!(released.is_some(), "not reaped: {}", s.log_text());
    assert_eq!(reaps(&s, "send_stall").await, 1.0, "{}", s.log_text());
    assert!(took >= GRACE, "reaped before the grace window: {took:?}");
    assert!(s.log_text().contains("reaped dead client"));
    drop(c);
}

#[tokio::test]
async fn a_frozen_client_with_a_huge_receive_buffer_is_reaped_as_unresponsive() {
    let s = server(&["--ping-interval-s", "1", "--pong-timeout-s", "5"]).await;
    let mut c = Client::connect_with(s.addr, Some(4 << 20)).await;
    c.hello(json!({})).await;
    c.stream_for(Duration::from_secs(1), true).await;
    let released = s
        .wait_released(Duration::from_secs(5) + 2 * TICK + SLACK)
        .await;
    assert!(released.is_some(), "not reaped: {}", s.log_text());
    assert_eq!(reaps(&s, "unresponsive").await, 1.0, "{}", s.log_text());
    assert_eq!(reaps(&s, "send_stall").await, 0.0);
    drop(c);
}

#[tokio::test]
async fn a_tunnel_that_stops_reading_pod_side_is_reaped() {
    let s = server(&[]).await;
    let relay = Relay::start(s.addr).await;
    let mut c = Client::connect(relay.addr).await;
    c.hello(json!({})).await;
    c.stream_for(Duration::from_secs(1), true).await;
    relay.freeze();
    let released = s
        .wait_released(GRACE + 2 * TICK + SLACK + Duration::from_secs(3))
        .await;
    assert!(released.is_some(), "not reaped: {}", s.log_text());
    assert!(total_reaps(&s).await >= 1.0);
    drop(c);
}

#[tokio::test]
async fn bye_close_fin_and_rst_release_within_a_second() {
    let s = server(&[]).await;
    for how in ["bye", "close", "fin", "rst"] {
        let mut c = Client::connect(s.addr).await;
        assert_eq!(c.hello(json!({})).await["type"], "ready", "{how}");
        c.stream_for(Duration::from_millis(300), true).await;
        let t0 = Instant::now();
        let _kept = match how {
            "bye" => {
                c.send(json!({"type": "bye"})).await;
                Some(c)
            }
            "close" => {
                c.close(1000).await;
                Some(c)
            }
            "fin" => Some(c.fin().await),
            _ => {
                c.rst();
                None
            }
        };
        let took = s.wait_released(Duration::from_secs(5)).await;
        assert!(took.is_some(), "{how}: not released");
        assert!(
            t0.elapsed() < Duration::from_secs(1) + SLACK,
            "{how}: {:?}",
            t0.elapsed()
        );
    }
    let ended = s
        .metric("seatkeeper_sessions_ended_total{reason=\"bye\"}")
        .await;
    assert_eq!(ended, Some(1.0));
}

#[tokio::test]
async fn an_upgrade_without_hello_is_closed_1008_and_takes_no_seat() {
    let s = server(&[]).await;
    let mut c = Client::connect(s.addr).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.sessions().await["seats"]["held"], 0);
    assert_eq!(s.get("/readyz").await.unwrap().0, 200);
    let t0 = Instant::now();
    let mut saw_error = false;
    let end = loop {
        match c.next(Duration::from_secs(15)).await {
            Some(Event::Text(v)) => {
                assert_eq!(v["code"], "hello_timeout");
                saw_error = true;
            }
            other => break other,
        }
    };
    assert!(saw_error);
    assert!(matches!(end, Some(Event::Closed(Some(1008)))), "{end:?}");
    assert!(t0.elapsed() >= Duration::from_secs(8), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn a_second_client_gets_busy_1013_and_readyz_is_503() {
    let s = server(&[]).await;
    let mut first = Client::connect(s.addr).await;
    assert_eq!(first.hello(json!({})).await["type"], "ready");
    let (code, _) = s.get("/readyz").await.unwrap();
    assert_eq!(code, 503);
    let mut second = Client::connect(s.addr).await;
    let busy = second.hello(json!({})).await;
    assert_eq!(busy["type"], "busy");
    assert!(busy["retry_after_s"].as_f64().unwrap() > 0.0);
    assert!(matches!(
        second.until_closed(Duration::from_secs(5)).await,
        Some(Event::Closed(Some(1013)))
    ));
    first.stream_for(Duration::from_millis(300), true).await;
    assert_eq!(s.sessions().await["seats"]["held"], 1);
}

#[tokio::test]
async fn sigterm_closes_sessions_with_1001_and_exits_zero() {
    let mut s = server(&[]).await;
    let mut c = Client::connect(s.addr).await;
    c.hello(json!({})).await;
    c.stream_for(Duration::from_millis(300), true).await;
    let t0 = Instant::now();
    s.sigterm();
    let end = c.until_closed(Duration::from_secs(5)).await;
    assert!(matches!(end, Some(Event::Closed(Some(1001)))), "{end:?}");
    let status = s.wait_exit(Duration::from_secs(6)).await.expect("exited");
    assert!(status.success(), "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(5) + SLACK);
}
