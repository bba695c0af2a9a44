//! The Python example engine (`engines/python/sine_engine.py`) as a real process.

use std::sync::Arc;

use seatkeeper_engine::{
    external::{self, Limits},
    Control, Engine, EngineError, EngineSpec,
};
use seatkeeper_protocol::slice::{FLAG_DROPPABLE, FLAG_KEYFRAME, KIND_PCM_F16};
use serde_json::{json, Value};
use tokio::time::timeout;

use crate::support::*;

/// Bytes of one 100 ms slice: 4,800 frames × 2 channels × 2 bytes.
const SLICE_BYTES: usize = 4_800 * 2 * 2;

/// The tone of the newest slice, in Hz.
fn newest_tone(sink: &Collect) -> f32 {
    let slice = sink.last().expect("a slice");
    tone_hz(&left_channel(slice.frame.payload()), 48_000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_flow_and_knobs_change_the_tone() {
    let engine = bind_unix("sine", Limits::default()).await;
    assert!(!engine.is_ready(), "ready before any engine connected");
    let _py = PyEngine::sine(engine.local_addr());
    ready(&engine).await;
    let status = engine.status();
    assert_eq!(status.name.as_deref(), Some("sine"));
    assert!(status.warm && status.connected);

    let sink = Arc::new(Collect::default());
    let session = open(&engine, "s-knobs", json!({}), sink.clone())
        .await
        .expect("open");
    let info = &session.info;
    for (key, want) in [
        ("name", json!("sine")),
        ("kind", json!(1)),
        ("format", json!("pcm_f16le")),
        ("sample_rate", json!(48000)),
        ("channels", json!(2)),
        ("slice_ms", json!(100)),
    ] {
        assert_eq!(info[key], want, "ready.engine.{key} in {info}");
    }
    let knobs: Vec<&str> = info["knobs"]
        .as_array()
        .expect("knobs")
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(knobs.contains(&"freq") && knobs.contains(&"gain"), "{info}");
    for k in info["knobs"].as_array().unwrap() {
        for field in ["min", "max", "step", "value"] {
            assert!(k[field].is_number(), "knob {k} lacks {field}");
        }
    }

    eventually("three slices", SOON, || sink.len() >= 3).await;
    for i in 0..3 {
        let s = sink.get(i);
        assert_eq!(s.kind, KIND_PCM_F16);
        assert_eq!(s.flags, FLAG_DROPPABLE | FLAG_KEYFRAME);
        assert_eq!(s.frame.payload_len(), SLICE_BYTES);
        assert_eq!(s.timestamp_us, i as u64 * 100_000);
    }
    let before = newest_tone(&sink);
    assert!((400.0..480.0).contains(&before), "default tone {before} Hz");

    let params = json!({"type": "params", "freq": 880});
    let Value::Object(params) = params else {
        unreachable!()
    };
    session.control(Control::Params(params)).expect("params");
    eventually("the tone to reach 880 Hz", SOON, || {
        (840.0..920.0).contains(&newest_tone(&sink))
    })
    .await;

    // Ending the session tells the engine, which stops streaming it.
    assert_eq!(engine.status().sessions, 1);
    session.end("bye");
    eventually("the session to be gone", SOON, || {
        engine.status().sessions == 0
    })
    .await;
    assert!(engine.is_ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_sessions_multiplex_with_their_own_config() {
    let spec: EngineSpec = "tcp:127.0.0.1:0".parse().unwrap();
    let engine = external::bind(&spec).await.expect("bind");
    assert!(engine.local_addr().starts_with("tcp:127.0.0.1:"));
    assert_ne!(engine.local_addr(), "tcp:127.0.0.1:0");
    let _py = PyEngine::sine(engine.local_addr());
    ready(&engine).await;

    let low = Arc::new(Collect::default());
    let high = Arc::new(Collect::default());
    let _a = open(&engine, "s-low", json!({"freq": 300}), low.clone())
        .await
        .expect("open low");
    let _b = open(&engine, "s-high", json!({"freq": 1200}), high.clone())
        .await
        .expect("open high");
    assert_eq!(engine.status().sessions, 2);
    eventually("slices on both sessions", SOON, || {
        low.len() >= 2 && high.len() >= 2
    })
    .await;
    let (l, h) = (newest_tone(&low), newest_tone(&high));
    assert!((280.0..320.0).contains(&l), "low session at {l} Hz");
    assert!((1150.0..1250.0).contains(&h), "high session at {h} Hz");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_engine_fails_its_sessions_and_a_new_one_serves() {
    let engine = bind_unix("kill", Limits::default()).await;
    let mut py = PyEngine::sine(engine.local_addr());
    ready(&engine).await;
    let sink = Arc::new(Collect::default());
    let mut a = open(&engine, "s-a", json!({}), sink.clone()).await.unwrap();
    let mut b = open(&engine, "s-b", json!({}), sink.clone()).await.unwrap();
    eventually("slices", SOON, || sink.len() >= 2).await;

    py.kill();
    let err = timeout(SOON, a.failed()).await.expect("failed() resolves");
    assert_eq!(err, EngineError::Lost);
    assert_eq!(err.code(), "engine_lost");
    assert_eq!(timeout(SOON, b.failed()).await.unwrap(), EngineError::Lost);
    assert!(!engine.is_ready());
    assert!(!engine.status().connected);
    let refused = open(&engine, "s-c", json!({}), sink.clone()).await;
    assert_eq!(refused.unwrap_err(), EngineError::NotReady);
    // Controls to a dead session fail (once its forwarder has noticed).
    eventually("controls to fail", SOON, || {
        a.control(Control::Keyframe).is_err()
    })
    .await;

    let _py2 = PyEngine::sine(engine.local_addr());
    ready(&engine).await;
    let fresh = Arc::new(Collect::default());
    let _c = open(&engine, "s-c", json!({}), fresh.clone())
        .await
        .expect("a restarted engine serves");
    eventually("slices from the new engine", SOON, || fresh.len() >= 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_engine_is_not_ready_until_it_says_warm() {
    let engine = bind_unix("warm", Limits::default()).await;
    let _py = PyEngine::spawn("sine_engine.py", engine.local_addr(), &["--warmup-s", "3"]);
    eventually("the engine to connect", SOON, || engine.status().connected).await;
    if !engine.status().warm {
        assert!(!engine.is_ready());
        let sink = Arc::new(Collect::default());
        let err = open(&engine, "s-cold", json!({}), sink).await.unwrap_err();
        assert_eq!(err, EngineError::NotReady);
    }
    ready(&engine).await;
    let sink = Arc::new(Collect::default());
    open(&engine, "s-warm", json!({}), sink)
        .await
        .expect("warm engine serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_a_stranger_leaves_the_live_engine_alone() {
    let engine = bind_unix("stranger", Limits::default()).await;
    let _py = PyEngine::sine(engine.local_addr());
    ready(&engine).await;
    let sink = Arc::new(Collect::default());
    let _s = open(&engine, "s-live", json!({}), sink.clone())
        .await
        .unwrap();

    let mut stranger = Fake::connect(engine.local_addr()).await;
    stranger.send_raw(&[0xFF; 64]).await;
    assert_eq!(stranger.until_closed().await, vec!["protocol_error"]);

    // A second well-behaved engine is refused while one is live.
    let mut second = Fake::connect(engine.local_addr()).await;
    second
        .send(json!({"type": "hello", "name": "second", "version": "0", "warm": true}))
        .await;
    assert_eq!(second.until_closed().await, vec!["engine_busy"]);

    let seen = sink.len();
    eventually("slices to keep flowing", SOON, || sink.len() >= seen + 2).await;
    assert_eq!(engine.status().name.as_deref(), Some("sine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_started_first_waits_for_the_server() {
    let path = sock_path("early");
    let addr = format!("unix:{path}");
    let _py = PyEngine::sine(&addr);
    // Let it fail to connect at least once.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let engine = external::bind(&EngineSpec::Unix(path)).await.expect("bind");
    ready(&engine).await;
    let sink = Arc::new(Collect::default());
    let _s = open(&engine, "s-early", json!({}), sink.clone())
        .await
        .unwrap();
    eventually("slices", SOON, || sink.len() >= 1).await;
}
