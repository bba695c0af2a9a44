//! What an engine hears about its session's life, and what the server shows
//! of the engine: `session_detached` / `session_resumed` / `progress`,
//! per-session `stats`, `welcome.max_sessions`, the knob schema check, and
//! the built-in engines producing nothing while nobody listens.

use std::time::Duration;

use seatkeeper_testkit::{wait_until, Client, Event, Server};
use serde_json::{json, Value};

use crate::{
    fake::{Behaviour, FakeEngine},
    ready, session, socket_path, BIN, SOON,
};

/// Reads `n` slices, acking each with a buffer depth.
async fn ack_slices(c: &mut Client, n: usize, buffer_ms: f64) -> u64 {
    let mut last = 0;
    while n as u64 > last {
        match c.next(SOON).await {
            Some(Event::Slice(h, ..)) => {
                c.send(json!({"type": "ack", "seq": h.seq, "buffer_ms": buffer_ms}))
                    .await;
                last = h.seq;
            }
            Some(Event::Text(_)) => {}
            other => panic!("stream ended: {other:?}"),
        }
    }
    last
}

async fn wait_state(s: &Server, id: &str, state: &str) {
    let ok = wait_until(SOON, || async {
        (session(s, id).await["state"] == state).then_some(())
    })
    .await;
    assert!(ok.is_some(), "never {state}: {}", session(s, id).await);
}

#[tokio::test]
async fn an_engine_hears_detached_on_a_reset_resumed_on_resume_and_the_clients_progress() {
    let path = socket_path("life");
    let s = Server::start(
        BIN,
        &[
            "--engine",
            &format!("unix:{path}"),
            "--seats",
            "1",
            "--resume-window-s",
            "5",
        ],
    )
    .await;
    let engine = FakeEngine::start(
        &path,
        Behaviour {
            stats: Some(json!({"gpu_util": 0.5, "model": "m", "Bad-Name": 1})),
            ..Behaviour::default()
        },
    )
    .await;
    ready(&s).await;
    // `/readyz` turns 200 once the server sent `welcome`, which the engine
    // may not have recorded yet: wait for it.
    let welcome = wait_until(SOON, || async { engine.heard().into_iter().next() })
        .await
        .expect("the engine heard no welcome");
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(
        welcome["max_sessions"], 1,
        "min(--seats, engine limit): {welcome}"
    );

    let mut c = Client::connect(s.addr).await;
    let r = c.hello(json!({})).await;
    let id = r["session_id"].as_str().unwrap().to_owned();
    let token = r["resume_token"].as_str().unwrap().to_owned();
    let acked = ack_slices(&mut c, 10, 120.0).await;

    let progress = wait_until(SOON, || async {
        engine
            .heard_about("progress", &id)
            .into_iter()
            .find(|p| p["acked_seq"].as_u64() >= Some(5))
    })
    .await
    .unwrap_or_else(|| panic!("no progress: {:?}", engine.heard_about("progress", &id)));
    assert_eq!(progress["buffer_ms"], 120.0, "{progress}");
    assert!(progress["sent_seq"].as_u64() >= progress["acked_seq"].as_u64());
    assert!(progress["acked_seq"].as_u64() <= Some(acked));

    // The engine's stats for this session, in /sessions/{id} and /metrics.
    let shown = session(&s, &id).await;
    assert_eq!(shown["engine_stats"]["gpu_util"], 0.5, "{shown}");
    assert_eq!(shown["engine_stats"]["model"], "m", "{shown}");
    let (_, metrics) = s.get("/metrics").await.unwrap();
    assert!(
        metrics.contains("seatkeeper_engine_stat{name=\"gpu_util\"} 0.5"),
        "{metrics}"
    );
    assert!(!metrics.contains("Bad-Name") && !metrics.contains("name=\"model\""));

    c.rst();
    let detached = engine.wait_for("session_detached", &id).await;
    assert_eq!(detached["resume_window_ms"], 5000, "{detached}");
    assert!(engine.heard_about("session_resumed", &id).is_empty());

    let mut again = Client::connect(s.addr).await;
    let r = again.hello(json!({"resume": token})).await;
    assert_eq!(r["resumed"], true, "{r}");
    engine.wait_for("session_resumed", &id).await;
    again.take_slices(3).await;
    // session_resumed comes before the keyframe request that follows it.
    let heard: Vec<Value> = engine
        .heard()
        .into_iter()
        .filter(|m| m["session_id"] == id.as_str())
        .collect();
    let at = |ty: &str| heard.iter().rposition(|m| m["type"] == ty).unwrap();
    assert!(at("session_detached") < at("session_resumed"));
    assert!(at("session_resumed") < at("keyframe"), "{heard:?}");
    assert!(engine.heard_about("session_end", &id).is_empty());
}

#[tokio::test]
async fn a_bad_knob_schema_fails_the_session_clearly_and_holds_no_seat() {
    let path = socket_path("knobs");
    let s = Server::start(BIN, &["--engine", &format!("unix:{path}")]).await;
    let engine = FakeEngine::start(
        &path,
        Behaviour {
            info: Some(json!({"name": "fake", "knobs": [{"name": "x", "kind": "dial"}]})),
            ..Behaviour::default()
        },
    )
    .await;
    ready(&s).await;
    let mut c = Client::connect(s.addr).await;
    let reply = c.hello(json!({})).await;
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "engine_error");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains("bad_knobs") && message.contains("unknown kind"),
        "{message}"
    );
    let (_, close) = c.errors_until_closed(SOON).await;
    assert!(
        matches!(close, Some(Event::Closed(Some(1011)))),
        "{close:?}"
    );
    let start = engine
        .heard()
        .into_iter()
        .find(|m| m["type"] == "session_start")
        .unwrap();
    let end = engine
        .wait_for("session_end", start["session_id"].as_str().unwrap())
        .await;
    assert_eq!(end["reason"], "bad_knobs");
    assert_eq!(s.sessions().await["seats"]["held"], 0);
}

#[tokio::test]
async fn the_demo_engine_produces_nothing_while_detached() {
    nothing_while_detached("demo").await;
}

#[tokio::test]
async fn the_synthetic_engine_produces_nothing_while_detached() {
    nothing_while_detached("synthetic:200:64").await;
}

async fn nothing_while_detached(spec: &str) {
    let s = Server::start(BIN, &["--engine", spec, "--resume-window-s", "20"]).await;
    let mut c = Client::connect(s.addr).await;
    let r = c.hello(json!({})).await;
    let id = r["session_id"].as_str().unwrap().to_owned();
    let token = r["resume_token"].as_str().unwrap().to_owned();
    c.take_slices(5).await;
    c.rst();
    wait_state(&s, &id, "detached").await;
    // Let the engine hear of it before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let produced = |v: Value| v["slices_produced"].as_u64().expect("slices_produced");
    let before = produced(session(&s, &id).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = produced(session(&s, &id).await);
    assert_eq!(before, after, "{spec}: slices produced while detached");

    let mut again = Client::connect(s.addr).await;
    assert_eq!(again.hello(json!({"resume": token})).await["resumed"], true);
    again.take_slices(3).await;
    assert!(
        produced(session(&s, &id).await) > after,
        "production resumes"
    );
}
