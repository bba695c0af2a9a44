//! A client's flood is the client's fault: it is closed 1008 alone, the
//! other sessions on the same engine stream on, and the engine hears
//! `session_end` for every session that ended.

use std::time::Duration;

use seatkeeper_testkit::{Client, Event, Server};
use serde_json::json;

use crate::{
    fake::{Behaviour, FakeEngine},
    ready, session, socket_path, BIN, SOON,
};

/// Sends `n` params of `bytes` bytes as fast as the socket takes them,
/// ignoring send errors (the server may close the connection mid-flood).
pub(crate) async fn flood(c: &mut Client, n: usize, bytes: usize) {
    let blob = "x".repeat(bytes);
    for i in 0..n {
        let msg = json!({"type": "params", "i": i, "blob": blob}).to_string();
        if c.inner().send_text(&msg).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_at_a_slow_engine_close_only_the_flooders_and_every_session_end_arrives() {
    let path = socket_path("flood");
    let s = Server::start(BIN, &["--engine", &format!("unix:{path}"), "--seats", "4"]).await;
    let engine = FakeEngine::start(
        &path,
        Behaviour {
            read_delay: Some(Duration::from_millis(20)),
            ..Behaviour::default()
        },
    )
    .await;
    ready(&s).await;

    let mut calm = Client::connect(s.addr).await;
    let calm_ready = calm.hello(json!({})).await;
    assert_eq!(calm_ready["type"], "ready", "{calm_ready}");
    let calm_id = calm_ready["session_id"].as_str().unwrap().to_owned();
    let (n, _) = calm.stream_for(Duration::from_millis(500), true).await;
    assert!(n > 0, "the calm session streams before the flood");

    let mut flooders = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(s.addr).await;
        let r = c.hello(json!({})).await;
        assert_eq!(r["type"], "ready", "{r}");
        flooders.push((r["session_id"].as_str().unwrap().to_owned(), c));
    }
    // 300 messages stay under the rate limit (500/s): what ends these
    // sessions is their share of the engine queue, not the rate limit.
    let floods = flooders.into_iter().map(|(id, mut c)| async move {
        flood(&mut c, 300, 32 << 10).await;
        (id, c.errors_until_closed(SOON).await)
    });
    let (ended, (streamed, _)) = tokio::join!(
        futures_util::future::join_all(floods),
        calm.stream_for(Duration::from_secs(4), true)
    );
    for (id, (codes, close)) in &ended {
        assert_eq!(codes, &["params_flood"], "{id}: {}", s.log_text());
        assert!(
            matches!(close, Some(Event::Closed(Some(1008)))),
            "{id}: {close:?}"
        );
    }
    assert!(
        streamed >= 50,
        "the calm session streamed on during the floods: {streamed}"
    );
    let (more, _) = calm.stream_for(Duration::from_secs(1), true).await;
    assert!(more >= 10, "and after them: {more}");
    assert_eq!(session(&s, &calm_id).await["state"], "streaming");

    // Every flooder's session_end reaches the engine (reason names the flood).
    for (id, _) in &ended {
        let end = engine.wait_for("session_end", id).await;
        assert_eq!(end["reason"], "engine:params_flood", "{end}");
    }
    assert!(engine.heard_about("session_end", &calm_id).is_empty());
    assert!(!s.log_text().contains("engine_stalled"), "{}", s.log_text());
}

#[tokio::test]
async fn a_params_flood_at_the_demo_engine_is_1008_every_time() {
    const TRIES: usize = 12;
    let s = Server::start(BIN, &["--engine", "demo", "--seats", "1"]).await;
    let mut codes = Vec::new();
    for i in 0..TRIES {
        let mut c = Client::connect(s.addr).await;
        let r = c.hello(json!({})).await;
        assert_eq!(r["type"], "ready", "try {i}: {r}");
        flood(&mut c, 2_000, 16).await;
        let (errors, close) = c.errors_until_closed(SOON).await;
        assert!(
            matches!(close, Some(Event::Closed(Some(1008)))),
            "try {i}: {errors:?} {close:?}"
        );
        assert!(
            errors
                .iter()
                .all(|e| e == "params_flood" || e == "rate_limited")
                && !errors.is_empty(),
            "try {i}: {errors:?}"
        );
        codes.extend(errors);
        assert!(
            s.wait_released(SOON).await.is_some(),
            "try {i}: the seat is released"
        );
    }
    assert_eq!(codes.len(), TRIES, "{codes:?}");
    eprintln!("demo params flood, {TRIES} tries: {codes:?}");
}
