//! Engines that misbehave: stop reading, send garbage, refuse, answer late.

use std::{sync::Arc, time::Duration};

use seatkeeper_engine::{
    external::{self, Limits},
    Control, Engine, EngineError, EngineSpec,
};
use serde_json::{json, Map, Value};
use tokio::time::{timeout, Instant};

use crate::support::*;

fn knobs(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// Sends big `params` on `session` until it fails; returns the error.
async fn flood(session: &mut seatkeeper_engine::EngineSession) -> EngineError {
    let big = knobs(json!({"type": "params", "blob": "x".repeat(64 << 10)}));
    let deadline = Instant::now() + SOON;
    let mut sent = 0usize;
    loop {
        if let Err(e) = session.control(Control::Params(big.clone())) {
            return e;
        }
        sent += 1;
        // `failed` is cancel-safe: polling it briefly leaves it armed.
        if let Ok(e) = timeout(Duration::from_millis(2), session.failed()).await {
            return e;
        }
        assert!(Instant::now() < deadline, "no failure after {sent} params");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_fails_its_session_alone_and_a_silent_engine_stalls_the_rest() {
    let limits = Limits {
        session_queue_frames: 16,
        max_sessions: 4,
        write_stall_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let engine = bind_unix("stall", limits).await;
    let (mut fake, _) = Fake::hello(engine.local_addr(), true).await;
    ready(&engine).await;
    let (opened, _) = tokio::join!(
        open(&engine, "s-flood", json!({}), Arc::new(Collect::default())),
        fake.accept_session()
    );
    let mut flooder = opened.expect("open");
    let (opened, _) = tokio::join!(
        open(&engine, "s-calm", json!({}), Arc::new(Collect::default())),
        fake.accept_session()
    );
    let mut calm = opened.expect("open");
    // From here on the fake engine never reads its socket again.

    let err = flood(&mut flooder).await;
    assert!(matches!(err, EngineError::Flooded(_)), "{err:?}");
    assert_eq!(err.code(), "params_flood");
    // The other session is untouched by the flood: its params still fit.
    calm.control(Control::Params(knobs(json!({"type": "params", "x": 1}))))
        .expect("a calm session's params fit in its own share");
    assert!(
        timeout(Duration::from_millis(500), calm.failed())
            .await
            .is_err(),
        "a bystander must not fail because of a flood"
    );

    // The engine really stopped reading: the writer gives up on it and the
    // remaining session fails with engine_stalled.
    let err = timeout(SOON, calm.failed()).await.expect("a stall");
    assert_eq!(err, EngineError::Stalled);
    assert_eq!(err.code(), "engine_stalled");
    eventually("the stalled engine to be dropped", SOON, || {
        !engine.status().connected
    })
    .await;
    assert!(!engine.is_ready());
    drop(fake);

    let (mut good, _) = Fake::hello(engine.local_addr(), true).await;
    ready(&engine).await;
    let fresh = Arc::new(Collect::default());
    let (opened, start) = tokio::join!(
        open(&engine, "s-after", json!({}), fresh.clone()),
        good.accept_session()
    );
    let _s = opened.expect("a new engine serves after a stalled one");
    good.slice(start["handle"].as_u64().unwrap() as u32, b"hi")
        .await;
    eventually("a slice from the new engine", SOON, || fresh.len() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_end_reaches_the_engine_for_a_session_that_flooded_its_share() {
    let limits = Limits {
        session_queue_frames: 8,
        ..Limits::default()
    };
    let engine = bind_unix("end-after-flood", limits).await;
    let (mut fake, _) = Fake::hello(engine.local_addr(), true).await;
    ready(&engine).await;
    let mut sessions = Vec::new();
    for i in 0..3 {
        let id = format!("s-{i}");
        let (opened, _) = tokio::join!(
            open(&engine, &id, json!({}), Arc::new(Collect::default())),
            fake.accept_session()
        );
        sessions.push(opened.expect("open"));
    }
    // While the engine does not read, every session floods its share full.
    for s in &mut sessions {
        let err = flood(s).await;
        assert_eq!(err.code(), "params_flood", "{err:?}");
    }
    for (i, s) in sessions.into_iter().enumerate() {
        s.end(&format!("engine:params_flood:{i}"));
    }
    // Now the engine reads again: it hears every session_end.
    let mut ended = Vec::new();
    while ended.len() < 3 {
        let msg = fake.recv().await.expect("the connection stays up");
        if msg["type"] == "session_end" {
            ended.push(msg["session_id"].as_str().unwrap().to_owned());
        }
    }
    ended.sort();
    assert_eq!(ended, ["s-0", "s-1", "s-2"]);
    assert!(engine.status().connected);
}

/// One garbage input sent by an engine after its hello, with a live session.
async fn garbage_after_hello(name: &str, garbage: &[u8]) {
    let engine = bind_unix(name, Limits::default()).await;
    let (mut fake, _) = Fake::hello(engine.local_addr(), true).await;
    ready(&engine).await;
    let sink = Arc::new(Collect::default());
    let (opened, _) = tokio::join!(
        open(&engine, "s-victim", json!({}), sink),
        fake.accept_session()
    );
    let mut session = opened.expect("open");
    fake.send_raw(garbage).await;
    assert_eq!(
        fake.until_closed().await,
        vec!["protocol_error"],
        "{name}: the server says why it drops the engine"
    );
    let err = timeout(SOON, session.failed()).await.expect("failed");
    assert_eq!(err, EngineError::Lost, "{name}");
    assert!(!engine.is_ready(), "{name}");

    // A proper engine serves at once.
    let (mut good, _) = Fake::hello(engine.local_addr(), true).await;
    ready(&engine).await;
    let (opened, _) = tokio::join!(
        open(&engine, "s-next", json!({}), Arc::new(Collect::default())),
        good.accept_session()
    );
    opened.unwrap_or_else(|e| panic!("{name}: no session after garbage: {e}"));
}

#[tokio::test]
async fn garbage_frames_drop_the_engine_connection() {
    let json_frame = |body: &[u8]| {
        let mut f = ((body.len() + 2) as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&[1, 1]);
        f.extend_from_slice(body);
        f
    };
    let mut bad_version = json_frame(b"{\"type\":\"warm\",\"warm\":true}");
    bad_version[4] = 2;
    let unknown_handle = external::frame::encode_slice(
        &external::frame::SliceHead {
            handle: 999,
            kind: 1,
            flags: 0,
            timestamp_us: 0,
        },
        b"x",
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random", pseudo_random(4096)),
        ("version", bad_version),
        ("oversize", vec![0xFF, 0xFF, 0xFF, 0x7F, 1, 1]),
        ("short", vec![1, 0, 0, 0, 1, 1]),
        ("type", vec![2, 0, 0, 0, 1, 77]),
        ("json", json_frame(b"{not json")),
        ("not-an-object", json_frame(b"[1,2]")),
        (
            "hello-twice",
            json_frame(b"{\"type\":\"hello\",\"name\":\"x\",\"warm\":true}"),
        ),
        (
            "unknown-session",
            json_frame(b"{\"type\":\"session_ready\",\"session_id\":\"nope\"}"),
        ),
        ("unknown-handle", unknown_handle.to_vec()),
    ];
    for (name, garbage) in cases {
        garbage_after_hello(name, &garbage).await;
    }
}

#[tokio::test]
async fn garbage_before_hello_is_refused() {
    let limits = Limits {
        hello_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let engine = bind_unix("prehello", limits).await;
    for garbage in [
        pseudo_random(64),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        external::frame::encode_json(&json!({"type": "warm", "warm": true})).to_vec(),
        external::frame::encode_json(&json!({"type": "hello", "name": "no-warm-field"})).to_vec(),
    ] {
        let mut fake = Fake::connect(engine.local_addr()).await;
        fake.send_raw(&garbage).await;
        let codes = fake.until_closed().await;
        assert_eq!(codes.len(), 1, "{codes:?}");
        assert!(
            codes[0] == "protocol_error" || codes[0] == "hello_timeout",
            "{codes:?}"
        );
    }
    let (_good, welcome) = Fake::hello(engine.local_addr(), true).await;
    assert_eq!(welcome["protocol"], 1);
    assert_eq!(welcome["max_frame_bytes"], 16 << 20);
    ready(&engine).await;
}

#[tokio::test]
async fn refusals_errors_and_timeouts_reach_the_opener() {
    let limits = Limits {
        open_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let engine = bind_unix("refuse", limits).await;
    let (mut fake, _) = Fake::hello(engine.local_addr(), true).await;
    ready(&engine).await;
    let sink = || Arc::new(Collect::default());

    // session_error → Failed with the engine's words.
    let (opened, _) = tokio::join!(open(&engine, "s-no", json!({}), sink()), async {
        let start = fake.recv_type("session_start").await;
        fake.send(json!({"type": "session_error", "session_id": start["session_id"], "code": "no_gpu", "message": "out of memory"}))
            .await;
    });
    let err = opened.unwrap_err();
    assert_eq!(err, EngineError::Failed("no_gpu: out of memory".into()));
    assert_eq!(err.code(), "engine_error");

    // No answer → Failed after open_timeout, and the engine hears session_end.
    let err = open(&engine, "s-slow", json!({}), sink())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Failed(_)), "{err:?}");
    let end = fake.recv_type("session_end").await;
    assert_eq!(end["session_id"], "s-slow");
    assert_eq!(end["reason"], "open_timeout");
    // A late answer for it is ignored, not a protocol error.
    fake.send(json!({"type": "session_ready", "session_id": "s-slow"}))
        .await;

    // An engine error on a live session fails it.
    let (opened, _) = tokio::join!(
        open(&engine, "s-err", json!({}), sink()),
        fake.accept_session()
    );
    let mut session = opened.unwrap();
    fake.send(
        json!({"type": "error", "session_id": "s-err", "code": "nan", "message": "model diverged"}),
    )
    .await;
    let err = timeout(SOON, session.failed()).await.unwrap();
    assert_eq!(err, EngineError::Failed("nan: model diverged".into()));

    // Engine-wide errors, stats and unknown messages keep the connection.
    fake.send(json!({"type": "error", "code": "hiccup", "message": "retrying"}))
        .await;
    fake.send(json!({"type": "stats", "gpu_util": 0.5})).await;
    fake.send(json!({"type": "telepathy"})).await;
    eventually("stats", SOON, || engine.status().stats.is_some()).await;
    assert_eq!(engine.status().stats.unwrap()["gpu_util"], 0.5);
    assert!(engine.is_ready());
}

#[tokio::test]
async fn dropping_a_session_or_its_open_tells_the_engine() {
    let engine = bind_unix("drops", Limits::default()).await;
    let (mut fake, _) = Fake::hello(engine.local_addr(), true).await;
    ready(&engine).await;

    // A plain drop means `closed`; late slices for it are discarded quietly.
    let (opened, start) = tokio::join!(
        open(&engine, "s-drop", json!({}), Arc::new(Collect::default())),
        fake.accept_session()
    );
    drop(opened.unwrap());
    let end = fake.recv_type("session_end").await;
    assert_eq!(
        (end["session_id"].as_str(), end["reason"].as_str()),
        (Some("s-drop"), Some("closed"))
    );
    fake.slice(start["handle"].as_u64().unwrap() as u32, b"late")
        .await;
    eventually("the late slice to be discarded", SOON, || {
        engine.status().discarded == 1
    })
    .await;
    assert!(engine.status().connected);

    // `end(reason)` carries the reason; params and keyframes arrive in order.
    let (opened, _) = tokio::join!(
        open(
            &engine,
            "s-end",
            json!({"freq": 1}),
            Arc::new(Collect::default())
        ),
        fake.accept_session()
    );
    let session = opened.unwrap();
    session
        .control(Control::Params(knobs(
            json!({"type": "params", "gain": 0.5}),
        )))
        .unwrap();
    session.control(Control::Keyframe).unwrap();
    session.end("reaped:send_stall");
    let params = fake.recv().await.unwrap();
    assert_eq!(
        params,
        json!({"type": "params", "session_id": "s-end", "params": {"gain": 0.5}})
    );
    assert_eq!(
        fake.recv().await.unwrap(),
        json!({"type": "keyframe", "session_id": "s-end"})
    );
    assert_eq!(
        fake.recv().await.unwrap(),
        json!({"type": "session_end", "session_id": "s-end", "reason": "reaped:send_stall"})
    );

    // An open abandoned by its caller is ended too.
    let pending = tokio::spawn({
        let engine = engine.clone();
        async move { open(&engine, "s-gone", json!({}), Arc::new(Collect::default())).await }
    });
    fake.recv_type("session_start").await;
    pending.abort();
    let end = fake.recv_type("session_end").await;
    assert_eq!(
        (end["session_id"].as_str(), end["reason"].as_str()),
        (Some("s-gone"), Some("closed"))
    );
    eventually("no sessions left", SOON, || engine.status().sessions == 0).await;
}

#[tokio::test]
async fn an_engine_may_take_fewer_sessions() {
    let engine = bind_unix("capacity", Limits::default()).await;
    let path = engine.local_addr().to_owned();
    let mut fake = Fake::connect(&path).await;
    fake.send(json!({"type": "hello", "name": "tiny", "warm": true, "max_sessions": 1}))
        .await;
    assert_eq!(fake.recv().await.unwrap()["max_sessions"], 1);
    ready(&engine).await;
    let (opened, _) = tokio::join!(
        open(&engine, "s-1", json!({}), Arc::new(Collect::default())),
        fake.accept_session()
    );
    let one = opened.unwrap();
    assert!(!engine.is_ready(), "full engines are not ready");
    let err = open(&engine, "s-2", json!({}), Arc::new(Collect::default()))
        .await
        .unwrap_err();
    assert_eq!(err, EngineError::NotReady);
    drop(one);
    eventually("room again", SOON, || engine.is_ready()).await;
}

#[tokio::test]
async fn unix_socket_paths_are_handled_with_care() {
    // A stale socket file (nobody listening) is replaced.
    let path = sock_path("stale");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let spec = EngineSpec::Unix(path.clone());
    let engine = external::bind(&spec).await.expect("stale socket replaced");
    // A live one is not.
    let err = external::bind(&spec).await.err().expect("in use");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    drop(engine);
    assert!(
        !std::path::Path::new(&path).exists(),
        "socket removed on drop"
    );
    // A regular file is never removed.
    std::fs::write(&path, b"precious").unwrap();
    let err = external::bind(&spec).await.err().expect("not a socket");
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    std::fs::remove_file(&path).unwrap();
    // Built-in specs are not addresses.
    assert!(external::bind(&EngineSpec::Demo).await.is_err());
}

/// Deterministic noise (xorshift), so a failure replays.
fn pseudo_random(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
