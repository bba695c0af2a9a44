//! A WebSocket client whose socket the caller controls: receive buffer size
//! before the handshake, when (and whether) it reads, FIN, RST. Every
//! operation returns a `Result` — the chaos tool reports, it never panics.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use seatkeeper_protocol::{SliceHeader, SLICE_HEADER_LEN};
use serde_json::{json, Value};
use tokio::{
    net::{TcpSocket, TcpStream},
    time::Instant,
};
use tokio_tungstenite::{
    client_async,
    tungstenite::{self, protocol::CloseFrame, Message},
    WebSocketStream,
};

use crate::{target::Target, ChaosError};

/// Longest wait for the upgrade and for the answer to `hello`.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// What the client saw.
#[derive(Debug, Clone)]
pub enum Event {
    /// A JSON text message.
    Text(Value),
    /// A slice: its header, payload length and when it was read.
    Slice(SliceHeader, usize, Instant),
    /// A close frame (its code), or `None` for EOF without one.
    Closed(Option<u16>),
    /// The transport failed; the text says how (see [`Event::ending`]).
    Error(String),
}

impl Event {
    /// For an ending event, a one-word description: `close`, `eof`, `reset`
    /// or `error`.
    pub fn ending(&self) -> Option<&'static str> {
        match self {
            Self::Closed(Some(_)) => Some("close"),
            Self::Closed(None) => Some("eof"),
            Self::Error(e) if e.contains("reset") || e.contains("Reset") => Some("reset"),
            Self::Error(_) => Some("error"),
            _ => None,
        }
    }
}

/// The server's `ready`, the parts the chaos tool uses.
#[derive(Debug, Clone)]
pub struct Ready {
    /// Session id.
    pub session_id: String,
    /// Token for the next resume.
    pub resume_token: Option<String>,
    /// Whether this reattached an existing session.
    pub resumed: bool,
    /// Window: most slices in flight.
    pub window_slices: u64,
    /// Window: most payload bytes in flight.
    pub window_bytes: u64,
}

/// How `hello` was answered.
#[derive(Debug, Clone)]
pub enum HelloOutcome {
    /// `ready`.
    Ready(Ready),
    /// Anything else (`busy`, `error`) or the connection ending.
    Refused(Value),
}

/// A chaos client.
pub struct Client {
    /// The WebSocket.
    pub ws: WebSocketStream<TcpStream>,
}

impl Client {
    /// Connects to `target` (whose path is the WebSocket route), with
    /// `SO_RCVBUF` set to `rcvbuf` before the handshake so the window scale
    /// is negotiated for it.
    pub async fn connect(target: &Target, rcvbuf: Option<u32>) -> Result<Self, ChaosError> {
        let socket = if target.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(ChaosError::io("socket"))?;
        if let Some(n) = rcvbuf {
            socket
                .set_recv_buffer_size(n)
                .map_err(ChaosError::io("SO_RCVBUF"))?;
        }
        let up = async {
            let stream = socket
                .connect(target.addr)
                .await
                .map_err(ChaosError::io("connect"))?;
            stream
                .set_nodelay(true)
                .map_err(ChaosError::io("nodelay"))?;
            let url = format!("ws://{}{}", target.authority, target.path);
            let (ws, _) = client_async(url, stream)
                .await
                .map_err(|e| ChaosError::Ws(e.to_string()))?;
            Ok(Self { ws })
        };
        tokio::time::timeout(HANDSHAKE_LIMIT, up)
            .await
            .map_err(|_| ChaosError::Timeout("WebSocket upgrade".into()))?
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, v: &Value) -> Result<(), ChaosError> {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .map_err(|e| ChaosError::Ws(e.to_string()))
    }

    /// Sends a cumulative `ack`.
    pub async fn ack(&mut self, seq: u64) -> Result<(), ChaosError> {
        self.send(&json!({"type": "ack", "seq": seq})).await
    }

