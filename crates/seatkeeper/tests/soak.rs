//! The soak (issue 8, item 5), against the real binary: for `SOAK_SECS`
//! seconds (default 90, so the suite stays short) workers churn the server
//! with every kind of client at once — streams ended by `bye`, resets and
//! half-closes, frozen readers, resumes after a reset or a FIN, floods, garbage,
//! upgrades that never say `hello`, plain HTTP — while a monitor checks
//! every 200 ms that held seats match listed sessions and never exceed
//! `--seats`. At the end every seat must come back, and the server's open
//! descriptors and RSS must be back near a baseline taken after warm-up.
//!
//! Long run by hand (figures in BENCHMARKS.md):
//! `SOAK_SECS=600 cargo test --release -p seatkeeper --test soak -- --nocapture`
#![cfg(target_os = "linux")]

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use seatkeeper_testkit::{wait_until, Client, Event, Server};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::sleep,
};

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");
const SEATS: u64 = 8;
/// Low, so that a flood is cheap to send and still unmistakable.
const MAX_MSG_RATE: usize = 200;
/// Small, so that an over-size message is cheap to send.
const MAX_MESSAGE_BYTES: usize = 64 << 10;
/// Every wait's bound: generous, the soak shares 2 cores with the suite.
const PATIENCE: Duration = Duration::from_secs(10);
/// Descriptors the server may hold above its baseline once idle (a
/// connection still in its close grace, the request that looks).
const FD_MARGIN: usize = 4;
/// RSS the server may keep above its baseline: allocator caches.
const RSS_MARGIN_KIB: u64 = 30 << 10;

/// What the workers share: the server, the deadline, tallies, failures.
struct Soak {
    server: Server,
    until: Instant,
    counts: Mutex<BTreeMap<&'static str, u64>>,
    failures: Mutex<Vec<String>>,
    /// Hellos sent and hellos answered: a seat reserved for a hello whose
    /// session is still starting is held but not yet listed, so the monitor
    /// allows as many unlisted seats as hellos could be in flight.
    hellos_sent: AtomicU64,
    hellos_answered: AtomicU64,
}

impl Soak {
    fn running(&self) -> bool {
        Instant::now() < self.until
    }

    fn count(&self, what: &'static str) {
        *self.lock_counts().entry(what).or_default() += 1;
    }

    fn counted(&self, what: &str) -> u64 {
        self.lock_counts().get(what).copied().unwrap_or(0)
    }

    fn lock_counts(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, u64>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, what: String) {
        self.count("failures");
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Keep the first ones: a broken server repeats itself.
        if f.len() < 50 {
            f.push(what);
        }
    }

    /// Waits until `GET /sessions/{id}` answers 404.
    async fn gone(&self, id: &str, limit: Duration) -> bool {
        let path = format!("/sessions/{id}");
        wait_until(limit, || async {
            matches!(self.server.get(&path).await, Ok((404, _))).then_some(())
        })
        .await
        .is_some()
    }
}

/// A xorshift generator: churn varies, with no dependency for it.
struct Rng(u64);

