//! floor-peer's server side (see the binary's doc for what it is and is
//! not, and why each choice is the cheap one).

use std::{
    io::{self, IoSlice, Read},
    net::SocketAddr,
    time::{Duration, Instant},
};

use mio::{net::TcpListener, Events, Interest, Poll, Token};
use seatkeeper_protocol::{slice::SliceHeader, SLICE_HEADER_LEN};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::{
    conn::{Conn, Phase, MAX_CARRY},
    opcode, MAX_HEADER,
};

/// What to serve.
#[derive(Debug, Clone)]
pub struct ServerArgs {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Concurrent sessions.
    pub seats: u64,
    /// `synthetic:RATE_HZ:BYTES`.
    pub engine: String,
    /// Most slices in flight.
    pub window_slices: u64,
    /// Most payload bytes in flight.
    pub window_bytes: u64,
}

const LISTENER: Token = Token(usize::MAX);

struct Server {
    poll: Poll,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    next_gen: u32,
    /// `wheel[t % slots]`: the sessions due at tick `t`.
    wheel: Vec<Vec<(usize, u32)>>,
    /// The next tick to serve.
    tick: u64,
    epoch: Instant,
    period_us: u64,
    slots: u64,
    bytes: usize,
    /// `bytes + 256` bytes; slice `seq` carries `pattern[seq % 256..]`.
    pattern: Vec<u8>,
    args: ServerArgs,
    held: u64,
    next_id: u64,
    /// The one read buffer every connection shares.
    scratch: Vec<u8>,
}

/// Serves until the process is killed (or polling fails).
pub fn run(args: ServerArgs) -> io::Result<()> {
    let (rate, bytes) = super::parse_engine(&args.engine)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let period_us = (1e6 / rate).round() as u64;
    // ~1 ms ticks: epoll's timeout has millisecond resolution anyway.
    let slots = (period_us / 1000).max(1);
    let poll = Poll::new()?;
    let mut listener = listen(args.listen)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut s = Server {
        poll,
        listener,
        conns: Vec::new(),
        free: Vec::new(),
        next_gen: 0,
        wheel: (0..slots).map(|_| Vec::new()).collect(),
        tick: 0,
        epoch: Instant::now(),
        period_us,
        slots,
        bytes,
        pattern: (0..bytes + 256).map(|i| i as u8).collect(),
        args,
        held: 0,
        next_id: 1,
        scratch: vec![0; 64 << 10],
    };
    let mut events = Events::with_capacity(1024);
    loop {
        let timeout =
            (s.held > 0).then(|| s.tick_at(s.tick).saturating_duration_since(Instant::now()));
        match s.poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in &events {
            if ev.token() == LISTENER {
                s.accept();
            } else {
                let i = ev.token().0;
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    s.read(i);
                }
                if ev.is_writable() {
                    s.flush(i);
                }
            }
        }
        s.serve_due();
    }
}

/// A non-blocking listener with tokio's backlog (1024), as seatkeeper and
/// tt-peer have: std's and mio's 128 overflows while thousands of clients
/// connect at once, and each dropped SYN costs its client a 1 s retry.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(TcpListener::from_std(s.into()))
}

impl Server {
    fn tick_at(&self, tick: u64) -> Instant {
        self.epoch + Duration::from_micros(tick * self.period_us / self.slots)
    }