    /// Sends `hello` (merged with `extra`'s fields) and waits for the answer.
    pub async fn hello(&mut self, extra: &Value) -> Result<HelloOutcome, ChaosError> {
        let mut hello = json!({"type": "hello", "client_id": "chaos"});
        if let (Some(h), Some(e)) = (hello.as_object_mut(), extra.as_object()) {
            h.extend(e.clone());
        }
        self.send(&hello).await?;
        let end = Instant::now() + HANDSHAKE_LIMIT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.next(left).await {
                None => return Err(ChaosError::Timeout("no answer to hello".into())),
                Some(Event::Text(v)) if v["type"] == "ready" => {
                    return Ok(HelloOutcome::Ready(parse_ready(&v)?))
                }
                Some(Event::Text(v)) if v["type"] == "stats" => continue,
                Some(Event::Text(v)) => return Ok(HelloOutcome::Refused(v)),
                Some(Event::Slice(..)) => continue,
                Some(e) => return Ok(HelloOutcome::Refused(json!({"ended": format!("{e:?}")}))),
            }
        }
    }

    /// Like [`hello`](Self::hello), but anything but `ready` is an error.
    pub async fn hello_ready(&mut self, extra: &Value) -> Result<Ready, ChaosError> {
        match self.hello(extra).await? {
            HelloOutcome::Ready(r) => Ok(r),
            HelloOutcome::Refused(v) => Err(ChaosError::Protocol(format!("hello refused: {v}"))),
        }
    }

    /// The next event within `limit` (`None` on timeout). Pings are answered
    /// by the WebSocket layer while this reads.
    pub async fn next(&mut self, limit: Duration) -> Option<Event> {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, self.ws.next()).await.ok()?;
            return Some(match msg {
                None => Event::Closed(None),
                Some(Err(e)) => Event::Error(describe(&e)),
                Some(Ok(Message::Text(t))) => match serde_json::from_str(&t) {
                    Ok(v) => Event::Text(v),
                    Err(e) => Event::Error(format!("server sent bad JSON: {e}")),
                },
                Some(Ok(Message::Binary(b))) => match SliceHeader::decode(&b) {
                    Ok(h) => Event::Slice(h, b.len() - SLICE_HEADER_LEN, Instant::now()),
                    Err(e) => Event::Error(format!("bad slice: {e}")),
                },
                Some(Ok(Message::Close(f))) => {
                    Event::Closed(Some(f.map_or(1005, |f: CloseFrame| u16::from(f.code))))
                }
                Some(Ok(_)) => continue,
            });
        }
    }

    /// Reads until the connection ends or `limit` passes; returns the ending
    /// event (slices and text on the way are skipped).
    pub async fn until_closed(&mut self, limit: Duration) -> Option<Event> {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let e = self.next(left).await?;
            if e.ending().is_some() {
                return Some(e);
            }
        }
    }

    /// Sends a close frame.
    pub async fn close(&mut self, code: u16) {
        let _ = self
            .ws
            .close(Some(CloseFrame {
                code: code.into(),
                reason: "".into(),
            }))
            .await;
    }

    /// Half-closes the TCP connection (FIN) without a close frame.
    pub async fn fin(&mut self) {
        use tokio::io::AsyncWriteExt;
        let _ = self.ws.get_mut().shutdown().await;
    }

    /// Drops the connection with a reset (RST).
    pub fn rst(self) {
        let stream = self.ws.into_inner();
        let _ = stream.set_zero_linger();
        drop(stream);
    }
}

fn parse_ready(v: &Value) -> Result<Ready, ChaosError> {
    let session_id = v["session_id"]
        .as_str()
        .ok_or_else(|| ChaosError::Protocol(format!("ready without session_id: {v}")))?
        .to_owned();
    Ok(Ready {
        session_id,
        resume_token: v["resume_token"].as_str().map(str::to_owned),
        resumed: v["resumed"].as_bool().unwrap_or(false),
        window_slices: v["window"]["slices"].as_u64().unwrap_or(16),
        window_bytes: v["window"]["bytes"].as_u64().unwrap_or(4 << 20),
    })
}

pub(crate) fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => {
            "connection reset".into()
        }
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => "eof without close (reset)".into(),
        other => other.to_string(),
    }
}

/// When to send a cumulative ack: often enough that the window never closes
/// on a client that keeps up, rarely enough that a fast stream stays far
/// below a server's message-rate limit (the contract's default is 500/s).
#[derive(Debug, Clone)]
pub struct AckPolicy {
    every_slices: u64,
    every_bytes: u64,
    max_delay: Duration,
    pending_slices: u64,
    pending_bytes: u64,
    last_seq: u64,
    first_pending: Option<Instant>,
}

impl AckPolicy {
    /// Acks each slice at once (low-rate streams, the browser's behaviour).
    pub fn each() -> Self {
        Self::coalescing(1, 1, Duration::ZERO)
    }

    /// Acks once a quarter of `ready`'s window is pending, or after 10 ms.
    pub fn for_window(r: &Ready) -> Self {
        Self::coalescing(
            (r.window_slices / 4).max(1),
            (r.window_bytes / 4).max(1),
            Duration::from_millis(10),
        )
    }

    fn coalescing(every_slices: u64, every_bytes: u64, max_delay: Duration) -> Self {
        Self {
            every_slices,
            every_bytes,
            max_delay,
            pending_slices: 0,
            pending_bytes: 0,
            last_seq: 0,
            first_pending: None,
        }
    }

    /// Records a slice read; returns the seq to ack now, if any.
    pub fn on_slice(&mut self, seq: u64, bytes: usize, now: Instant) -> Option<u64> {
        self.last_seq = self.last_seq.max(seq);
        self.pending_slices += 1;
        self.pending_bytes += bytes as u64;
        self.first_pending.get_or_insert(now);
        (self.pending_slices >= self.every_slices
            || self.pending_bytes >= self.every_bytes
            || now.duration_since(self.first_pending.unwrap_or(now)) >= self.max_delay)
            .then(|| self.take())
    }

    /// Whether a slice was read and not acked yet.
    pub fn has_pending(&self) -> bool {
        self.first_pending.is_some()
    }

    /// When a pending ack is due even if no slice arrives.
    pub fn deadline(&self) -> Option<Instant> {
        self.first_pending.map(|t| t + self.max_delay)
    }

    /// The seq to ack now (clears the pending state).
    pub fn take(&mut self) -> u64 {
        self.pending_slices = 0;
        self.pending_bytes = 0;
        self.first_pending = None;
        self.last_seq
    }
}
