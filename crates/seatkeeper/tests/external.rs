//! External engines through the real binary: the Python example engine as a
//! real process, a client over a real socket.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use seatkeeper_testkit::{server::socket_path, Client, Event, Server};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");

struct Engine(Child);

impl Engine {
    fn start(spec: &str) -> Self {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../engines/python/sine_engine.py"
        );
        let child = Command::new("python3")
            .arg(script)
            .arg(spec)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 must be installed");
        Self(child)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Zero crossings per second of the left channel of f16 stereo PCM.
fn crossings_hz(payload: &[u8]) -> f64 {
    let left: Vec<f32> = payload
        .chunks_exact(4)
        .map(|f| half::f16::from_le_bytes([f[0], f[1]]).to_f32())
        .collect();
    let n = left
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    n as f64 / 2.0 / (left.len() as f64 / 48_000.0)
}

async fn tone(c: &mut Client) -> f64 {
    // Skip a few slices so a knob change has landed.
    let mut hz = 0.0;
    for _ in 0..4 {
        let (_, payload) = c.next_payload(Duration::from_secs(5)).await.expect("slice");
        hz = crossings_hz(&payload);
    }
    hz
}

#[tokio::test]
async fn slices_flow_from_a_python_engine_and_knobs_change_the_tone() {
    let path = socket_path("flow");
    let spec = format!("unix:{path}");
    let s = Server::start(BIN, &["--engine", &spec]).await;
    assert_eq!(s.get("/readyz").await.unwrap().0, 503, "no engine yet");
    let _engine = Engine::start(&spec);
    assert!(
        s.wait_ready(Duration::from_secs(20)).await,
        "engine never became ready: {}",
        s.log_text()
    );

    let mut c = Client::connect(s.addr).await;
    let ready = c.hello(json!({"engine": {"freq": 440}})).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["engine"]["kind"], 1);
    let hz = tone(&mut c).await;
    assert!((hz - 440.0).abs() < 20.0, "{hz}");

    c.send(json!({"type": "params", "freq": 880})).await;
    let hz = tone(&mut c).await;
    assert!((hz - 880.0).abs() < 30.0, "{hz}");

    // The control bus: an operator on the admin listener injects a
    // client-shaped message.
    let id = ready["session_id"].as_str().unwrap();
    let (code, body) = s
        .admin_request(
            "POST",
            &format!("/sessions/{id}/cmd"),
            r#"{"type":"params","freq":220}"#,
        )
        .await
        .unwrap();
    assert_eq!(code, 202, "{body}");
    let hz = tone(&mut c).await;
    assert!((hz - 220.0).abs() < 15.0, "{hz}");
}

#[tokio::test]
async fn a_killed_engine_closes_its_sessions_1011_and_frees_the_seat() {
    let path = socket_path("kill");
    let spec = format!("unix:{path}");
    let s = Server::start(BIN, &["--engine", &spec]).await;
    let mut engine = Engine::start(&spec);
    assert!(s.wait_ready(Duration::from_secs(20)).await);
    let mut c = Client::connect(s.addr).await;
    assert_eq!(c.hello(json!({})).await["type"], "ready");
    c.stream_for(Duration::from_millis(500), true).await;

    let _ = engine.0.kill();
    let (errors, end) = c.errors_until_closed(Duration::from_secs(10)).await;
    assert_eq!(
        errors.last().map(String::as_str),
        Some("engine_lost"),
        "an error before the close"
    );
    assert!(matches!(end, Some(Event::Closed(Some(1011)))), "{end:?}");
    assert!(s.wait_released(Duration::from_secs(5)).await.is_some());
    assert_eq!(
        s.get("/readyz").await.unwrap().0,
        503,
        "not ready without an engine"
    );

    // A new engine serves new sessions at once.
    let _engine2 = Engine::start(&spec);
    assert!(s.wait_ready(Duration::from_secs(20)).await);
    let mut c2 = Client::connect(s.addr).await;
    assert_eq!(c2.hello(json!({})).await["type"], "ready");
    let (n, _) = c2.stream_for(Duration::from_secs(1), true).await;
    assert!(n >= 5, "{n}");
}

#[tokio::test]
async fn without_an_engine_a_hello_is_refused_clearly_and_holds_no_seat() {
    let path = socket_path("none");
    let s = Server::start(BIN, &["--engine", &format!("unix:{path}")]).await;
    let mut c = Client::connect(s.addr).await;
    let reply = c.hello(json!({})).await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "engine_not_ready");
    assert!(matches!(
        c.until_closed(Duration::from_secs(5)).await,
        Some(Event::Closed(Some(1011)))
    ));
    assert_eq!(s.sessions().await["seats"]["held"], 0);
}
