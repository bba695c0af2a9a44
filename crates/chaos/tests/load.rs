//! The load generator against the real server: a small run (the big ones
//! are benchmarks) must deliver on time, with no unexpected end, and give
//! every seat back.

mod common;

use common::server;
use seatkeeper_chaos::load::{measure, LoadArgs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_stream_on_time_and_give_their_seats_back() {
    let s = server(&["--seats", "64", "--engine", "synthetic:10:1024"]).await;
    let r = measure(LoadArgs::new(s.ws_url(), 50, 5.0))
        .await
        .expect("load");
    println!("{}", r.to_json_line());
    assert_eq!(r.ready, 50, "{}", r.to_json_line());
    assert_eq!(r.errors, 0, "{}", r.to_json_line());
    assert!(r.ended_early.is_empty(), "{}", r.to_json_line());
    // 50 sessions × 10 slices/s × 5 s, give or take the ramp.
    assert!(r.slices >= 2000, "{}", r.to_json_line());
    assert_eq!(r.seq_gaps, 0);
    assert_eq!(r.seats_held_after, Some(0), "{}", r.to_json_line());
    let p99 = r.latency.p99_us.expect("latency samples");
    assert!(p99 < 200_000, "p99 {p99} µs");
}

#[tokio::test]
async fn a_full_server_refuses_with_busy() {
    let s = server(&["--seats", "2", "--engine", "synthetic:10:1024"]).await;
    let r = measure(LoadArgs::new(s.ws_url(), 4, 1.5))
        .await
        .expect("load");
    assert_eq!(r.ready, 2, "{}", r.to_json_line());
    assert_eq!(r.refused.get("busy"), Some(&2), "{}", r.to_json_line());
}
