//! `floor-peer --client N`: the leanest client for the same subset, so the
//! kernel's floor can be told from the client's cost. One thread, one
//! `mio::Poll`, one read per readable event and one cumulative ack per
//! read that brought slices — the C epoll client's pattern — and nothing
//! per slice but a header decode and a histogram bump.
//!
//! It speaks to any server of the subset (floor-peer, seatkeeper,
//! tt-peer) and prints one JSON line shaped like `seatkeeper load`'s
//! report (the fields bench/curve.sh reads). Latency is measured the same
//! way: against each session's first slice, after a settle time.

use std::{
    io::{self, Read, Write},
    net::SocketAddr,
    time::{Duration, Instant},
};

use mio::{net::TcpStream, Events, Interest, Poll, Token};
use serde_json::{json, Value};

use super::{opcode, parse_frame};

/// Latency histogram resolution and range: 100 µs buckets up to 10 s.
const BUCKET_US: u64 = 100;
const BUCKETS: usize = 100_001;

/// What to run.
#[derive(Debug, Clone)]
pub struct ClientArgs {
    /// The server (its `/ws` route is used).
    pub addr: SocketAddr,
    /// Sessions to open.
    pub sessions: usize,
    /// How long, from the first connect.
    pub duration: Duration,
    /// Slices read before this are not counted in the latency figures.
    pub settle: Duration,
    /// Handshakes in progress at once.
    pub connect_concurrency: usize,
    /// Ack once this many slices are unacked (1: every read that brought
    /// a slice, like `seatkeeper load`; the window is 16).
    pub ack_every: u64,
}

#[derive(PartialEq)]
enum Phase {
    /// Connect in progress; the request goes out on the writable edge.
    Connecting,
    /// Waiting for `101`.
    Upgrading,
    /// Waiting for `ready`.
    Hello,
    Streaming,
}

struct Conn {
    stream: TcpStream,
    phase: Phase,
    carry: Vec<u8>,
    /// The first slice: when it arrived, its media timestamp.
    origin: Option<(Instant, u64)>,
    last_seq: u64,
    acked: u64,
}

#[derive(Default)]
struct Tally {
    ready: usize,
    errors: u64,
    refused: u64,
    ended: u64,
    slices: u64,
    gaps: u64,
    hist: Vec<u64>,
    max_us: u64,
}

/// Runs the client; returns the report (`seatkeeper load`'s shape).
pub fn run(args: &ClientArgs) -> io::Result<Value> {
    let mut poll = Poll::new()?;
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(args.sessions);
    let mut t = Tally {
        hist: vec![0; BUCKETS],
        ..Tally::default()
    };
    let start = Instant::now();
    let (end, settle) = (start + args.duration, start + args.settle);
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 64 << 10];
    let mut handshaking = 0;
    while Instant::now() < end {
        // Open more while under the handshake budget.
        while conns.len() < args.sessions && handshaking < args.connect_concurrency.max(1) {
            let i = conns.len();
            conns.push(None);
            match TcpStream::connect(args.addr).and_then(|mut s| {
                let both = Interest::READABLE | Interest::WRITABLE;
                poll.registry().register(&mut s, Token(i), both)?;
                Ok(s)
            }) {
                Ok(stream) => {
                    handshaking += 1;
                    conns[i] = Some(Conn {
                        stream,
                        phase: Phase::Connecting,
                        carry: Vec::new(),
                        origin: None,
                        last_seq: 0,
                        acked: 0,
                    });
                }
                Err(_) => t.errors += 1,
            }
        }
        let left = end.saturating_duration_since(Instant::now());
        match poll.poll(&mut events, Some(left)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        for ev in &events {
            let i = ev.token().0;
            let Some(c) = conns[i].as_mut() else { continue };
            let was_handshaking = c.phase != Phase::Streaming;
            let alive = if c.phase == Phase::Connecting && ev.is_writable() {
                upgrade(c, args.addr)
            } else {
                true
            };
            let alive = alive
                && (!(ev.is_readable() || ev.is_read_closed())
                    || read(c, &mut scratch, now, settle, &mut t, args.ack_every.max(1)));
            let done_handshaking = was_handshaking && (!alive || c.phase == Phase::Streaming);
            if done_handshaking {
                handshaking -= 1;
            }
            if !alive {
                if !was_handshaking {
                    t.ended += 1;
                } else if c.phase != Phase::Streaming {
                    t.errors += 1;
                }
                conns[i] = None;
            }
        }
    }
    Ok(report(args, &t, start.elapsed()))
}

/// Connected: sends the upgrade request (a fixed key: the client does not
/// check the answer's accept hash, only its `101`).
fn upgrade(c: &mut Conn, addr: SocketAddr) -> bool {
    if c.stream.peer_addr().is_err() {
        return false; // the connect failed
    }
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    c.phase = Phase::Upgrading;
    c.stream.write_all(req.as_bytes()).is_ok()
}

