//! What the external engine tests share.

use std::{
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use seatkeeper_engine::{
    external::{
        self,
        frame::{self, Incoming, SliceHead},
        External, Limits,
    },
    Engine, EngineSession, EngineSpec, OpenRequest, Slice, SliceSink,
};
use serde_json::{json, Map, Value};
use tokio::{
    io::{AsyncWriteExt, BufReader},
    net::{
        unix::{OwnedReadHalf, OwnedWriteHalf},
        UnixStream,
    },
    time::{sleep, timeout, Instant},
};

/// Generous bound for anything that should happen "soon".
pub(crate) const SOON: Duration = Duration::from_secs(20);

/// A fresh Unix socket path for one test.
pub(crate) fn sock_path(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir()
        .join(format!("sk-{}-{n}-{name}.sock", std::process::id()))
        .to_string_lossy()
        .into_owned()
}

/// Binds an external engine on a fresh Unix socket.
pub(crate) async fn bind_unix(name: &str, limits: Limits) -> Arc<External> {
    let spec = EngineSpec::Unix(sock_path(name));
    external::bind_with(&spec, limits).await.expect("bind")
}

/// Polls `cond` until it holds, or panics after `limit` naming `what`.
pub(crate) async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// A sink that keeps every slice.
#[derive(Default)]
pub(crate) struct Collect(Mutex<Vec<Slice>>);

impl SliceSink for Collect {
    fn push(&self, slice: Slice) {
        self.0.lock().unwrap().push(slice);
    }
}

impl Collect {
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub(crate) fn last(&self) -> Option<Slice> {
        self.0.lock().unwrap().last().cloned()
    }

    pub(crate) fn get(&self, i: usize) -> Slice {
        self.0.lock().unwrap()[i].clone()
    }
}

/// A sink that only counts.
#[derive(Default)]
pub(crate) struct Count(pub AtomicUsize);

impl SliceSink for Count {
    fn push(&self, _slice: Slice) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Opens a session with `config`, slices into `sink`.
pub(crate) async fn open(
    engine: &External,
    id: &str,
    config: Value,
    sink: Arc<dyn SliceSink>,
) -> Result<EngineSession, seatkeeper_engine::EngineError> {
    let config: Map<String, Value> = match config {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    engine
        .open(OpenRequest {
            session_id: id.to_owned(),
            config,
            sink,
            shutdown: tokio_util::sync::CancellationToken::new(),
        })
        .await
}

/// A Python engine process, killed when dropped.
pub(crate) struct PyEngine(pub Child);

impl PyEngine {
    /// Starts `engines/python/<script>` against `addr` (`unix:…`/`tcp:…`).
    pub(crate) fn spawn(script: &str, addr: &str, args: &[&str]) -> Self {
        let path = format!(
            "{}/../../engines/python/{script}",
            env!("CARGO_MANIFEST_DIR")
        );
        let verbose = std::env::var_os("SEATKEEPER_TEST_LOG").is_some();
        let io = || {
            if verbose {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let child = Command::new("python3")
            .arg(path)
            .arg(addr)
            .args(args)
            .stdin(Stdio::null())
            .stdout(io())
            .stderr(io())
            .spawn()
            .expect("python3 must be installed to run the external engine tests");
        Self(child)
    }

    /// The example engine.
    pub(crate) fn sine(addr: &str) -> Self {
        Self::spawn("sine_engine.py", addr, &[])
    }

    /// SIGKILL, like an OOM kill or a crash.
    pub(crate) fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for PyEngine {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `engine` reports ready.
pub(crate) async fn ready(engine: &External) {
    eventually("the engine to be ready", SOON, || engine.is_ready()).await;
}

/// The left channel of a PCM f16 stereo payload.
pub(crate) fn left_channel(payload: &[u8]) -> Vec<f32> {
    payload
        .chunks_exact(4)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect()
}

/// Frequency of a tone estimated by counting zero crossings.
pub(crate) fn tone_hz(samples: &[f32], sample_rate: f32) -> f32 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    crossings as f32 / 2.0 / (samples.len() as f32 / sample_rate)
}

/// A hand-driven engine for the misbehaviour tests.
pub(crate) struct Fake {
    r: BufReader<OwnedReadHalf>,
    pub(crate) w: OwnedWriteHalf,
}

impl Fake {
    /// Connects to a `unix:PATH` address.
    pub(crate) async fn connect(addr: &str) -> Self {
        let path = addr.strip_prefix("unix:").expect("a unix address");
        let (r, w) = UnixStream::connect(path)
            .await
            .expect("connect")
            .into_split();
        Self {
            r: BufReader::new(r),
            w,
        }
    }

    /// Connects and says hello; returns the `welcome`.
    pub(crate) async fn hello(addr: &str, warm: bool) -> (Self, Value) {
        let mut fake = Self::connect(addr).await;
        fake.send(json!({"type": "hello", "name": "fake", "version": "0", "warm": warm}))
            .await;
        let welcome = fake.recv().await.expect("welcome");
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (fake, welcome)
    }

    pub(crate) async fn send(&mut self, msg: Value) {
        self.w.write_all(&frame::encode_json(&msg)).await.unwrap();
    }

    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.w.write_all(bytes).await;
    }

    pub(crate) async fn slice(&mut self, handle: u32, payload: &[u8]) {
        let head = SliceHead {
            handle,
            kind: 9,
            flags: 3,
            timestamp_us: 0,
        };
        self.w
            .write_all(&frame::encode_slice(&head, payload))
            .await
            .unwrap();
    }

    /// The next JSON message; `None` at the end of the stream or on an error.
    pub(crate) async fn recv(&mut self) -> Option<Value> {
        match timeout(SOON, frame::read(&mut self.r, usize::MAX)).await {
            Ok(Ok(Some(Incoming::Json(body)))) => Some(serde_json::from_slice(&body).unwrap()),
            Ok(Ok(Some(Incoming::Slice(..)))) => panic!("the server sent a slice"),
            Ok(_) => None,
            Err(_) => panic!("nothing from the server in {SOON:?}"),
        }
    }

    /// Skips messages until one of type `ty`.
    pub(crate) async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let msg = self
                .recv()
                .await
                .unwrap_or_else(|| panic!("closed before {ty}"));
            if msg["type"] == ty {
                return msg;
            }
        }
    }

    /// Reads until the server closes; returns the `error` codes it sent.
    pub(crate) async fn until_closed(&mut self) -> Vec<String> {
        let mut codes = Vec::new();
        while let Some(msg) = self.recv().await {
            if msg["type"] == "error" {
                codes.push(msg["code"].as_str().unwrap_or_default().to_owned());
            }
        }
        codes
    }

    /// Answers the next `session_start` with `session_ready`; returns it.
    pub(crate) async fn accept_session(&mut self) -> Value {
        let start = self.recv_type("session_start").await;
        self.send(json!({"type": "session_ready", "session_id": start["session_id"], "info": {"name": "fake"}}))
            .await;
        start
    }
}
