//! One load-generator session on the shared poll: a non-blocking socket and
//! the little of the protocol a client that keeps up needs — the upgrade,
//! `hello`/`ready`, slices and cumulative acks, pongs, `stats`, the close
//! handshake — by hand, with nothing per slice but a header decode, a
//! histogram bump and (per read) one ack built on the stack.

use std::{
    io::{self, Read, Write},
    time::Instant,
};

use mio::net::TcpStream;
use seatkeeper_protocol::{SliceHeader, SLICE_HEADER_LEN};
use serde_json::{json, Value};

use crate::{
    client::{self, AckPolicy},
    frame,
    hist::Histogram,
};

/// Largest frame taken from the server (the largest slice seatkeeper
/// sends is 16 MiB).
const MAX_FRAME: usize = 32 << 20;

/// Longest upgrade response head.
const HEAD_LIMIT: usize = 16 << 10;

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The TCP connect is in progress.
    Connecting,
    /// The upgrade request is out; waiting for `101`.
    Upgrading,
    /// `hello` is out; waiting for `ready`.
    Hello,
    /// Reading and acking slices.
    Streaming,
    /// The run is over: `bye` and a close frame are out; waiting for the
    /// server's close.
    Closing,
}

impl Phase {
    /// Still setting up (counts against the connect concurrency).
    pub(super) fn handshaking(self) -> bool {
        matches!(self, Self::Connecting | Self::Upgrading | Self::Hello)
    }
}

/// How one session went.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) ready: bool,
    pub(super) refused: Option<String>,
    pub(super) error: Option<String>,
    pub(super) slices: u64,
    pub(super) bytes: u64,
    /// `slices_dropped` from the last `stats` the server sent.
    pub(super) dropped: u64,
    /// Gaps in `seq` (slices the server counted as sent that never arrived).
    pub(super) gaps: u64,
    /// How the connection ended before the run did (`close:CODE`, `reset`, …).
    pub(super) ended: Option<String>,
}

/// Why a session is over.
#[derive(Debug)]
pub(super) enum Done {
    /// It never got to `ready`: why.
    Failed(String),
    /// `hello` was answered with something else: its `type`.
    Refused(String),
    /// The server ended it during the run: `close:CODE`, `eof`, `reset`
    /// or `error`.
    Ended(String),
    /// It ended with the run.
    Finished,
}

/// What every session's handling shares: the run's settings and buffers.
pub(super) struct Ctx<'a> {
    /// `HOST:PORT` and path of the WebSocket route.
    pub(super) authority: &'a str,
    pub(super) path: &'a str,
    /// Slices read before this are not in the latency figures.
    pub(super) settle: Instant,
    pub(super) ack_each: bool,
    pub(super) hist: &'a mut Histogram,
    /// When the current batch of events was read.
    pub(super) now: Instant,
    /// Where outgoing frames are built.
    pub(super) wbuf: Vec<u8>,
}

/// One session: see the module docs.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) phase: Phase,
    pub(super) index: usize,
    /// Until when the current handshake step may take.
    pub(super) deadline: Instant,
    /// Bytes read that are not a whole frame (or head) yet.
    carry: Vec<u8>,
    /// Bytes the socket did not take yet (sent first, on the next
    /// writable edge).
    unsent: Vec<u8>,
    pub(super) out: Outcome,
    acks: AckPolicy,
    /// The first slice: when it arrived, its media timestamp.
    origin: Option<(Instant, u64)>,
    last_seq: u64,
}

impl Conn {
    pub(super) fn new(stream: TcpStream, index: usize, deadline: Instant) -> Self {
        Self {
            stream,
            phase: Phase::Connecting,
            index,
            deadline,
            carry: Vec::new(),
            unsent: Vec::new(),
            out: Outcome::default(),
            acks: AckPolicy::each(),
            origin: None,
            last_seq: 0,
        }
    }