    fn accept(&mut self) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EMFILE and friends: the rest stay in the backlog until
                // the next connection raises a new edge.
                Err(e) => {
                    eprintln!("floor-peer: accept: {e}");
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            let i = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            // Registered once for both directions: edge-triggered writable
            // only fires after a write hit a full buffer, so it costs
            // nothing in the steady state and saves an epoll_ctl per stall.
            let both = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut stream, Token(i), both)
                .is_err()
            {
                self.free.push(i);
                continue;
            }
            self.next_gen = self.next_gen.wrapping_add(1);
            self.conns[i] = Some(Conn {
                stream,
                gen: self.next_gen,
                phase: Phase::Http,
                carry: Vec::new(),
                unsent: Vec::new(),
                start_tick: 0,
                sent: 0,
                acked: 0,
            });
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(mut c) = self.conns.get_mut(i).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            if matches!(c.phase, Phase::Streaming) {
                self.held -= 1;
            }
            self.free.push(i);
        }
    }

    fn read(&mut self, i: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(c) = self.conns.get_mut(i).and_then(Option::as_mut) {
            match c.stream.read(&mut scratch) {
                Ok(0) => {
                    self.close(i);
                    break;
                }
                Ok(n) => {
                    self.input(i, &mut scratch[..n]);
                    if n < scratch.len() {
                        break; // drained: see the module doc
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close(i);
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    /// Handles freshly read bytes, joined to any carry-over first.
    fn input(&mut self, i: usize, fresh: &mut [u8]) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        if c.carry.is_empty() {
            let used = self.consume(i, fresh);
            self.keep(i, &fresh[used..]);
        } else {
            let mut carry = std::mem::take(&mut c.carry);
            carry.extend_from_slice(fresh);
            let used = self.consume(i, &mut carry);
            carry.drain(..used);
            if let Some(c) = self.conns[i].as_mut() {
                c.carry = carry; // keeps its capacity
            }
        }
    }

    fn keep(&mut self, i: usize, rest: &[u8]) {
        if let Some(c) = self.conns[i].as_mut() {
            if rest.len() > MAX_CARRY {
                self.close(i);
            } else {
                c.carry.extend_from_slice(rest);
            }
        }
    }

    /// Handles every whole request or frame at the start of `buf`; returns
    /// how many bytes it used.
    fn consume(&mut self, i: usize, buf: &mut [u8]) -> usize {
        let mut used = 0;
        while let Some(c) = self.conns[i].as_ref() {
            let rest = &mut buf[used..];
            if matches!(c.phase, Phase::Http) {
                let Some(end) = super::find(rest, b"\r\n\r\n") else {
                    if rest.len() > MAX_CARRY {
                        self.close(i);
                    }
                    return used;
                };
                used += end + 4;
                self.request(i, &rest[..end]);
                continue;
            }
            let Some(f) = super::parse_frame(rest) else {
                if rest.len() > MAX_CARRY {
                    self.close(i);
                }
                return used;
            };
            used += f.end;
            let payload = &mut rest[f.start..f.end];
            if let Some(m) = f.mask {
                super::unmask(payload, m);
            }
            match f.opcode {
                opcode::TEXT => self.text(i, payload),
                opcode::CLOSE => self.close(i),
                _ => {} // pings, pongs, binary: a floor ignores them
            }
        }
        used
    }

    /// One HTTP request head: `/sessions`, the upgrade, or 404.
    fn request(&mut self, i: usize, head: &[u8]) {
        let lower = head.to_ascii_lowercase();
        if head.starts_with(b"GET /sessions") {
            let body = format!(
                r#"{{"lockHeld":{},"seats":{{"total":{},"held":{}}},"sessions":[]}}"#,
                self.held > 0,
                self.args.seats,
                self.held
            );
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            self.send(i, resp.as_bytes());
            self.close(i);
            return;
        }
        let key = super::find(&lower, b"\r\nsec-websocket-key:").map(|at| {
            let v = &head[at + 20..];
            let end = super::find(v, b"\r\n").unwrap_or(v.len());
            v[..end].trim_ascii()
        });
        match key {
            Some(key) if head.starts_with(b"GET /ws") => {
                let resp = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    derive_accept_key(key)
                );
                self.send(i, resp.as_bytes());
                if let Some(c) = self.conns[i].as_mut() {
                    c.phase = Phase::Hello;
                }
            }
            _ => {
                self.send(
                    i,
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                self.close(i);
            }
        }
    }

    /// One text message: `hello` before streaming, `ack` and `bye` during.
    fn text(&mut self, i: usize, json: &[u8]) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        match c.phase {
            Phase::Streaming if super::is_type(json, "ack") => {
                if let Some(seq) = super::seq_of(json) {
                    // Cumulative: never backwards, never past what was sent.
                    c.acked = c.acked.max(seq.min(c.sent));
                }
            }
            Phase::Streaming if super::is_type(json, "bye") => self.close(i),
            Phase::Hello if super::is_type(json, "hello") => self.hello(i),
            _ => {}
        }
    }

    fn hello(&mut self, i: usize) {
        if self.held >= self.args.seats {
            self.send_text(i, r#"{"type":"busy","retry_after_s":2.0}"#);
            // Close 1013 (try again later), as tt-peer does.
            self.send_frame(i, opcode::CLOSE, &1013u16.to_be_bytes());
            self.close(i);
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let ready = format!(
            r#"{{"type":"ready","session_id":"floor{id}","resume_token":"","resumed":false,"window":{{"slices":{},"bytes":{}}},"engine":{{"name":"synthetic","rate_hz":{},"bytes":{}}}}}"#,
            self.args.window_slices,
            self.args.window_bytes,
            1e6 / self.period_us as f64,
            self.bytes
        );
        self.send_text(i, &ready);
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        // Its slot is the tick the clock is in: the first slice goes out at
        // once, the next when the wheel comes round again, a period later.
        let tick = self.epoch.elapsed().as_micros() as u64 * self.slots / self.period_us;
        c.phase = Phase::Streaming;
        c.start_tick = tick;
        self.held += 1;
        self.wheel[(tick % self.slots) as usize].push((i, c.gen));
        self.slice(i, 0);
    }

    fn send_text(&mut self, i: usize, text: &str) {
        self.send_frame(i, opcode::TEXT, text.as_bytes());
    }

    fn send_frame(&mut self, i: usize, op: u8, payload: &[u8]) {
        let mut h = [0; MAX_HEADER];
        let n = super::frame_header(op, payload.len(), &mut h);
        self.send_vectored(i, &[IoSlice::new(&h[..n]), IoSlice::new(payload)]);
    }

    fn send(&mut self, i: usize, bytes: &[u8]) {
        self.send_vectored(i, &[IoSlice::new(bytes)]);
    }

    fn send_vectored(&mut self, i: usize, parts: &[IoSlice<'_>]) {
        if let Some(c) = self.conns[i].as_mut() {
            if c.send(parts).is_err() {
                self.close(i);
            }
        }
    }

    fn flush(&mut self, i: usize) {
        if let Some(c) = self.conns.get_mut(i).and_then(Option::as_mut) {
            if c.flush().is_err() {
                self.close(i);
            }
        }
    }

    /// The tick the clock is in now.
    fn clock_tick(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 * self.slots / self.period_us
    }

    /// Serves every tick that is due. Falling more than a period behind
    /// skips ticks (those slices are lost, the media clock still advances),
    /// as tt-peer and seatkeeper drop rather than burst.
    fn serve_due(&mut self) {
        let now_tick = self.clock_tick();
        if now_tick >= self.tick + self.slots {
            self.tick = now_tick + 1 - self.slots;
        }
        while self.tick <= now_tick {
            let tick = self.tick;
            self.tick += 1;
            let slot = (tick % self.slots) as usize;
            // Taken out for the walk (a `Vec` move, no allocation) so the
            // walk may close connections; nothing joins a slot meanwhile.
            let mut due = std::mem::take(&mut self.wheel[slot]);
            due.retain(|&(i, gen)| {
                let start = match &self.conns[i] {
                    Some(c) if c.gen == gen => c.start_tick,
                    _ => return false, // closed (or its slot reused)
                };
                if tick > start {
                    self.slice(i, (tick - start) / self.slots);
                }
                self.conns[i].is_some()
            });
            self.wheel[slot] = due;
        }
    }

    /// Slice number `produced` (media time `produced` periods) for session
    /// `i`: one writev, or a drop if the window is full or an earlier write
    /// is still queued.
    fn slice(&mut self, i: usize, produced: u64) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        let in_flight = c.sent - c.acked;
        if !c.unsent.is_empty()
            || in_flight >= self.args.window_slices
            || (in_flight + 1) * self.bytes as u64 > self.args.window_bytes
        {
            return; // dropped, newest wins: the next period tries again
        }
        c.sent += 1;
        let mut head = [0; MAX_HEADER + SLICE_HEADER_LEN];
        let n = super::frame_header(opcode::BINARY, SLICE_HEADER_LEN + self.bytes, &mut head);
        SliceHeader {
            flags: 3,
            kind: 0xFFFF,
            seq: c.sent,
            timestamp_us: produced * self.period_us,
        }
        .write(&mut head[n..n + SLICE_HEADER_LEN]);
        let off = (c.sent % 256) as usize;
        let parts = [
            IoSlice::new(&head[..n + SLICE_HEADER_LEN]),
            IoSlice::new(&self.pattern[off..off + self.bytes]),
        ];
        if c.send(&parts).is_err() {
            self.close(i);
        }
    }
}