impl Rng {
    fn new(worker: u64) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self((t ^ worker.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

// ---- well-behaved clients (testkit's Client) ----

/// Sends `hello`; the first text reply, or `None` if there was none.
async fn hello(s: &Soak, c: &mut Client, extra: Value) -> Option<Value> {
    let mut msg = json!({"type": "hello", "client_id": "soak"});
    if let (Some(m), Some(e)) = (msg.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    s.hellos_sent.fetch_add(1, Relaxed);
    c.send(msg).await;
    let reply = loop {
        match c.next(PATIENCE).await {
            Some(Event::Text(v)) => break Some(v),
            Some(Event::Slice(..)) => continue,
            _ => break None,
        }
    };
    s.hellos_answered.fetch_add(1, Relaxed);
    reply
}

/// A fresh session's `ready`; `busy` is counted (and must close 1013).
async fn admit(s: &Soak, c: &mut Client, who: &str) -> Option<Value> {
    match hello(s, c, json!({})).await {
        Some(v) if v["type"] == "ready" => return Some(v),
        Some(v) if v["type"] == "busy" => {
            s.count("busy");
            match c.until_closed(PATIENCE).await {
                Some(Event::Closed(Some(1013))) => {}
                other => s.fail(format!("{who}: busy closed with {other:?}")),
            }
        }
        other => s.fail(format!("{who}: hello answered {other:?}")),
    }
    None
}

/// Reads and acks slices for `dur`; slices seen and the last seq.
async fn stream(c: &mut Client, dur: Duration) -> Result<(u64, u64), String> {
    let end = tokio::time::Instant::now() + dur;
    let (mut n, mut last) = (0, 0);
    while let Some(left) = end.checked_duration_since(tokio::time::Instant::now()) {
        match c.next(left).await {
            Some(Event::Slice(h, _)) => {
                n += 1;
                last = h.seq;
                c.send(json!({"type": "ack", "seq": h.seq})).await;
            }
            Some(Event::Text(v)) if v["type"] == "stats" => {}
            None => break,
            other => return Err(format!("stream ended after {n} slices: {other:?}")),
        }
    }
    Ok((n, last))
}

/// `bye`, a 1000 close, and the session gone at once.
async fn bye(s: &Soak, c: &mut Client, id: &str, who: &str) {
    c.send(json!({"type": "bye"})).await;
    match c.until_closed(PATIENCE).await {
        Some(Event::Closed(Some(1000))) => {}
        other => return s.fail(format!("{who} {id}: bye closed with {other:?}")),
    }
    if !s.gone(id, PATIENCE).await {
        s.fail(format!("{who} {id}: still listed after bye"));
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// Connect, hello, stream, bye.
async fn streamer(s: Arc<Soak>, mut rng: Rng) {
    while s.running() {
        let mut c = Client::connect(s.server.addr).await;
        let Some(ready) = admit(&s, &mut c, "streamer").await else {
            sleep(Duration::from_millis(200)).await;
            continue;
        };
        let id = str_of(&ready, "session_id");
        match stream(&mut c, rng.millis(500, 2000)).await {
            Ok((n, _)) if n > 0 => {}
            other => {
                s.fail(format!("streamer {id}: {other:?}"));
                continue;
            }
        }
        bye(&s, &mut c, &id, "streamer").await;
        s.count("bye");
    }
}

/// Connect, hello, stream, then a reset or a half-close: the session
/// detaches and expires at the end of its resume window.
async fn dropper(s: Arc<Soak>, mut rng: Rng) {
    while s.running() {
        let mut c = Client::connect(s.server.addr).await;
        if admit(&s, &mut c, "dropper").await.is_some() {
            if let Err(e) = stream(&mut c, rng.millis(200, 800)).await {
                s.fail(format!("dropper: {e}"));
            }
            if rng.coin() {
                c.rst();
                s.count("rst");
            } else {
                let c = c.fin().await;
                sleep(Duration::from_millis(100)).await;
                drop(c);
                s.count("fin");
            }
        }
        sleep(rng.millis(300, 1000)).await;
    }
}

/// Connect, hello, stream, lose the transport (a reset, or a FIN without a
/// close frame), resume (one to three times), bye.
async fn resumer(s: Arc<Soak>, mut rng: Rng) {
    'outer: while s.running() {
        let mut c = Client::connect(s.server.addr).await;
        let Some(ready) = admit(&s, &mut c, "resumer").await else {
            sleep(Duration::from_millis(200)).await;
            continue;
        };
        let id = str_of(&ready, "session_id");
        let mut token = str_of(&ready, "resume_token");
        let mut last = match stream(&mut c, Duration::from_millis(300)).await {
            Ok((n, last)) if n > 0 => last,
            other => {
                s.fail(format!("resumer {id}: {other:?}"));
                continue;
            }
        };
        for _ in 0..1 + rng.next() % 3 {
            // A half-closed socket is kept open until the resume is done:
            // closing it with slices unread would turn the FIN into a reset.
            let mut half_closed = None;
            let how = if rng.coin() {
                c.rst();
                "resume_after_rst"
            } else {
                half_closed = Some(c.fin().await);
                "resume_after_fin"
            };
            c = Client::connect(s.server.addr).await;
            let again = hello(&s, &mut c, json!({"resume": token})).await;
            let Some(again) = again else {
                s.fail(format!("resumer {id}: no answer to a resume"));
                continue 'outer;
            };
            if again["resumed"] != true || again["session_id"] != id {
                s.fail(format!("resumer {id} ({how}): resume answered {again}"));
                continue 'outer;
            }
            token = str_of(&again, "resume_token");
            match c.next(PATIENCE).await {
                Some(Event::Slice(h, _)) if h.keyframe() && h.seq > last => {}
                other => {
                    s.fail(format!(
                        "resumer {id}: first after resume (last {last}): {other:?}"
                    ));
                    continue 'outer;
                }
            }
            last = match stream(&mut c, Duration::from_millis(300)).await {
                Ok((_, l)) => l.max(last),
                Err(e) => {
                    s.fail(format!("resumer {id}: {e}"));
                    continue 'outer;
                }
            };
            drop(half_closed);
            s.count(how);
        }
        bye(&s, &mut c, &id, "resumer").await;
    }
}

/// Connect (a small receive buffer, or the default), hello, stream a
/// little, then never read again: the reaper must release the seat.
async fn freezer(s: Arc<Soak>, mut rng: Rng) {
    while s.running() {
        let small = rng.coin();
        let mut c = Client::connect_with(s.server.addr, small.then_some(8 << 10)).await;
        let Some(ready) = admit(&s, &mut c, "freezer").await else {
            sleep(Duration::from_millis(200)).await;
            continue;
        };
        let id = str_of(&ready, "session_id");
        if let Err(e) = stream(&mut c, Duration::from_millis(300)).await {
            s.fail(format!("freezer {id}: {e}"));
            continue;
        }
        // Frozen: the socket stays open and unread. Stall grace 2 s, pong
        // timeout 4 s; 20 s is the generous bound. A reaped session is
        // released at once: it must never be seen waiting for a resume.
        let path = format!("/sessions/{id}");
        let verdict = wait_until(Duration::from_secs(20), || async {
            match s.server.get(&path).await {
                Ok((404, _)) => Some(Ok(())),
                Ok((200, body)) => serde_json::from_str::<Value>(&body)
                    .ok()
                    .filter(|v| v["state"] == "detached")
                    .map(|v| Err(v.to_string())),
                _ => None,
            }
        })
        .await;
        match verdict {
            Some(Ok(())) => s.count("frozen_reaped"),
            Some(Err(v)) => s.fail(format!(
                "freezer: a frozen session was detached, not released: {v}"
            )),
            None => s.fail(format!(
                "freezer {id} (small buffer: {small}): not reaped in 20 s"
            )),
        }
        drop(c);
        // A reaped session cannot be resumed: its token is a plain hello now.
        let mut c = Client::connect(s.server.addr).await;
        let token = str_of(&ready, "resume_token");
        match hello(&s, &mut c, json!({"resume": token})).await {
            Some(v) if v["type"] == "ready" && v["resumed"] == false && v["session_id"] != id => {
                bye(&s, &mut c, &str_of(&v, "session_id"), "freezer").await;
                s.count("reaped_not_resumed");
            }
            Some(v) if v["type"] == "busy" => s.count("busy"),
            other => s.fail(format!(
                "freezer {id}: resuming a reaped session answered {other:?}"
            )),
        }
    }
}

// ---- hostile clients (a WebSocket written out by hand) ----

const TEXT: u8 = 1;
const BINARY: u8 = 2;
const CLOSE: u8 = 8;

/// One masked client frame.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
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
enum Got {
    Text(Value),
    Binary,
    Close(Option<u16>),
    Eof,
    /// The error, read only through `Debug` in failure messages.
    Reset(#[allow(dead_code)] String),
    Timeout,
}

/// A WebSocket client for what a library client will not do: binary
/// frames, a flood in one write, an upgrade that never says `hello`.
struct RawWs {
    s: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    async fn connect(addr: SocketAddr) -> Result<Self, String> {
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
    async fn fill(&mut self, limit: Duration) -> Option<Got> {
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

    async fn send(&mut self, opcode: u8, payload: &[u8]) {
        // The server may already have cut us off: what it says is read next.
        let _ = self.s.write_all(&frame(opcode, payload)).await;
    }

    /// The next data or close frame (pings and pongs skipped).
    async fn next(&mut self, limit: Duration) -> Got {
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

    /// Reads until the connection ends; the end and the `error` codes seen.
    async fn until_closed(&mut self) -> (Got, Vec<String>) {
        let mut errors = Vec::new();
        let end = tokio::time::Instant::now() + PATIENCE;
        while let Some(left) = end.checked_duration_since(tokio::time::Instant::now()) {
            match self.next(left).await {
                Got::Text(v) if v["type"] == "error" => errors.push(str_of(&v, "code")),
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

    /// Sends `hello`; the first text reply.
    async fn hello(&mut self, s: &Soak) -> Option<Value> {
        s.hellos_sent.fetch_add(1, Relaxed);
        self.send(TEXT, br#"{"type":"hello","client_id":"soak-raw"}"#)
            .await;
        let reply = loop {
            match self.next(PATIENCE).await {
                Got::Text(v) => break Some(v),
                Got::Binary => continue,
                _ => break None,
            }
        };
        s.hellos_answered.fetch_add(1, Relaxed);
        reply
    }

    /// Hello; `true` when a session started (a `busy` is counted).
    async fn admitted(&mut self, s: &Soak, who: &str) -> bool {
        match self.hello(s).await {
            Some(v) if v["type"] == "ready" => true,
            Some(v) if v["type"] == "busy" => {
                s.count("busy");
                false
            }
            other => {
                s.fail(format!("{who}: hello answered {other:?}"));
                false
            }
        }
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

/// Hello, then five times `--max-msg-rate` acks in one write: closed 1008.
async fn flooder(s: Arc<Soak>, mut rng: Rng) {
    let burst = frame(TEXT, br#"{"type":"ack","seq":0}"#).repeat(5 * MAX_MSG_RATE);
    while s.running() {
        match RawWs::connect(s.server.addr).await {
            Ok(mut w) => {
                if w.admitted(&s, "flooder").await {
                    let _ = w.s.write_all(&burst).await;
                    match w.until_closed().await {
                        (Got::Close(Some(1008)), e) if e.iter().any(|c| c == "rate_limited") => {
                            s.count("flood_closed_1008")
                        }
                        other => s.fail(format!("flooder: {other:?}")),
                    }
                }
            }
            Err(e) => s.fail(format!("flooder: {e}")),
        }
        sleep(rng.millis(200, 800)).await;
    }
}

/// One kind of bad input and what it must cost.
#[derive(Clone, Copy)]
struct Bad<'a> {
    /// Its tally.
    name: &'static str,
    /// Sent after a `ready` (else as the first message).
    in_session: bool,
    opcode: u8,
    payload: &'a [u8],
    /// The close code; `None`: an `unknown_type` error, connection kept.
    close: Option<u16>,
}

/// Each rule of the contract's "bad input" list, in turn, before and after
/// `hello`, with the close code it must cost.
async fn garbler(s: Arc<Soak>, mut rng: Rng) {
    let big = format!(
        r#"{{"type":"params","pad":"{}"}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    let bad = |name, in_session, opcode, payload, close| Bad {
        name,
        in_session,
        opcode,
        payload,
        close,
    };
    let cases = [
        bad(
            "garbage_first_not_json_1007",
            false,
            TEXT,
            b"not json",
            Some(1007),
        ),
        bad(
            "garbage_first_binary_1003",
            false,
            BINARY,
            b"\x01\x02",
            Some(1003),
        ),
        bad(
            "garbage_first_not_hello_1008",
            false,
            TEXT,
            br#"{"type":"ack","seq":1}"#,
            Some(1008),
        ),
        bad(
            "garbage_not_json_1007",
            true,
            TEXT,
            b"{\"type\":",
            Some(1007),
        ),
        bad("garbage_binary_1003", true, BINARY, &[0u8; 32], Some(1003)),
        bad(
            "garbage_too_big_1009",
            true,
            TEXT,
            big.as_bytes(),
            Some(1009),
        ),
        bad(
            "garbage_unknown_type_kept",
            true,
            TEXT,
            br#"{"type":"warp"}"#,
            None,
        ),
    ];
    let mut i = rng.next() as usize;
    while s.running() {
        i += 1;
        let Bad {
            name,
            in_session,
            opcode,
            payload,
            close: code,
        } = cases[i % cases.len()];
        let mut w = match RawWs::connect(s.server.addr).await {
            Ok(w) => w,
            Err(e) => {
                s.fail(format!("{name}: {e}"));
                continue;
            }
        };
        if in_session && !w.admitted(&s, name).await {
            continue;
        }
        w.send(opcode, payload).await;
        if code.is_none() {
            let answer = loop {
                match w.next(PATIENCE).await {
                    Got::Text(v) if v["type"] == "stats" => continue,
                    Got::Binary => continue,
                    other => break other,
                }
            };
            if !matches!(&answer, Got::Text(v) if v["code"] == "unknown_type") {
                s.fail(format!("{name}: answered {answer:?}"));
                continue;
            }
            w.send(TEXT, br#"{"type":"bye"}"#).await;
        }
        match w.until_closed().await {
            (Got::Close(got), _) if got == code.or(Some(1000)) => s.count(name),
            other => s.fail(format!("{name}: {other:?}")),
        }
        sleep(rng.millis(50, 300)).await;
    }
}

/// Upgrades that never say `hello`, dropped after a second (FIN or RST).
async fn mute(s: Arc<Soak>, mut rng: Rng) {
    while s.running() {
        match RawWs::connect(s.server.addr).await {
            Ok(w) => {
                sleep(Duration::from_secs(1)).await;
                if rng.coin() {
                    let _ = w.s.set_zero_linger();
                }
                drop(w);
                s.count("mute_upgrade");
            }
            Err(e) => s.fail(format!("mute: {e}")),
        }
    }
}

/// Plain HTTP on the same port.
async fn browser(s: Arc<Soak>, _rng: Rng) {
    let routes: [(&str, &[u16]); 5] = [
        ("/healthz", &[200]),
        ("/readyz", &[200, 503]),
        ("/metrics", &[200]),
        ("/no/such/route", &[404]),
        ("/sessions/no-such-session", &[404]),
    ];
    while s.running() {
        for (path, ok) in routes {
            match s.server.get(path).await {
                Ok((status, _)) if ok.contains(&status) => s.count("http"),
                other => s.fail(format!("GET {path}: {other:?}")),
            }
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// Every 200 ms: seats held equal sessions listed (give or take hellos in
/// flight), never over `--seats`, and `lockHeld` exactly while one is held.
async fn monitor(s: Arc<Soak>) -> (u64, u64, u64) {
    let (mut samples, mut max_held, mut starting) = (0, 0, 0);
    while s.running() {
        let answered = s.hellos_answered.load(Relaxed);
        let got = s.server.get("/sessions").await;
        let in_flight = s.hellos_sent.load(Relaxed) - answered;
        let v: Value = match got.map(|(_, b)| serde_json::from_str(&b)) {
            Ok(Ok(v)) => v,
            other => {
                s.fail(format!("GET /sessions: {other:?}"));
                sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        samples += 1;
        let held = v["seats"]["held"].as_u64().unwrap_or(u64::MAX);
        let listed = v["sessions"].as_array().map_or(0, |a| a.len() as u64);
        max_held = max_held.max(held);
        if held != listed {
            starting += 1;
        }
        let states_ok = v["sessions"].as_array().is_some_and(|a| {
            a.iter().all(|x| {
                ["streaming", "detached", "closing"].contains(&x["state"].as_str().unwrap_or(""))
            })
        });
        if v["seats"]["total"] != SEATS
            || held > SEATS
            || listed > held
            || held - listed > in_flight
            || v["lockHeld"] != (held > 0)
            || !states_ok
        {
            s.fail(format!(
                "seat invariant broken ({in_flight} hellos in flight): {v}"
            ));
        }
        sleep(Duration::from_millis(200)).await;
    }
    (samples, max_held, starting)
}

// ---- the server process from outside ----

/// The server's pid: the process whose command line has `--listen ADDR`.
fn pid_of(addr: SocketAddr) -> Option<u32> {
    let want = addr.to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        args.windows(2)
            .any(|w| w[0] == b"--listen" && w[1] == want.as_bytes())
            .then_some(pid)
    })
}

/// Open descriptors and resident memory (KiB) of a process.
fn usage(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (fds, rss)
}

async fn metrics(server: &Server) -> BTreeMap<String, f64> {
    let (_, text) = server.get("/metrics").await.expect("GET /metrics");
    text.lines()
        .filter(|l| l.starts_with("seatkeeper_"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// A few ordinary sessions and requests, so that what the server keeps for
/// good (thread stacks, pools, the allocator's first arenas) is in the baseline.
async fn warm_up(server: &Server) {
    for _ in 0..3 {
        let mut c = Client::connect(server.addr).await;
        let ready = c.hello(json!({})).await;
        assert_eq!(ready["type"], "ready", "warm-up: {ready}");
        c.stream_for(Duration::from_millis(500), true).await;
        c.send(json!({"type": "bye"})).await;
        c.until_closed(PATIENCE).await;
    }
    for path in ["/healthz", "/metrics", "/sessions", "/"] {
        server.get(path).await.expect("warm-up GET");
    }
    assert!(server.wait_released(PATIENCE).await.is_some());
    sleep(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_keeps_seats_equal_to_sessions_and_leaves_nothing_behind() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(90);
    let args = format!(
        "--seats {SEATS} --engine synthetic:50:4096 --dead-client-stall-s 2 \
         --watchdog-interval-ms 100 --pong-timeout-s 4 --ping-interval-s 1 \
         --resume-window-s 2 --max-msg-rate {MAX_MSG_RATE} --max-message-bytes {MAX_MESSAGE_BYTES}"
    );
    let args: Vec<&str> = args.split_whitespace().collect();
    let server = Server::start(BIN, &args).await;
    let pid = pid_of(server.addr).expect("the server's pid from /proc");
    warm_up(&server).await;
    let (fds0, rss0) = usage(pid);

    let started = Instant::now();
    let s = Arc::new(Soak {
        server,
        until: started + Duration::from_secs(secs),
        counts: Mutex::default(),
        failures: Mutex::default(),
        hellos_sent: AtomicU64::new(0),
        hellos_answered: AtomicU64::new(0),
    });
    let mut workers = Vec::new();
    for (i, name) in [
        "streamer", "streamer", "dropper", "resumer", "freezer", "flooder", "garbler", "mute",
        "browser",
    ]
    .into_iter()
    .enumerate()
    {
        let (s, rng) = (Arc::clone(&s), Rng::new(i as u64));
        let task = match name {
            "streamer" => tokio::spawn(streamer(s, rng)),
            "dropper" => tokio::spawn(dropper(s, rng)),
            "resumer" => tokio::spawn(resumer(s, rng)),
            "freezer" => tokio::spawn(freezer(s, rng)),
            "flooder" => tokio::spawn(flooder(s, rng)),
            "garbler" => tokio::spawn(garbler(s, rng)),
            "mute" => tokio::spawn(mute(s, rng)),
            _ => tokio::spawn(browser(s, rng)),
        };
        workers.push((name, task));
    }
    let (samples, max_held, starting) = monitor(Arc::clone(&s)).await;
    // Each worker finishes its round: at most a frozen client's 20 s wait
    // and a few PATIENCE-bounded steps.
    for (name, task) in workers {
        match tokio::time::timeout(Duration::from_secs(60), task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => s.fail(format!("{name} worker panicked: {e}")),
            Err(_) => s.fail(format!("{name} worker did not stop within 60 s")),
        }
    }
    let churn = started.elapsed();

    // Everything is closed: every seat must come back (detached sessions
    // after their 2 s resume window), then the descriptors.
    let released = s.server.wait_released(Duration::from_secs(30)).await;
    let fds_back = wait_until(Duration::from_secs(20), || async {
        (usage(pid).0 <= fds0 + FD_MARGIN).then_some(())
    })
    .await;
    let (fds1, rss1) = usage(pid);
    let m = metrics(&s.server).await;
    let metric = |k: &str| m.get(k).copied().unwrap_or(-1.0);
    let ended: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("seatkeeper_sessions_ended_total{"))
        .map(|(_, v)| v)
        .sum();

    println!(
        "soak: {secs} s of churn ({:.0} s with the drain), 8 seats",
        churn.as_secs_f64()
    );
    println!(
        "sessions: {} started, {ended} ended; /sessions sampled {samples} times, \
         max held {max_held}, {starting} samples with a seat still starting",
        metric("seatkeeper_sessions_started_total")
    );
    for (k, v) in &m {
        if k.contains("ended_total{") || k.contains("reaps_total{") {
            println!("  {k} {v}");
        }
    }
    for k in [
        "busy",
        "refused",
        "upgrades",
        "messages_received",
        "messages_refused",
        "resumes",
        "takeovers",
        "accept_errors",
    ] {
        println!(
            "  seatkeeper_{k}_total {}",
            metric(&format!("seatkeeper_{k}_total"))
        );
    }
    println!("client outcomes: {:?}", s.lock_counts());
    println!("fds: {fds0} after warm-up, {fds1} at the end (margin {FD_MARGIN})");
    println!(
        "VmRSS: {} KiB after warm-up, {} KiB at the end (+{} KiB, margin {} KiB)",
        rss0,
        rss1,
        rss1.saturating_sub(rss0),
        RSS_MARGIN_KIB
    );
    let failures = s.failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for f in &failures {
        println!("FAILURE: {f}");
    }

    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        s.counted("failures"),
        failures.first()
    );
    assert!(
        released.is_some(),
        "seats still held: {}",
        s.server.sessions().await
    );
    assert!(
        fds_back.is_some(),
        "descriptors: {fds0} after warm-up, {fds1} at the end"
    );
    assert!(
        rss1 <= rss0 + RSS_MARGIN_KIB,
        "VmRSS grew from {rss0} KiB to {rss1} KiB"
    );
    assert_eq!(
        ended,
        metric("seatkeeper_sessions_started_total"),
        "every session ended"
    );
    assert!(
        samples >= secs,
        "the monitor sampled only {samples} times in {secs} s"
    );
    // The churn really happened: each kind of client got through at least once.
    for what in [
        "bye",
        "resume_after_rst",
        "resume_after_fin",
        "reaped_not_resumed",
        "frozen_reaped",
        "flood_closed_1008",
        "garbage_first_binary_1003",
        "garbage_first_not_json_1007",
        "mute_upgrade",
        "http",
    ] {
        assert!(
            s.counted(what) > 0,
            "no {what} in {secs} s: {:?}",
            s.lock_counts()
        );
    }
    let reaps: f64 = ["send_stall", "peer_close", "unresponsive"]
        .iter()
        .map(|r| metric(&format!("seatkeeper_reaps_total{{reason=\"{r}\"}}")))
        .sum();
    let frozen = s.counted("frozen_reaped") as f64;
    assert!(
        reaps >= frozen,
        "every frozen client was reaped by the reaper"
    );
    // And its session ended as reaped, not as whatever its reader saw of the
    // reaper's abort (a lost transport, or a "protocol error").
    assert!(
        metric("seatkeeper_sessions_ended_total{reason=\"reaped\"}") >= frozen,
        "{frozen} frozen clients reaped, but fewer sessions ended as reaped"
    );
    assert!(usage(pid).0 > 0, "the server is still running");
}
