//! Resume and takeover (contract, "Resume"), against the real binary.

use std::time::{Duration, Instant};

use seatkeeper_testkit::{Client, Event, Server};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");

async fn server(resume_s: &str) -> Server {
    Server::start(
        BIN,
        &[
            "--dead-client-stall-s",
            "3",
            "--watchdog-interval-ms",
            "250",
            "--resume-window-s",
            resume_s,
        ],
    )
    .await
}

async fn first_slice(c: &mut Client) -> seatkeeper_protocol::SliceHeader {
    loop {
        match c.next(Duration::from_secs(5)).await {
            Some(Event::Slice(h, ..)) => return h,
            Some(Event::Text(_)) => continue,
            other => panic!("no slice: {other:?}"),
        }
    }
}

fn token(ready: &Value) -> String {
    ready["resume_token"]
        .as_str()
        .expect("resume_token")
        .to_owned()
}

#[tokio::test]
async fn a_reset_connection_resumes_the_same_session_with_a_keyframe_and_seq_continuing() {
    let s = server("5").await;
    let mut c = Client::connect(s.addr).await;
    let ready = c.hello(json!({})).await;
    assert_eq!(ready["resumed"], false);
    let tok = token(&ready);
    assert!(tok.len() >= 22, "at least 128 bits: {tok}");
    let last = c.take_slices(5).await;
    c.rst();
    let detached = seatkeeper_testkit::wait_until(Duration::from_secs(5), || async {
        (s.sessions().await["sessions"][0]["state"] == "detached").then_some(())
    })
    .await;
    assert!(detached.is_some(), "{}", s.sessions().await);
    assert_eq!(
        s.sessions().await["lockHeld"],
        true,
        "a detached session holds its seat"
    );

    let t0 = Instant::now();
    let mut c2 = Client::connect(s.addr).await;
    let again = c2.hello(json!({"resume": tok})).await;
    assert_eq!(again["type"], "ready");
    assert_eq!(again["resumed"], true);
    assert_eq!(again["session_id"], ready["session_id"]);
    assert_ne!(token(&again), tok, "a fresh token on every ready");
    let h = first_slice(&mut c2).await;
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(h.keyframe(), "keyframe first");
    assert!(h.seq > last, "seq continues: {} after {last}", h.seq);
    let session = &s.sessions().await["sessions"][0];
    assert_eq!(session["resumes"], 1);
    assert_eq!(session["state"], "streaming");
    assert_eq!(s.metric("seatkeeper_resumes_total").await, Some(1.0));
}

#[tokio::test]
async fn a_resume_takes_over_a_frozen_connection_at_once() {
    let s = server("5").await;
    let mut old = Client::connect(s.addr).await;
    let ready = old.hello(json!({})).await;
    old.take_slices(3).await;
    // `old` is now frozen: never read again, socket kept open.
    let t0 = Instant::now();
    let mut c2 = Client::connect(s.addr).await;
    let again = c2.hello(json!({"resume": token(&ready)})).await;
    assert_eq!(again["resumed"], true);
    assert_eq!(again["session_id"], ready["session_id"]);
    first_slice(&mut c2).await;
    assert!(t0.elapsed() < Duration::from_secs(1) + Duration::from_secs(2));
    let sessions = s.sessions().await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(sessions["seats"]["held"], 1);
    assert_eq!(s.metric("seatkeeper_takeovers_total").await, Some(1.0));
    // The old connection is closed 4002 (or reset, if the close could not get out).
    match old.until_closed(Duration::from_secs(5)).await {
        Some(Event::Closed(Some(4002))) | Some(Event::Error(_)) | Some(Event::Closed(None)) => {}
        other => panic!("old connection: {other:?}"),
    }
    // And the new one keeps streaming.
    c2.take_slices(3).await;
}

