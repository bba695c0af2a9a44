//! The tests' face of the one WebSocket client ([`ws::Client`], the chaos
//! tool's): the same socket and the same events, with each step of a
//! scenario a single call that panics, with what it saw, where the `Result`
//! API would make every test spell out the failure. Tests that must count
//! failures instead of stopping (the soak) use [`ws::Client`] itself.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use futures_util::StreamExt;
use seatkeeper_protocol::{SliceHeader, SLICE_HEADER_LEN};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::ws::{self, Event};

/// A test client: [`ws::Client`] whose every step must succeed.
pub struct Client {
    inner: ws::Client,
}

impl Client {
    /// Connects with default socket buffers.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_with(addr, None).await
    }

    /// Connects with `SO_RCVBUF` set to `rcvbuf` bytes (before the handshake,
    /// so the window scale is negotiated for it).
    pub async fn connect_with(addr: SocketAddr, rcvbuf: Option<u32>) -> Self {
        let inner = ws::Client::connect_addr(addr, rcvbuf)
            .await
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        Self { inner }
    }

    /// The client underneath, for its `Result` API and its raw escape
    /// hatch ([`ws::Client::send_frame`], [`ws::Client::write_raw`]).
    pub fn inner(&mut self) -> &mut ws::Client {
        &mut self.inner
    }

    /// The client underneath, by value (to split its stream).
    pub fn into_inner(self) -> ws::Client {
        self.inner
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, v: Value) {
        self.inner.send(&v).await.expect("send");
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, t: &str) {
        self.inner.send_text(t).await.expect("send");
    }

    /// Sends `hello` and returns the first text reply (ready, busy or error).
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
        self.inner.next(limit).await
    }

    /// Reads and acks `n` slices (skipping text); returns the last seq.
    /// Panics if the stream ends or goes quiet for 5 s.
    pub async fn take_slices(&mut self, n: u64) -> u64 {
        let mut last = 0;
        for _ in 0..n {
            loop {
                match self.next(Duration::from_secs(5)).await {
                    Some(Event::Slice(h, ..)) => {
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
            match tokio::time::timeout(left, self.inner.ws.next())
                .await
                .ok()??
            {
                Ok(Message::Binary(b)) => {
                    let h = SliceHeader::decode(&b).expect("slice header");
                    self.send(json!({"type": "ack", "seq": h.seq})).await;
                    return Some((h, b.slice(SLICE_HEADER_LEN..)));
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
                Some(Event::Slice(h, ..)) => {
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

    /// Reads until the connection ends; returns the ending event
    /// ([`Event::Closed`] or [`Event::Error`]), `None` on timeout.
    pub async fn until_closed(&mut self, limit: Duration) -> Option<Event> {
        self.inner.until_closed(limit).await
    }

    /// Reads until the connection ends, as [`until_closed`](Self::until_closed);
    /// returns the `code` of every `error` message on the way, and the end.
    pub async fn errors_until_closed(&mut self, limit: Duration) -> (Vec<String>, Option<Event>) {
        self.inner.errors_until_closed(limit).await
    }

    /// Sends a close frame.
    pub async fn close(&mut self, code: u16) {
        self.inner.close(code).await;
    }

    /// Half-closes the TCP connection (FIN) without a close frame.
    pub async fn fin(mut self) -> Self {
        self.inner.fin().await;
        self
    }

    /// Drops the connection with a reset (RST).
    pub fn rst(self) {
        self.inner.rst();
    }
}