/// Reads until a read comes back short (the socket is drained; later data
/// raises a new edge), handling everything whole; then one cumulative ack
/// if `ack_every` slices wait for one.
fn read(
    c: &mut Conn,
    scratch: &mut [u8],
    now: Instant,
    settle: Instant,
    t: &mut Tally,
    ack_every: u64,
) -> bool {
    loop {
        let n = match c.stream.read(scratch) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        let mut carry = std::mem::take(&mut c.carry);
        let ok = if carry.is_empty() {
            let (ok, used) = consume(c, &scratch[..n], now, settle, t);
            carry.extend_from_slice(&scratch[used..n]); // rare: a split frame
            ok
        } else {
            carry.extend_from_slice(&scratch[..n]);
            let (ok, used) = consume(c, &carry, now, settle, t);
            carry.drain(..used);
            ok
        };
        c.carry = carry;
        if !ok {
            return false;
        }
        if n < scratch.len() {
            break;
        }
    }
    if c.last_seq >= c.acked + ack_every {
        c.acked = c.last_seq;
        return ack(c);
    }
    true
}

/// Handles every whole message at the start of `buf`: (still alive, bytes used).
fn consume(
    c: &mut Conn,
    buf: &[u8],
    now: Instant,
    settle: Instant,
    t: &mut Tally,
) -> (bool, usize) {
    let mut used = 0;
    loop {
        let rest = &buf[used..];
        if c.phase == Phase::Upgrading {
            let Some(end) = super::find(rest, b"\r\n\r\n") else {
                return (true, used);
            };
            if !rest.starts_with(b"HTTP/1.1 101") {
                return (false, used);
            }
            used += end + 4;
            c.phase = Phase::Hello;
            // A zero masking key is valid (RFC 6455 wants it unpredictable
            // for proxies; on loopback it only saves the XOR).
            let hello = br#"{"type":"hello","client_id":"floor"}"#;
            let mut f = [0u8; 6 + 36];
            f[..2].copy_from_slice(&[0x81, 0x80 | hello.len() as u8]);
            f[6..].copy_from_slice(hello);
            if c.stream.write_all(&f).is_err() {
                return (false, used);
            }
            continue;
        }
        let Some(f) = parse_frame(rest) else {
            return (true, used);
        };
        used += f.end;
        let p = &rest[f.start..f.end];
        match f.opcode {
            opcode::BINARY if p.len() >= 20 => {
                let seq = u64::from_le_bytes(p[4..12].try_into().expect("8 bytes"));
                let ts = u64::from_le_bytes(p[12..20].try_into().expect("8 bytes"));
                t.slices += 1;
                if c.last_seq != 0 && seq > c.last_seq + 1 {
                    t.gaps += seq - c.last_seq - 1;
                }
                c.last_seq = c.last_seq.max(seq);
                let (a0, t0) = *c.origin.get_or_insert((now, ts));
                if now >= settle {
                    let due = a0 + Duration::from_micros(ts.saturating_sub(t0));
                    let late = now.saturating_duration_since(due).as_micros() as u64;
                    t.hist[((late / BUCKET_US) as usize).min(BUCKETS - 1)] += 1;
                    t.max_us = t.max_us.max(late);
                }
            }
            opcode::TEXT if c.phase == Phase::Hello => {
                if super::is_type(p, "ready") {
                    c.phase = Phase::Streaming;
                    t.ready += 1;
                } else {
                    t.refused += 1;
                    return (false, used);
                }
            }
            // seatkeeper pings and ends a session that does not answer.
            opcode::PING if p.len() <= 125 => {
                let mut f = [0u8; 6 + 125];
                f[..2].copy_from_slice(&[0x80 | opcode::PONG, 0x80 | p.len() as u8]);
                f[6..6 + p.len()].copy_from_slice(p);
                if c.stream.write_all(&f[..6 + p.len()]).is_err() {
                    return (false, used);
                }
            }
            opcode::CLOSE => return (false, used),
            _ => {}
        }
    }
}

/// One cumulative ack, built on the stack: `{"seq":N,"type":"ack"}`.
fn ack(c: &mut Conn) -> bool {
    let mut f = [0u8; 64];
    let mut body = &mut f[6..];
    let room = body.len();
    if write!(body, r#"{{"seq":{},"type":"ack"}}"#, c.acked).is_err() {
        return false;
    }
    let len = room - body.len();
    f[0] = 0x81;
    f[1] = 0x80 | len as u8;
    c.stream.write_all(&f[..6 + len]).is_ok()
}

fn report(args: &ClientArgs, t: &Tally, elapsed: Duration) -> Value {
    let count: u64 = t.hist.iter().sum();
    let pct = |q: f64| -> Option<u64> {
        let want = ((count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        (count > 0).then(|| {
            t.hist
                .iter()
                .position(|&n| {
                    seen += n;
                    seen >= want
                })
                .map_or(t.max_us, |b| b as u64 * BUCKET_US)
        })
    };
    let secs = elapsed.as_secs_f64().max(1e-9);
    json!({
        "client": "floor-peer --client", "ack_every": args.ack_every,
        "sessions": args.sessions, "ready": t.ready, "errors": t.errors,
        "refused": t.refused, "elapsed_s": secs, "slices": t.slices,
        "slices_per_s": t.slices as f64 / secs, "seq_gaps": t.gaps, "dropped": 0,
        "latency": {"count": count, "p50_us": pct(0.5), "p99_us": pct(0.99),
            "p999_us": pct(0.999), "max_us": t.max_us},
        "ended_early": if t.ended > 0 { json!({"ended": t.ended}) } else { json!({}) },
    })
}
