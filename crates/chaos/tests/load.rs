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
    // Every session said bye and closed, none just went.
    let byes = s
        .metric("seatkeeper_sessions_ended_total{reason=\"bye\"}")
        .await;
    assert_eq!(byes, Some(50.0), "{}", s.log_text());
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

/// The server pings every second and ends a session whose ping goes
/// unanswered for 5 s: a run past that is only clean if every ping got
/// its pong.
#[tokio::test]
async fn pings_are_answered_so_a_run_past_the_pong_timeout_ends_clean() {
    let s = server(&["--seats", "16", "--engine", "synthetic:10:1024"]).await;
    let r = measure(LoadArgs::new(s.ws_url(), 10, 8.0))
        .await
        .expect("load");
    assert_eq!((r.ready, r.errors), (10, 0), "{}", r.to_json_line());
    assert!(r.ended_early.is_empty(), "{}", r.to_json_line());
    assert_eq!(r.seats_held_after, Some(0), "{}", r.to_json_line());
    assert!(
        !s.log_text().contains("reaped"),
        "a session was reaped:\n{}",
        s.log_text()
    );
}

#[tokio::test]
async fn a_refused_upgrade_and_a_closed_port_are_errors_that_say_why() {
    let s = server(&["--seats", "4", "--engine", "synthetic:10:1024"]).await;
    let wrong_path = s.ws_url().replace("/ws", "/nope");
    let mut args = LoadArgs::new(wrong_path, 3, 1.0);
    args.sessions_url = Some(
        s.ws_url()
            .replace("ws://", "http://")
            .replace("/ws", "/sessions"),
    );
    let r = measure(args).await.expect("load");
    assert_eq!((r.ready, r.errors), (0, 3), "{}", r.to_json_line());
    let why = r.first_error.unwrap_or_default();
    assert!(why.contains("upgrade refused: HTTP/1.1 4"), "{why}");

    let port = seatkeeper_testkit::server::free_port();
    let mut args = LoadArgs::new(format!("ws://127.0.0.1:{port}/ws"), 2, 1.0);
    args.sessions_url = Some(
        s.ws_url()
            .replace("ws://", "http://")
            .replace("/ws", "/sessions"),
    );
    args.bye = false;
    let r = measure(args).await.expect("load");
    assert_eq!((r.ready, r.errors), (0, 2), "{}", r.to_json_line());
    let why = r.first_error.unwrap_or_default();
    assert!(why.starts_with("connect: "), "{why}");
}
