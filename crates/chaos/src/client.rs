//! The WebSocket client of the chaos tool, the load generator and every
//! test: a socket the caller controls (receive buffer size before the
//! handshake, when and whether it reads, FIN, RST) and a raw escape hatch
//! ([`send_frame`](Client::send_frame), [`write_raw`](Client::write_raw))
//! for the input a conforming client never sends. Every operation returns a
//! `Result` — the chaos tool reports, it never panics.

use std::{net::SocketAddr, time::Duration};

use futures_util::{SinkExt, StreamExt};
use seatkeeper_protocol::{SliceHeader, SLICE_HEADER_LEN};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    time::Instant,
};
use tokio_tungstenite::{
    client_async,
    tungstenite::{self, protocol::CloseFrame, Message},
    WebSocketStream,
};

use crate::{frame, target::Target, ChaosError};

mod ack;

pub use ack::AckPolicy;

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

/// The client, over TCP unless the caller brings its own stream (a TLS
/// session, see [`handshake`](Client::handshake)).
pub struct Client<S = TcpStream> {
    /// The WebSocket.
    pub ws: WebSocketStream<S>,
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
            Self::handshake(stream, &url).await
        };
        tokio::time::timeout(HANDSHAKE_LIMIT, up)
            .await
            .map_err(|_| ChaosError::Timeout("WebSocket upgrade".into()))?
    }

    /// Connects to `ws://ADDR/ws` (a server under test on this machine).
    pub async fn connect_addr(addr: SocketAddr, rcvbuf: Option<u32>) -> Result<Self, ChaosError> {
        Self::connect(&Target::ws(addr), rcvbuf).await
    }

    /// Drops the connection with a reset (RST).
    pub fn rst(self) {
        let stream = self.ws.into_inner();
        let _ = stream.set_zero_linger();
        drop(stream);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// The WebSocket upgrade of `url` on a stream already open (no time
    /// limit of its own: [`connect`](Client::connect) bounds it).
    pub async fn handshake(stream: S, url: &str) -> Result<Self, ChaosError> {
        let (ws, _) = client_async(url, stream)
            .await
            .map_err(|e| ChaosError::Ws(e.to_string()))?;
        Ok(Self { ws })
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, v: &Value) -> Result<(), ChaosError> {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .map_err(|e| ChaosError::Ws(e.to_string()))
    }

    /// Sends text as it is (JSON or not).
    pub async fn send_text(&mut self, text: &str) -> Result<(), ChaosError> {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .map_err(|e| ChaosError::Ws(e.to_string()))
    }

    /// The escape hatch: one frame built by hand ([`frame::encode`]), for
    /// what the WebSocket layer refuses to send (a message over its size
    /// limit, a close frame it did not decide on).
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<(), ChaosError> {
        self.write_raw(&frame::encode(opcode, payload)).await
    }

    /// The escape hatch: bytes written to the socket as they are (a flood
    /// in one write, a broken frame). Whatever the WebSocket layer had
    /// queued goes out first, so the byte stream stays in order.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ChaosError> {
        self.ws
            .flush()
            .await
            .map_err(|e| ChaosError::Ws(e.to_string()))?;
        self.ws
            .get_mut()
            .write_all(bytes)
            .await
            .map_err(ChaosError::io("raw write"))
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

    /// Like [`until_closed`](Self::until_closed), also returning (first)
    /// the `code` of every `error` message read on the way; a close frame is answered
    /// at once (the WebSocket layer would otherwise send the echo it queued
    /// only on the next read or write).
    pub async fn errors_until_closed(&mut self, limit: Duration) -> (Vec<String>, Option<Event>) {
        let end = Instant::now() + limit;
        let mut errors = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(Event::Text(v)) if v["type"] == "error" => {
                    errors.push(v["code"].as_str().unwrap_or_default().to_owned())
                }
                Some(e) if e.ending().is_none() => {}
                end => {
                    if let Some(Event::Closed(Some(_))) = end {
                        let _ = self.ws.flush().await;
                    }
                    return (errors, end);
                }
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
}

pub(crate) fn parse_ready(v: &Value) -> Result<Ready, ChaosError> {
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