    /// Handles one readiness event.
    pub(super) fn on_event(
        &mut self,
        ev: &mio::event::Event,
        scratch: &mut [u8],
        ctx: &mut Ctx<'_>,
    ) -> Result<(), Done> {
        if self.phase == Phase::Connecting {
            if !(ev.is_writable() || ev.is_error() || ev.is_write_closed()) {
                return Ok(());
            }
            if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
                return Err(Done::Failed(format!("connect: {e}")));
            }
            match self.stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(Done::Failed(format!("connect: {e}"))),
            }
            self.phase = Phase::Upgrading;
            let req = frame::upgrade_request(ctx.authority, ctx.path);
            self.send(req.as_bytes())?;
        }
        if ev.is_writable() && !self.unsent.is_empty() {
            self.send(&[])?;
        }
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            self.read(scratch, ev.is_read_closed() || ev.is_error(), ctx)?;
        }
        Ok(())
    }

    /// The run is over: says `bye` and closes (normal closure), then waits
    /// for the server's close.
    pub(super) fn say_bye(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Done> {
        self.phase = Phase::Closing;
        let code = seatkeeper_protocol::close::NORMAL.to_be_bytes();
        let bye: &[u8] = br#"{"type":"bye"}"#;
        self.send_frames(&[(frame::TEXT, bye), (frame::CLOSE, &code)], ctx)
    }

    /// Writes `bytes` after anything still unsent; what the socket does not
    /// take now waits for the next writable edge.
    fn send(&mut self, bytes: &[u8]) -> Result<(), Done> {
        let held = std::mem::take(&mut self.unsent);
        for part in [&held[..], bytes] {
            let mut at = 0;
            while at < part.len() && self.unsent.is_empty() {
                match self.stream.write(&part[at..]) {
                    Ok(0) => return Err(self.lost(&io::ErrorKind::WriteZero.into())),
                    Ok(n) => at += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.lost(&e)),
                }
            }
            self.unsent.extend_from_slice(&part[at..]);
        }
        Ok(())
    }

    /// Reads until the socket is drained (a short read means it was; later
    /// bytes raise a new edge — unless the peer's FIN is already in, which
    /// raises none, so then it reads on to the end), handling every whole
    /// frame; then one cumulative ack for the slices the reads brought.
    fn read(&mut self, scratch: &mut [u8], to_end: bool, ctx: &mut Ctx<'_>) -> Result<(), Done> {
        loop {
            let n = match self.stream.read(scratch) {
                Ok(0) => return Err(self.eof()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.lost(&e)),
            };
            if self.carry.is_empty() {
                let used = self.consume(&scratch[..n], ctx)?;
                self.carry.extend_from_slice(&scratch[used..n]); // a split frame
            } else {
                let mut carry = std::mem::take(&mut self.carry);
                carry.extend_from_slice(&scratch[..n]);
                let used = self.consume(&carry, ctx)?;
                carry.drain(..used);
                self.carry = carry;
            }
            if n < scratch.len() && !to_end {
                break;
            }
        }
        if self.phase == Phase::Streaming && self.acks.has_pending() {
            let seq = self.acks.take();
            self.ack(seq, ctx)?;
        }
        Ok(())
    }

    /// Handles everything whole at the start of `buf`; returns the bytes
    /// used.
    fn consume(&mut self, buf: &[u8], ctx: &mut Ctx<'_>) -> Result<usize, Done> {
        let mut used = 0;
        loop {
            let rest = &buf[used..];
            if self.phase == Phase::Upgrading {
                let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
                    if rest.len() > HEAD_LIMIT {
                        return Err(Done::Failed("websocket: response head over 16 KiB".into()));
                    }
                    return Ok(used);
                };
                self.upgraded(&rest[..end], ctx)?;
                used += end + 4;
                continue;
            }
            let f = match frame::parse(rest, MAX_FRAME) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(used),
                Err(why) => return Err(self.broken(why)),
            };
            used += f.payload.1;
            self.on_frame(f.opcode, &rest[f.payload.0..f.payload.1], ctx)?;
        }
    }

    /// The upgrade answer's head: a `101` with the accept for our key, or
    /// the session fails with the status line.
    fn upgraded(&mut self, head: &[u8], ctx: &mut Ctx<'_>) -> Result<(), Done> {
        let status = head.split(|&b| b == b'\r').next().unwrap_or(head);
        let accept = frame::UPGRADE_ACCEPT.as_bytes();
        if !status.starts_with(b"HTTP/1.1 101") || !head.windows(accept.len()).any(|w| w == accept)
        {
            return Err(Done::Failed(format!(
                "websocket: upgrade refused: {}",
                String::from_utf8_lossy(status)
            )));
        }
        self.phase = Phase::Hello;
        let hello = json!({"type": "hello", "client_id": format!("load-{}", self.index)});
        self.send_frame(frame::TEXT, hello.to_string().as_bytes(), ctx)
    }

    fn on_frame(&mut self, opcode: u8, p: &[u8], ctx: &mut Ctx<'_>) -> Result<(), Done> {
        match (self.phase, opcode) {
            // The server ends a session whose pings go unanswered.
            (_, frame::PING) => self.send_frame(frame::PONG, p, ctx),
            (_, frame::CLOSE) => {
                let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                if self.phase != Phase::Closing {
                    // Echo it (RFC 6455 §5.5.1); the server then closes TCP.
                    let echo = code.map(u16::to_be_bytes);
                    let _ = self.send_frame(frame::CLOSE, echo.as_ref().map_or(&[], |c| c), ctx);
                }
                Err(match self.phase {
                    Phase::Streaming => Done::Ended(format!("close:{}", code.unwrap_or(1005))),
                    Phase::Closing => Done::Finished,
                    _ => Done::Refused("refused".into()),
                })
            }
            (Phase::Hello, frame::TEXT) => self.answered(p, ctx),
            (Phase::Streaming, frame::BINARY) => self.on_slice(p, ctx),
            (Phase::Streaming, frame::TEXT) => {
                if let Ok(v) = serde_json::from_slice::<Value>(p) {
                    if v["type"] == "stats" {
                        self.out.dropped = v["slices_dropped"].as_u64().unwrap_or(self.out.dropped);
                    }
                }
                Ok(())
            }
            // Slices before `ready`, anything after our close.
            _ => Ok(()),
        }
    }

    /// The answer to `hello`.
    fn answered(&mut self, p: &[u8], ctx: &Ctx<'_>) -> Result<(), Done> {
        let v: Value = serde_json::from_slice(p).map_err(|e| {
            Done::Failed(format!(
                "protocol: an answer to hello that is not JSON: {e}"
            ))
        })?;
        match v["type"].as_str() {
            Some("stats") => Ok(()),
            Some("ready") => {
                let ready = client::parse_ready(&v).map_err(|e| Done::Failed(e.to_string()))?;
                self.acks = if ctx.ack_each {
                    AckPolicy::each()
                } else {
                    AckPolicy::for_window(&ready)
                };
                self.phase = Phase::Streaming;
                self.out.ready = true;
                Ok(())
            }
            other => Err(Done::Refused(other.unwrap_or("refused").to_owned())),
        }
    }

    fn on_slice(&mut self, p: &[u8], ctx: &mut Ctx<'_>) -> Result<(), Done> {
        let h = SliceHeader::decode(p).map_err(|_| Done::Ended("error".into()))?;
        let len = p.len() - SLICE_HEADER_LEN;
        let out = &mut self.out;
        out.slices += 1;
        out.bytes += len as u64;
        if self.last_seq != 0 && h.seq > self.last_seq + 1 {
            out.gaps += h.seq - self.last_seq - 1;
        }
        self.last_seq = self.last_seq.max(h.seq);
        let now = ctx.now;
        let (a0, t0) = *self.origin.get_or_insert((now, h.timestamp_us));
        if now >= ctx.settle {
            let due = a0 + std::time::Duration::from_micros(h.timestamp_us.saturating_sub(t0));
            ctx.hist
                .record(now.saturating_duration_since(due).as_micros() as u64);
        }
        // More than a quarter of the window in one read acks inside it too,
        // so a fast stream never waits on a closed window.
        match self.acks.on_slice(h.seq, len, now.into()) {
            Some(seq) => self.ack(seq, ctx),
            None => Ok(()),
        }
    }

    /// A cumulative ack, `{"seq":N,"type":"ack"}`, built on the stack.
    fn ack(&mut self, seq: u64, ctx: &mut Ctx<'_>) -> Result<(), Done> {
        let mut body = [0u8; 48];
        let room = body.len();
        let mut w = &mut body[..];
        write!(w, r#"{{"seq":{seq},"type":"ack"}}"#).expect("an ack fits in 48 bytes");
        let len = room - w.len();
        self.send_frame(frame::TEXT, &body[..len], ctx)
    }

    fn send_frame(&mut self, opcode: u8, payload: &[u8], ctx: &mut Ctx<'_>) -> Result<(), Done> {
        self.send_frames(&[(opcode, payload)], ctx)
    }

    /// Frames built in the shared buffer, sent with one write.
    fn send_frames(&mut self, frames: &[(u8, &[u8])], ctx: &mut Ctx<'_>) -> Result<(), Done> {
        ctx.wbuf.clear();
        for &(opcode, payload) in frames {
            frame::encode_into(opcode, payload, &mut ctx.wbuf);
        }
        let bytes = std::mem::take(&mut ctx.wbuf);
        let sent = self.send(&bytes);
        ctx.wbuf = bytes;
        sent
    }

    /// The stream ended without a close frame.
    fn eof(&self) -> Done {
        match self.phase {
            Phase::Streaming => Done::Ended("eof".into()),
            Phase::Closing => Done::Finished,
            Phase::Hello => Done::Refused("refused".into()),
            Phase::Connecting | Phase::Upgrading => {
                Done::Failed("websocket: the connection closed during the upgrade".into())
            }
        }
    }

    /// The socket failed.
    fn lost(&self, e: &io::Error) -> Done {
        match self.phase {
            Phase::Streaming if e.kind() == io::ErrorKind::ConnectionReset => {
                Done::Ended("reset".into())
            }
            Phase::Streaming => Done::Ended("error".into()),
            Phase::Closing => Done::Finished,
            Phase::Hello => Done::Refused("refused".into()),
            Phase::Connecting | Phase::Upgrading => Done::Failed(format!("websocket: {e}")),
        }
    }

    /// The server sent what a server must not.
    fn broken(&self, why: &str) -> Done {
        match self.phase {
            Phase::Streaming => Done::Ended("error".into()),
            Phase::Closing => Done::Finished,
            _ => Done::Failed(format!("protocol: {why}")),
        }
    }
}
