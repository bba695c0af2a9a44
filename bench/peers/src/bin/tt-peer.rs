//! The Rust baseline: a plain tokio-tungstenite server speaking the
//! contract's minimal subset (hello → ready or busy, paced binary slices
//! with the 20-byte header under an ack window, acks, bye, `/sessions`),
//! with no reaper and no keepalive — what a team gets by writing the
//! obvious server. A frozen client blocks its writer forever and the seat
//! stays taken until TCP itself gives up.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use seatkeeper_bench::PeerArgs;
use seatkeeper_protocol::{slice::SliceHeader, SLICE_HEADER_LEN};
use serde_json::{json, Value};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    time::{sleep_until, Instant},
};
use tokio_tungstenite::{accept_async, tungstenite::Message};

/// Plain tokio-tungstenite peer for the benchmark suite.
#[derive(Debug, Parser)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:1319")]
    listen: SocketAddr,
    #[command(flatten)]
    peer: PeerArgs,
}

struct State {
    args: Args,
    rate: f64,
    bytes: usize,
    pattern: Vec<u8>,
    held: AtomicU64,
    next_id: AtomicU64,
    sessions: Mutex<BTreeMap<String, u64>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = if args.peer.engine == "demo" {
        "synthetic:10:19200".to_owned()
    } else {
        args.peer.engine.clone()
    };
    let parts: Vec<&str> = spec.split(':').collect();
    anyhow::ensure!(
        parts.len() == 3 && parts[0] == "synthetic",
        "engine must be synthetic:RATE:BYTES"
    );
    let rate: f64 = parts[1].parse()?;
    let bytes: usize = parts[2].parse()?;
    let listener = TcpListener::bind(args.listen).await?;
    let state = Arc::new(State {
        args,
        rate,
        bytes,
        pattern: (0..bytes + 256).map(|i| i as u8).collect(),
        held: AtomicU64::new(0),
        next_id: AtomicU64::new(1),
        sessions: Mutex::new(BTreeMap::new()),
    });
    loop {
        let (s, _) = listener.accept().await?;
        tokio::spawn(connection(Arc::clone(&state), s));
    }
}

async fn connection(state: Arc<State>, mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    // Route by peeking at the request line; the upgrade reads it again.
    let mut buf = [0u8; 64];
    let n = match tokio::time::timeout(Duration::from_secs(10), s.peek(&mut buf)).await {
        Ok(Ok(n)) => n,
        _ => return,
    };
    if buf[..n].starts_with(b"GET /sessions") {
        let body = sessions_json(&state).to_string();
        // Read the request so closing does not reset it.
        let mut req = [0u8; 4096];
        let _ = tokio::io::AsyncReadExt::read(&mut s, &mut req).await;
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(resp.as_bytes()).await;
        let _ = s.shutdown().await;
        return;
    }
    let Ok(ws) = accept_async(s).await else {
        return;
    };
    session(state, ws).await;
}

fn sessions_json(state: &State) -> Value {
    let ids: Vec<Value> = state
        .sessions
        .lock()
        .map(|m| {
            m.keys()
                .map(|id| json!({"id": id, "state": "streaming"}))
                .collect()
        })
        .unwrap_or_default();
    let held = state.held.load(Ordering::SeqCst);
    json!({"lockHeld": held > 0, "seats": {"total": state.args.peer.seats, "held": held}, "sessions": ids})
}

async fn session(state: Arc<State>, ws: tokio_tungstenite::WebSocketStream<TcpStream>) {
    let (mut sink, mut stream) = ws.split();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    let Ok(Some(Ok(Message::Text(t)))) = first else {
        let _ = sink.close().await;
        return;
    };
    let hello: Value = serde_json::from_str(&t).unwrap_or_default();
    if hello["type"] != "hello" {
        return;
    }
    let taken = state
        .held
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
            (h < state.args.peer.seats).then_some(h + 1)
        })
        .is_ok();
    if !taken {
        let _ = sink
            .send(Message::text(
                json!({"type": "busy", "retry_after_s": 2.0}).to_string(),
            ))
            .await;
        let _ = sink
            .send(Message::Close(Some(
                tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 1013.into(),
                    reason: "".into(),
                },
            )))
            .await;
        return;
    }
    let id = format!("tt{}", state.next_id.fetch_add(1, Ordering::SeqCst));
    if let Ok(mut m) = state.sessions.lock() {
        m.insert(id.clone(), 0);
    }
    let ready = json!({"type": "ready", "session_id": id, "resume_token": "", "resumed": false,
        "window": {"slices": state.args.peer.window_slices, "bytes": state.args.peer.window_bytes},
        "engine": {"name": "synthetic", "rate_hz": state.rate, "bytes": state.bytes}});
    let acked = Arc::new(AtomicU64::new(0));
    let reader = {
        let acked = Arc::clone(&acked);
        async move {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    Message::Text(t) => {
                        let v: Value = serde_json::from_str(&t).unwrap_or_default();
                        match v["type"].as_str() {
                            Some("ack") => {
                                acked.fetch_max(v["seq"].as_u64().unwrap_or(0), Ordering::SeqCst);
                            }
                            Some("bye") => return,
                            _ => {}
                        }
                    }
                    Message::Close(_) => return,
                    _ => {}
                }
            }
        }
    };
    let writer = async {
        if sink.send(Message::text(ready.to_string())).await.is_err() {
            return;
        }
        let start = Instant::now();
        let mut produced: u64 = 0;
        let mut seq: u64 = 0;
        let mut sizes = std::collections::VecDeque::new();
        let max_batch = ((0.25 * state.rate).ceil() as u64).max(1);
        loop {
            let due = (start.elapsed().as_secs_f64() * state.rate).floor() as u64 + 1;
            if due - produced > max_batch {
                produced = due - max_batch;
            }
            while produced < due {
                let ts = (produced as f64 * 1e6 / state.rate) as u64;
                let n = produced;
                produced += 1;
                let ack = acked.load(Ordering::SeqCst);
                while sizes.front().is_some_and(|(s, _)| *s <= ack) {
                    sizes.pop_front();
                }
                let in_bytes: u64 = sizes.iter().map(|(_, b)| *b).sum();
                if sizes.len() as u64 >= state.args.peer.window_slices
                    || in_bytes + state.bytes as u64 > state.args.peer.window_bytes
                {
                    continue; // dropped: the window is full
                }
                seq += 1;
                let start = (n % 256) as usize;
                let mut frame = BytesMut::with_capacity(SLICE_HEADER_LEN + state.bytes);
                frame.put_bytes(0, SLICE_HEADER_LEN);
                frame.extend_from_slice(&state.pattern[start..start + state.bytes]);
                SliceHeader {
                    flags: 3,
                    kind: 0xFFFF,
                    seq,
                    timestamp_us: ts,
                }
                .write(&mut frame[..SLICE_HEADER_LEN]);
                sizes.push_back((seq, state.bytes as u64));
                let bytes: Bytes = frame.freeze();
                if sink.send(Message::Binary(bytes)).await.is_err() {
                    return;
                }
            }
            let next = start + Duration::from_secs_f64(produced as f64 / state.rate);
            sleep_until(next.max(Instant::now() + Duration::from_millis(1))).await;
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
    }
    if let Ok(mut m) = state.sessions.lock() {
        m.remove(&id);
    }
    state.held.fetch_sub(1, Ordering::SeqCst);
}