#[tokio::test]
async fn an_expired_window_releases_the_seat_and_the_token_starts_afresh() {
    let s = server("1").await;
    let mut c = Client::connect(s.addr).await;
    let ready = c.hello(json!({})).await;
    c.take_slices(2).await;
    c.rst();
    let released = s.wait_released(Duration::from_secs(6)).await;
    assert!(released.is_some(), "released after the 1 s window");
    assert_eq!(
        s.metric("seatkeeper_sessions_ended_total{reason=\"expired\"}")
            .await,
        Some(1.0)
    );
    let mut c2 = Client::connect(s.addr).await;
    let fresh = c2.hello(json!({"resume": token(&ready)})).await;
    assert_eq!(fresh["type"], "ready");
    assert_eq!(fresh["resumed"], false);
    assert_ne!(fresh["session_id"], ready["session_id"]);
}

#[tokio::test]
async fn a_rotated_token_is_a_plain_hello_never_a_way_in() {
    let s = server("5").await;
    let mut c = Client::connect(s.addr).await;
    let first = c.hello(json!({})).await;
    c.take_slices(2).await;
    c.rst();
    let mut c2 = Client::connect(s.addr).await;
    let second = c2.hello(json!({"resume": token(&first)})).await;
    assert_eq!(second["resumed"], true);
    // The first token was spent: reusing it is a plain hello, and the seat is taken.
    let mut c3 = Client::connect(s.addr).await;
    let third = c3.hello(json!({"resume": token(&first)})).await;
    assert_eq!(third["type"], "busy", "{third}");
    let mut c4 = Client::connect(s.addr).await;
    let fourth = c4.hello(json!({"resume": "not-a-token"})).await;
    assert_eq!(fourth["type"], "busy");
    c2.take_slices(2).await;
}

#[tokio::test]
async fn bye_and_reap_end_sessions_for_good_at_once() {
    let s = server("30").await;
    // bye
    let mut c = Client::connect(s.addr).await;
    let ready = c.hello(json!({})).await;
    c.take_slices(2).await;
    c.send(json!({"type": "bye"})).await;
    assert!(s.wait_released(Duration::from_secs(2)).await.is_some());
    let mut again = Client::connect(s.addr).await;
    let r = again.hello(json!({"resume": token(&ready)})).await;
    assert_eq!(r["resumed"], false, "bye-ended sessions cannot be resumed");
    again.take_slices(2).await;
    // reap (frozen): released within grace + slack, not after the 30 s window.
    let frozen = again;
    let t0 = Instant::now();
    let released = s.wait_released(Duration::from_secs(12)).await;
    assert!(released.is_some(), "{}", s.log_text());
    assert!(t0.elapsed() < Duration::from_secs(12));
    assert_eq!(
        s.metric("seatkeeper_reaps_total{reason=\"send_stall\"}")
            .await,
        Some(1.0)
    );
    let mut c3 = Client::connect(s.addr).await;
    let r3 = c3.hello(json!({"resume": token(&r)})).await;
    assert_eq!(r3["resumed"], false, "reaped sessions cannot be resumed");
    drop(frozen);
}

#[tokio::test]
async fn a_live_connection_that_is_taken_over_sees_4002() {
    let s = server("5").await;
    let mut old = Client::connect(s.addr).await;
    let ready = old.hello(json!({})).await;
    old.take_slices(2).await;
    let mut c2 = Client::connect(s.addr).await;
    assert_eq!(
        c2.hello(json!({"resume": token(&ready)})).await["resumed"],
        true
    );
    // `old` keeps reading, so the close handshake completes.
    let end = old.until_closed(Duration::from_secs(5)).await;
    assert!(matches!(end, Some(Event::Closed(Some(4002)))), "{end:?}");
    c2.take_slices(2).await;
}

#[tokio::test]
async fn a_fin_without_a_close_frame_detaches_and_resumes() {
    let s = server("5").await;
    let mut c = Client::connect(s.addr).await;
    let ready = c.hello(json!({})).await;
    c.take_slices(2).await;
    let _half_closed = c.fin().await;
    let detached = seatkeeper_testkit::wait_until(Duration::from_secs(5), || async {
        (s.sessions().await["sessions"][0]["state"] == "detached").then_some(())
    })
    .await;
    assert!(detached.is_some(), "{}", s.sessions().await);
    let mut c2 = Client::connect(s.addr).await;
    let again = c2.hello(json!({"resume": token(&ready)})).await;
    assert_eq!(again["resumed"], true);
    assert_eq!(again["session_id"], ready["session_id"]);
}
