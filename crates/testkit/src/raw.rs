//! A WebSocket client written out by hand, for what a library client will
//! not do: binary frames, a flood in one write, broken frames, an upgrade
//! that never says `hello`.

use std::{net::SocketAddr, time::Duration};

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Every wait's bound (the upgrade, [`RawWs::until_closed`]): generous.
const PATIENCE: Duration = Duration::from_secs(10);

/// Text frame opcode.
pub const TEXT: u8 = 1;
/// Binary frame opcode.
pub const BINARY: u8 = 2;
/// Close frame opcode.
pub const CLOSE: u8 = 8;

/// One masked client frame.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0xc3, 0x17, 0x88];
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// What the raw client saw next.
#[derive(Debug)]
pub enum Got {
    /// A text frame, as JSON (`Null` when it is not JSON).
    Text(Value),
    /// A binary frame.
    Binary,
    /// A close frame and its code.
    Close(Option<u16>),
    /// The server closed the connection (FIN).
    Eof,
    /// The error, read only through `Debug` in failure messages.
    Reset(#[allow(dead_code)] String),
    /// Nothing within the limit.
    Timeout,
}

/// A WebSocket client for what a library client will not do: binary
/// frames, a flood in one write, an upgrade that never says `hello`.
pub struct RawWs {
    s: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Upgrades a connection to `/ws` on `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, String> {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let req = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: c29hay1zb2FrLXNvYWsh\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut ws = Self { s, buf: Vec::new() };
        // Bounded: a response head over 16 KiB is an error, not a loop.
        let head = loop {
            if let Some(i) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if ws.buf.len() > 16 << 10 {
                return Err("upgrade response head over 16 KiB".into());
            }
            if let Some(end) = ws.fill(PATIENCE).await {
                return Err(format!("upgrade: {end:?}"));
            }
        };
        if !ws.buf.starts_with(b"HTTP/1.1 101") {
            return Err(String::from_utf8_lossy(&ws.buf[..head]).into_owned());
        }
        ws.buf.drain(..head);
        Ok(ws)
    }

    /// Reads once more into the buffer: `None` when bytes came, else how
    /// the connection ended (or `Timeout`).
    pub async fn fill(&mut self, limit: Duration) -> Option<Got> {
        let mut chunk = [0u8; 16 << 10];
        match tokio::time::timeout(limit, self.s.read(&mut chunk)).await {
            Err(_) => Some(Got::Timeout),
            Ok(Ok(0)) => Some(Got::Eof),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                None
            }
            Ok(Err(e)) => Some(Got::Reset(e.to_string())),
        }
    }

    /// Sends one masked frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) {
        // The server may already have cut us off: what it says is read next.
        let _ = self.s.write_all(&frame(opcode, payload)).await;
    }

    /// The next data or close frame (pings and pongs skipped).
    pub async fn next(&mut self, limit: Duration) -> Got {
        let end = tokio::time::Instant::now() + limit;
        loop {
            if let Some((op, payload, used)) = parse(&self.buf) {
                let got = match op {
                    TEXT => Some(Got::Text(
                        serde_json::from_slice(payload).unwrap_or(Value::Null),
                    )),
                    BINARY => Some(Got::Binary),
                    CLOSE => Some(Got::Close(
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
                    )),
                    _ => None,
                };
                self.buf.drain(..used);
                match got {
                    Some(g) => return g,
                    None => continue,
                }
            }
            let Some(left) = end.checked_duration_since(tokio::time::Instant::now()) else {
                return Got::Timeout;
            };
            if let Some(end) = self.fill(left).await {
                return end;
            }
        }
    }

    /// Reads until the connection ends (for `PATIENCE` at most); the end
    /// and the `error` codes seen. A close frame is echoed.
    pub async fn until_closed(&mut self) -> (Got, Vec<String>) {
        let mut errors = Vec::new();
        let end = tokio::time::Instant::now() + PATIENCE;
        while let Some(left) = end.checked_duration_since(tokio::time::Instant::now()) {
            match self.next(left).await {
                Got::Text(v) if v["type"] == "error" => {
                    errors.push(v["code"].as_str().unwrap_or_default().to_owned())
                }
                Got::Text(_) | Got::Binary => {}
                got => {
                    if let Got::Close(Some(code)) = got {
                        self.send(CLOSE, &code.to_be_bytes()).await;
                    }
                    return (got, errors);
                }
            }
        }
        (Got::Timeout, errors)
    }

    /// Writes bytes as they are (a flood in one write, a broken frame).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.s.write_all(bytes).await
    }

    /// Makes the drop send a reset instead of a FIN.
    #[allow(deprecated)] // tokio deprecates it for blocking closes; drop does not wait here.
    pub fn zero_linger(&self) -> std::io::Result<()> {
        self.s.set_zero_linger()
    }
}

/// One server frame at the front of `buf`: opcode, payload, bytes used.
/// Server frames are never masked.
fn parse(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    let op = buf.first()? & 0x0f;
    let (len, at): (usize, usize) = match buf.get(1)? & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    Some((op, buf.get(at..at.checked_add(len)?)?, at + len))
}
