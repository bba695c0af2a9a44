//! A test engine in Rust: says hello, accepts every session, streams a slice
//! every 20 ms to each live session, records every JSON message it hears,
//! and can read its socket slowly (a model busy on a GPU).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use seatkeeper_engine::external::frame::{self, Incoming, SliceHead};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncWriteExt, BufReader},
    net::{unix::OwnedWriteHalf, UnixStream},
    sync::Mutex as AsyncMutex,
    task::JoinHandle,
    time::{sleep, Instant},
};

/// How the fake engine behaves.
#[derive(Clone, Default)]
pub(crate) struct Behaviour {
    /// Sleep after reading each frame (a slow reader).
    pub(crate) read_delay: Option<Duration>,
    /// `session_ready.info`; `{"name":"fake","knobs":[]}` when `None`.
    pub(crate) info: Option<Value>,
    /// A `stats` message sent with each session's first slice.
    pub(crate) stats: Option<Value>,
}

/// A running fake engine; stops when dropped.
pub(crate) struct FakeEngine {
    heard: Arc<Mutex<Vec<Value>>>,
    task: JoinHandle<()>,
}

type Writer = Arc<AsyncMutex<OwnedWriteHalf>>;

impl FakeEngine {
    /// Connects to the server's `unix:PATH` engine socket (retrying until it exists).
    pub(crate) async fn start(path: &str, how: Behaviour) -> Self {
        let deadline = Instant::now() + crate::SOON;
        let stream = loop {
            match UnixStream::connect(path).await {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < deadline, "engine socket {path}: {e}");
                    sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let (r, w) = stream.into_split();
        let w: Writer = Arc::new(AsyncMutex::new(w));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let hello = json!({"type": "hello", "name": "fake", "version": "1", "warm": true});
        w.lock()
            .await
            .write_all(&frame::encode_json(&hello))
            .await
            .unwrap();
        let task = tokio::spawn(serve(BufReader::new(r), w, heard.clone(), how));
        Self { heard, task }
    }

    /// Every JSON message heard so far.
    pub(crate) fn heard(&self) -> Vec<Value> {
        self.heard.lock().unwrap().clone()
    }

    /// Messages of type `ty` about `session_id`.
    pub(crate) fn heard_about(&self, ty: &str, session_id: &str) -> Vec<Value> {
        self.heard()
            .into_iter()
            .filter(|m| m["type"] == ty && m["session_id"] == session_id)
            .collect()
    }

    /// Waits until a message of type `ty` about `session_id` was heard.
    pub(crate) async fn wait_for(&self, ty: &str, session_id: &str) -> Value {
        let deadline = Instant::now() + crate::SOON;
        loop {
            if let Some(m) = self.heard_about(ty, session_id).pop() {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no {ty} for {session_id}; heard {:?}",
                self.heard()
                    .iter()
                    .map(|m| m["type"].clone())
                    .collect::<Vec<_>>()
            );
            sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut r: BufReader<tokio::net::unix::OwnedReadHalf>,
    w: Writer,
    heard: Arc<Mutex<Vec<Value>>>,
    how: Behaviour,
) {
    let mut streams: HashMap<String, JoinHandle<()>> = HashMap::new();
    while let Ok(Some(Incoming::Json(body))) = frame::read(&mut r, usize::MAX).await {
        let msg: Value = serde_json::from_slice(&body).unwrap();
        heard.lock().unwrap().push(msg.clone());
        let id = msg["session_id"].as_str().unwrap_or_default().to_owned();
        match msg["type"].as_str() {
            Some("session_start") => {
                let info = how
                    .info
                    .clone()
                    .unwrap_or_else(|| json!({"name": "fake", "knobs": []}));
                let ready = json!({"type": "session_ready", "session_id": id, "info": info});
                let _ = w.lock().await.write_all(&frame::encode_json(&ready)).await;
                let handle = msg["handle"].as_u64().unwrap() as u32;
                let stats = how.stats.clone().map(|mut s| {
                    s["type"] = json!("stats");
                    s["session_id"] = json!(id);
                    s
                });
                streams.insert(id, tokio::spawn(stream(w.clone(), handle, stats)));
            }
            Some("session_end") => {
                if let Some(t) = streams.remove(&id) {
                    t.abort();
                }
            }
            _ => {}
        }
        if let Some(d) = how.read_delay {
            sleep(d).await;
        }
    }
    for t in streams.into_values() {
        t.abort();
    }
}

async fn stream(w: Writer, handle: u32, stats: Option<Value>) {
    if let Some(s) = stats {
        let _ = w.lock().await.write_all(&frame::encode_json(&s)).await;
    }
    for n in 0u64.. {
        let head = SliceHead {
            handle,
            kind: 9,
            flags: 3,
            timestamp_us: n * 20_000,
        };
        if w.lock()
            .await
            .write_all(&frame::encode_slice(&head, &[7u8; 256]))
            .await
            .is_err()
        {
            return;
        }
        sleep(Duration::from_millis(20)).await;
    }
}
