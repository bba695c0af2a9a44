//! A WebSocket client over a socket the test controls.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use seatkeeper_protocol::SliceHeader;
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    client_async,
    tungstenite::{protocol::CloseFrame, Message},
    WebSocketStream,
};

/// What the client saw.
#[derive(Debug, Clone)]
pub enum Event {
    /// A JSON text message.
    Text(Value),
    /// A slice: header and payload length.
    Slice(SliceHeader, usize),
    /// A close frame (code), or `None` for a close without a frame.
    Closed(Option<u16>),
    /// The transport failed (reset, EOF without close).
    Error(String),
}

/// A test client.
pub struct Client {
    /// The WebSocket.
    pub ws: WebSocketStream<TcpStream>,
}

impl Client {
    /// Connects with default socket buffers.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_with(addr, None).await
    }

    /// Connects with `SO_RCVBUF` set to `rcvbuf` bytes (before the handshake,
    /// so the window scale is negotiated for it).
    pub async fn connect_with(addr: SocketAddr, rcvbuf: Option<u32>) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(n) = rcvbuf {
            socket.set_recv_buffer_size(n).expect("SO_RCVBUF");
        }
        let stream = socket.connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (ws, _) = client_async(format!("ws://{addr}/ws"), stream)
            .await
            .expect("handshake");
        Self { ws }
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, t: &str) {
        self.ws
            .send(Message::text(t.to_owned()))
            .await
            .expect("send");
    }

    /// Sends `hello` and returns the first reply (ready, busy or error).
    pub async fn hello(&mut self, extra: Value) -> Value {
        let mut hello = json!({"type": "hello", "client_id": "test"});
        if let (Some(h), Some(e)) = (hello.as_object_mut(), extra.as_object()) {
            h.extend(e.clone());
        }
        self.send(hello).await;
        loop {
            match self.next(Duration::from_secs(10)).await {
                Some(Event::Text(v)) => return v,
                Some(Event::Slice(..)) => continue,
                other => panic!("no reply to hello: {other:?}"),
            }
        }
    }

    /// The next event within `limit` (`None` on timeout).
    pub async fn next(&mut self, limit: Duration) -> Option<Event> {
        loop {
            let msg = tokio::time::timeout(limit, self.ws.next()).await.ok()?;
            return Some(match msg {
                None => Event::Closed(None),
                Some(Err(e)) => Event::Error(e.to_string()),
                Some(Ok(Message::Text(t))) => {
                    Event::Text(serde_json::from_str(&t).expect("server JSON"))
                }
                Some(Ok(Message::Binary(b))) => {
                    Event::Slice(SliceHeader::decode(&b).expect("slice header"), b.len() - 20)
                }
                Some(Ok(Message::Close(f))) => {
                    Event::Closed(f.map(|f: CloseFrame| u16::from(f.code)))
                }
                Some(Ok(_)) => continue,
            });
        }
    }

    /// Reads and acks `n` slices (skipping text); returns the last seq.
    /// Panics if the stream ends or goes quiet for 5 s.
    pub async fn take_slices(&mut self, n: u64) -> u64 {
        let mut last = 0;
        for _ in 0..n {
            loop {
                match self.next(Duration::from_secs(5)).await {
                    Some(Event::Slice(h, _)) => {
                        self.send(json!({"type": "ack", "seq": h.seq})).await;
                        last = h.seq;
                        break;
                    }
                    Some(Event::Text(_)) => continue,
                    other => panic!("stream ended: {other:?}"),
                }
            }
        }
        last
    }

    /// The next slice with its payload (skipping text), acked; `None` on
    /// timeout or close.
    pub async fn next_payload(&mut self, limit: Duration) -> Option<(SliceHeader, Bytes)> {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let left = end.checked_duration_since(tokio::time::Instant::now())?;
            match tokio::time::timeout(left, self.ws.next()).await.ok()?? {
                Ok(Message::Binary(b)) => {
                    let h = SliceHeader::decode(&b).expect("slice header");
                    self.send(json!({"type": "ack", "seq": h.seq})).await;
                    return Some((h, b.slice(20..)));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Reads (and acks each slice when `ack`) for `dur`; returns slices seen
    /// and the last stats message.
    pub async fn stream_for(&mut self, dur: Duration, ack: bool) -> (u64, Option<Value>) {
        let end = tokio::time::Instant::now() + dur;
        let (mut n, mut stats) = (0, None);
        while let Some(left) = end.checked_duration_since(tokio::time::Instant::now()) {
            match self.next(left).await {
                Some(Event::Slice(h, _)) => {
                    n += 1;
                    if ack {
                        self.send(json!({"type": "ack", "seq": h.seq})).await;
                    }
                }
                Some(Event::Text(v)) if v["type"] == "stats" => stats = Some(v),
                Some(Event::Text(_)) => {}
                None => break,
                Some(other) => panic!("stream ended: {other:?}"),
            }
        }
        (n, stats)
    }

    /// Reads until the connection closes; returns the close code seen.
    pub async fn until_closed(&mut self, limit: Duration) -> Option<Event> {
        let end = tokio::time::Instant::now() + limit;
        while let Some(left) = end.checked_duration_since(tokio::time::Instant::now()) {
            if let e @ (Event::Closed(_) | Event::Error(_)) = self.next(left).await? {
                return Some(e);
            }
        }
        None
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
    pub async fn fin(mut self) -> Self {
        use tokio::io::AsyncWriteExt;
        let _ = self.ws.get_mut().shutdown().await;
        self
    }

    /// Drops the connection with a reset (RST).
    pub fn rst(self) {
        let stream = self.ws.into_inner();
        let _ = stream.set_zero_linger();
        drop(stream);
    }

    /// A ping with a payload (the server answers with a pong).
    pub async fn ping(&mut self, p: &'static [u8]) {
        self.ws
            .send(Message::Ping(Bytes::from_static(p)))
            .await
            .expect("ping");
    }
}
