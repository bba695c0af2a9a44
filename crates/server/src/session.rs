//! A session: the unit that holds a seat, owns an engine session and
//! outlives any one connection (resume).
//!
//! [`Session`] is the shared part: the outbox, the attached connection, the
//! figures `/sessions` shows. [`run`] is the session's task: it owns the
//! seat, the engine session and the lease, and decides when the session
//! ends. Connections (see [`conn`]) report to it through a bounded channel.
//!
//! # Layout
//! - [`outbox`]: the pure send policy (window, drops, coalescing).
//! - [`conn`]: one WebSocket connection's reader and writer.

pub mod conn;
pub(crate) mod goodbye;
pub mod outbox;

use std::{
    any::Any,
    panic::AssertUnwindSafe,
    sync::{
        atomic::{AtomicU64, AtomicU8, Ordering::Relaxed},
        Arc, Mutex, MutexGuard, OnceLock,
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::FutureExt;
use seatkeeper_engine::{
    stats::SessionStats, Control, EngineError, EngineSession, Progress, Slice, SliceSink,
};
use seatkeeper_liveness::Reason;
use seatkeeper_protocol::{close, messages::Stats, ClientMsg, ServerMsg};
use serde_json::{json, Map, Value};
use tokio::{
    sync::{mpsc, Notify},
    time::{interval, sleep_until, Instant, MissedTickBehavior},
};
use tracing::{info, warn};

use crate::{app::App, ids, metrics::EndReason, registry::Seat};
use conn::{Conn, ConnEnd};
use outbox::{Outbox, Overflow};

/// Session states as `/sessions` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// A connection is attached and slices flow.
    Streaming = 0,
    /// The connection was lost; waiting for a resume.
    Detached = 1,
    /// The session is ending.
    Closing = 2,
}

impl State {
    fn name(v: u8) -> &'static str {
        match v {
            0 => "streaming",
            1 => "detached",
            _ => "closing",
        }
    }
}

/// Events for the session task.
#[derive(Debug)]
pub enum Event {
    /// Knobs for the engine.
    Params(Map<String, Value>),
    /// A connection finished. Boxed: a channel's block holds 32 events
    /// whatever its use, and an unboxed `ConnEnd` made that 4.6 KiB per
    /// session.
    ConnEnded(u64, Box<ConnEnd>),
    /// A connection was attached (fresh or resumed).
    Attached(u64),
}

/// A request to end the session from outside its task. Unlike an event it
/// cannot be lost to a full channel: the first one is kept in a slot and
/// the task is woken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndRequest {
    /// An admin ended the session.
    Evict,
    /// A `bye` came through the control bus.
    Bye,
    /// Undroppable messages piled past the outbox's bound.
    Overflow,
}

/// Capacity of a session's event channel.
const EVENTS: usize = 64;
/// Shortest time between two `progress` reports to the engine.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

struct Slot {
    conn: Option<Arc<Conn>>,
    closed: bool,
    /// The first request to end the session, until the task takes it.
    end: Option<EndRequest>,
}

/// The shared half of a session.
pub struct Session {
    /// Session id (stable across resumes).
    pub id: String,
    /// Client label from `hello`.
    pub client_id: Option<String>,
    /// Wall-clock start, ms since the epoch.
    pub started_at_ms: u64,
    /// `ready.engine` of this session.
    pub engine_info: Mutex<Value>,
    outbox: Mutex<Outbox>,
    /// Wakes the attached connection's writer.
    pub(crate) wake: Notify,
    slot: Mutex<Slot>,
    state: AtomicU8,
    resumes: AtomicU64,
    rtt_us: AtomicU64,
    /// Slices the engine produced (pushed, sent or not).
    produced: AtomicU64,
    /// The client's last reported buffer depth (`f64` bits; NaN: none).
    buffer_ms: AtomicU64,
    /// The engine's latest `stats` for this session.
    pub(crate) engine_stats: OnceLock<SessionStats>,
    events: mpsc::Sender<Event>,
    /// Wakes the task for a request in `slot.end` (a stored permit if the
    /// task is busy, so no request is missed).
    end_requested: Notify,
    app: Arc<App>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why an attach did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl Session {
    /// A new session and the receiver of its events.
    pub(crate) fn new(
        app: &Arc<App>,
        client_id: Option<String>,
    ) -> (Arc<Self>, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(EVENTS);
        let session = Arc::new(Self {
            id: ids::session_id(),
            client_id,
            started_at_ms: ids::now_ms(),
            engine_info: Mutex::new(Value::Null),
            outbox: Mutex::new(Outbox::new(app.config.window, app.config.outbox)),
            wake: Notify::new(),
            slot: Mutex::new(Slot {
                conn: None,
                closed: false,
                end: None,
            }),
            state: AtomicU8::new(State::Streaming as u8),
            resumes: AtomicU64::new(0),
            rtt_us: AtomicU64::new(u64::MAX),
            produced: AtomicU64::new(0),
            buffer_ms: AtomicU64::new(f64::NAN.to_bits()),
            engine_stats: OnceLock::new(),
            events: tx,
            end_requested: Notify::new(),
            app: Arc::clone(app),
        });
        (session, rx)
    }

    pub(crate) fn outbox(&self) -> MutexGuard<'_, Outbox> {
        lock(&self.outbox)
    }

    /// Attaches `conn`, sends it `ready` first, and returns the connection
    /// it replaced (a takeover) and the writer generation for `conn`.
    pub(crate) fn attach(
        &self,
        conn: &Arc<Conn>,
        resumed: bool,
    ) -> Result<(u64, Option<Arc<Conn>>), Closed> {
        let mut slot = lock(&self.slot);
        if slot.closed {
            return Err(Closed);
        }
        let token = ids::token();
        self.app.registry.set_token(&self.id, &token);
        let ready = ServerMsg::Ready {
            session_id: self.id.clone(),
            resume_token: token,
            resumed,
            window: self.app.config.window,
            engine: lock(&self.engine_info).clone(),
        };
        let generation = {
            let mut ob = self.outbox();
            let generation = ob.attach();
            ob.push_control(ready.to_json())
                .expect("an attached outbox has room");
            generation
        };
        let old = slot.conn.replace(Arc::clone(conn));
        self.state.store(State::Streaming as u8, Relaxed);
        if resumed {
            self.resumes.fetch_add(1, Relaxed);
        }
        drop(slot);
        self.wake.notify_one();
        Ok((generation, old))
    }

    /// Detaches `conn_id` if it is still the attached connection.
    fn detach(&self, conn_id: u64) -> bool {
        let mut slot = lock(&self.slot);
        if slot.conn.as_ref().is_some_and(|c| c.id == conn_id) {
            slot.conn = None;
            self.state.store(State::Detached as u8, Relaxed);
            true
        } else {
            false
        }
    }

    fn is_current(&self, conn_id: u64) -> bool {
        lock(&self.slot)
            .conn
            .as_ref()
            .is_some_and(|c| c.id == conn_id)
    }

    /// The attached connection, if any.
    pub(crate) fn conn(&self) -> Option<Arc<Conn>> {
        lock(&self.slot).conn.clone()
    }

    /// Queues a control message for the client; on overflow the session ends.
    pub(crate) fn send_control(&self, msg: &ServerMsg) {
        let pushed = self.outbox().push_control(msg.to_json());
        match pushed {
            Ok(()) => self.wake.notify_one(),
            Err(Overflow) => {
                let _ = self.request_end(EndRequest::Overflow);
            }
        }
    }

    /// Asks the session task to end the session. `Ok` when this request
    /// will be the session's end; `Err` when it is already ending.
    pub(crate) fn request_end(&self, why: EndRequest) -> Result<(), ()> {
        let mut slot = lock(&self.slot);
        if slot.closed || slot.end.is_some() {
            return Err(());
        }
        slot.end = Some(why);
        drop(slot);
        self.end_requested.notify_one();
        Ok(())
    }

    fn take_end_request(&self) -> Option<EndRequest> {
        lock(&self.slot).end.take()
    }

    /// Whether the session waits for a resume.
    pub fn is_detached(&self) -> bool {
        self.state.load(Relaxed) == State::Detached as u8
    }

    /// Records a pong's round trip.
    pub(crate) fn set_rtt(&self, rtt: Duration) {
        self.rtt_us.store(rtt.as_micros() as u64, Relaxed);
    }

    /// Applies a client-shaped message (from the connection or the control bus).
    pub(crate) async fn client_message(&self, msg: ClientMsg) {
        match msg {
            ClientMsg::Ack { seq, buffer_ms } => {
                if let Some(ms) = buffer_ms {
                    self.buffer_ms.store(ms.to_bits(), Relaxed);
                }
                let acked = self.outbox().ack(seq);
                match acked {
                    Ok(()) => self.wake.notify_one(),
                    Err(ahead) => self.send_control(&ServerMsg::error(
                        "bad_ack",
                        format!("ack {seq} is ahead of the last slice sent ({})", ahead.sent),
                    )),
                }
            }
            ClientMsg::Params(p) => {
                let _ = self.events.send(Event::Params(p)).await;
            }
            ClientMsg::Bye => {
                let _ = self.request_end(EndRequest::Bye);
            }
            ClientMsg::Hello(_) => self.send_control(&ServerMsg::error(
                "bad_message",
                "hello is only valid as the first message of a connection",
            )),
        }
    }

    pub(crate) fn events(&self) -> &mpsc::Sender<Event> {
        &self.events
    }

    fn stats(&self) -> Stats {
        let ob = self.outbox();
        let c = ob.counters();
        let rtt = self.rtt_us.load(Relaxed);
        Stats {
            slices_sent: c.slices_sent,
            slices_dropped: c.slices_dropped,
            bytes_sent: c.bytes_sent,
            last_ack_seq: c.last_ack_seq,
            in_flight: ob.in_flight(),
            rtt_us: (rtt != u64::MAX).then_some(rtt),
            server_time_ms: ids::now_ms(),
        }
    }

    /// The client's progress, for the engine.
    fn progress(&self) -> Progress {
        let (acked_seq, sent_seq) = {
            let ob = self.outbox();
            (ob.counters().last_ack_seq, ob.sent_seq())
        };
        let ms = f64::from_bits(self.buffer_ms.load(Relaxed));
        Progress {
            acked_seq,
            sent_seq,
            buffer_ms: (!ms.is_nan()).then_some(ms),
        }
    }

    /// The Session object of `/sessions`; `admin` adds what identifies the
    /// client's connection (its address).
    pub fn to_json(&self, admin: bool) -> Value {
        let stats = self.stats();
        let conn = self.conn();
        let socket = conn.as_ref().and_then(|c| c.socket.sample().ok()).map(|s| {
            json!({
                "tcp_state": s.state.name(),
                "send_queue_bytes": s.send_queue,
                "bytes_acked": s.bytes_acked,
                "rtt_us": s.rtt_us,
                "snd_wnd": s.snd_wnd,
                "notsent_bytes": s.notsent_bytes,
            })
        });
        let mut v = json!({
            "id": self.id,
            "client_id": self.client_id,
            "state": State::name(self.state.load(Relaxed)),
            "started_at_ms": self.started_at_ms,
            "slices_sent": stats.slices_sent,
            "slices_dropped": stats.slices_dropped,
            "bytes_sent": stats.bytes_sent,
            "last_ack_seq": stats.last_ack_seq,
            "in_flight": stats.in_flight,
            "resumes": self.resumes.load(Relaxed),
            "ping_rtt_us": stats.rtt_us,
            "engine": lock(&self.engine_info).get("name").cloned(),
            "engine_stats": self.engine_stats.get().and_then(SessionStats::get),
            "slices_produced": self.produced.load(Relaxed),
            "socket": socket,
        });
        if admin {
            v["peer"] = json!(conn.as_ref().map(|c| c.peer.to_string()));
            v["liveness"] = conn.as_ref().map_or(Value::Null, |c| self.liveness(c));
        }
        v
    }
}

impl Session {
    /// What the reaper sees of the attached connection: the rule counting
    /// and how far it is from a verdict.
    fn liveness(&self, conn: &Conn) -> Value {
        use seatkeeper_liveness::Hooks;
        let cfg = &self.app.config;
        let seen = conn.observed();
        let now = std::time::Instant::now();
        let oldest = conn.pings().oldest();
        let ms = |d: Duration| d.as_millis() as u64;
        json!({
            "rule": seen.rule,
            "counting_ms": ms(seen.counting),
            "grace_ms": ms(cfg.stall_grace),
            "pings_pending": conn.pings().pending(),
            // The unresponsive rule's clock: how long the oldest unanswered
            // ping has been acknowledged by the client's TCP (0 while its
            // bytes are still on the way).
            "pong_clock_ms": oldest.map_or(0, |p| ms(p.waited(now))),
            "oldest_ping_age_ms": oldest.map(|p| ms(now.saturating_duration_since(p.written_at))),
            "oldest_ping_acked": oldest.map(|p| p.acked_at.is_some()),
            "pong_timeout_ms": cfg.pong_timeout.map(ms),
            "watchdog_interval_ms": ms(cfg.watchdog_interval),
        })
    }
}

/// The engine's view of a session: slices go into its outbox.
pub(crate) struct Sink(pub Arc<Session>);

impl SliceSink for Sink {
    fn push(&self, slice: Slice) {
        let s = &self.0;
        s.produced.fetch_add(1, Relaxed);
        let (result, dropped) = {
            let mut ob = s.outbox();
            let before = ob.counters().slices_dropped;
            let r = ob.push_slice(slice);
            (r, ob.counters().slices_dropped - before)
        };
        if dropped > 0 {
            s.app.metrics.slices_dropped.fetch_add(dropped, Relaxed);
        }
        match result {
            Ok(()) => s.wake.notify_one(),
            Err(Overflow) => {
                let _ = s.request_end(EndRequest::Overflow);
            }
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone)]
pub(crate) enum End {
    Bye,
    ClientClose,
    Reaped(Reason),
    Lost,
    Expired,
    Evicted,
    Violation,
    Overflow,
    Engine(EngineError),
    Shutdown,
}

impl End {
    /// Metrics label.
    fn label(&self) -> EndReason {
        match self {
            Self::Bye => EndReason::Bye,
            Self::ClientClose => EndReason::ClientClose,
            Self::Reaped(_) => EndReason::Reaped,
            Self::Lost => EndReason::Lost,
            Self::Expired => EndReason::Expired,
            Self::Evicted => EndReason::Evicted,
            Self::Violation => EndReason::Violation,
            Self::Overflow => EndReason::Overflow,
            Self::Engine(_) => EndReason::Engine,
            Self::Shutdown => EndReason::Shutdown,
        }
    }

    /// The reason the engine is told in `session_end`.
    fn engine_reason(&self) -> String {
        match self {
            Self::Reaped(r) => format!("reaped:{}", r.as_str()),
            Self::Engine(e) => format!("engine:{}", e.code()),
            other => other.label().as_str().to_owned(),
        }
    }

    /// What the attached connection (if any) is told on the way out.
    fn farewell(&self) -> Option<ConnEnd> {
        let server = |code, error: Option<ServerMsg>, reason: &str| {
            Some(ConnEnd::Server {
                code,
                reason: reason.to_owned(),
                error,
            })
        };
        match self {
            Self::Evicted => server(
                close::NORMAL,
                Some(ServerMsg::error(
                    "evicted",
                    "an operator ended this session",
                )),
                "evicted",
            ),
            Self::Overflow => server(
                close::POLICY,
                Some(ServerMsg::error(
                    "too_far_behind",
                    "the client fell so far behind that undroppable messages piled up",
                )),
                "too far behind",
            ),
            // A client's flood is the client's fault (1008), not the engine's.
            Self::Engine(e) => server(
                if e.is_client_fault() {
                    close::POLICY
                } else {
                    close::INTERNAL
                },
                Some(ServerMsg::error(e.code(), e.to_string())),
                e.code(),
            ),
            Self::Shutdown => server(close::GOING_AWAY, None, "server shutting down"),
            Self::Expired => server(close::NORMAL, None, "resume window expired"),
            // The connection already ended (or is ending on its own terms).
            _ => None,
        }
    }
}

/// What the session task owns: dropping any of it ends the session's hold.
pub(crate) struct Owned {
    pub seat: Seat,
    pub engine: EngineSession,
    /// The pool lease (pool mode), dropped with the session.
    pub lease: Option<Box<dyn Any + Send>>,
}

/// The session task, guarded: if it panics, its seat is released by the
/// unwinding (the seat guard is owned by the task) and its connection is
/// closed with 1011 rather than left attached to nothing.
pub(crate) async fn run_guarded(
    session: Arc<Session>,
    events: mpsc::Receiver<Event>,
    owned: Owned,
) {
    let ran = AssertUnwindSafe(run(Arc::clone(&session), events, owned))
        .catch_unwind()
        .await;
    if ran.is_err() {
        tracing::error!(session_id = %session.id, "session task panicked; session ended");
        session.app.metrics.ended(EndReason::Internal);
        let conn = {
            let mut slot = lock(&session.slot);
            slot.closed = true;
            slot.conn.take()
        };
        if let Some(conn) = conn {
            conn.finish(ConnEnd::Server {
                code: close::INTERNAL,
                reason: "internal error".into(),
                error: Some(ServerMsg::error(
                    "internal",
                    "the session failed inside the server",
                )),
            });
        }
        session.app.seat_released();
    }
}

/// The session task.
async fn run(session: Arc<Session>, mut events: mpsc::Receiver<Event>, owned: Owned) {
    let Owned {
        seat,
        mut engine,
        lease,
    } = owned;
    let app = Arc::clone(&session.app);
    let cfg = &app.config;
    let mut ping = interval(cfg.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stats = interval(cfg.stats_interval);
    stats.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut detached_until: Option<Instant> = None;
    let mut detached_at: Option<Instant> = None;
    let mut progress = interval(PROGRESS_EVERY);
    progress.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Nothing to report before the first slice is sent.
    let mut last_progress = session.progress();

    let end = loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => break End::Shutdown,
            err = engine.failed() => break End::Engine(err),
            ev = events.recv() => match ev {
                None => break End::Lost, // unreachable: the session holds a sender
                Some(Event::Params(p)) => {
                    if let Err(e) = engine.control(Control::Params(p)) {
                        break End::Engine(e);
                    }
                }
                Some(Event::Attached(_)) => {
                    if let Some(at) = detached_at.take() {
                        info!(session_id = %session.id, detached_ms = at.elapsed().as_millis() as u64, "detached session resumed");
                    }
                    if detached_until.take().is_some() {
                        let _ = engine.control(Control::Resumed);
                    }
                    let _ = engine.control(Control::Keyframe);
                }
                Some(Event::ConnEnded(id, how)) => {
                    let how = *how;
                    if !session.is_current(id) {
                        continue; // replaced by a resume: old news
                    }
                    match how {
                        ConnEnd::Lost(_) | ConnEnd::Reaped(seatkeeper_liveness::Evidence { reason: Reason::PeerClose, .. }) => {
                            match cfg.resume_window {
                                Some(w) if session.detach(id) => {
                                    log_detached(&session.id, &how, w);
                                    detached_at = Some(Instant::now());
                                    detached_until = Some(Instant::now() + w);
                                    let resume_window_ms = w.as_millis().try_into().unwrap_or(u64::MAX);
                                    if let Err(e) = engine.control(Control::Detached { resume_window_ms }) {
                                        break End::Engine(e);
                                    }
                                }
                                _ => break match how {
                                    ConnEnd::Reaped(ev) => End::Reaped(ev.reason),
                                    _ => End::Lost,
                                },
                            }
                        }
                        ConnEnd::Reaped(ev) => break End::Reaped(ev.reason),
                        ConnEnd::PeerClosed(_) => break End::ClientClose,
                        ConnEnd::Bye => break End::Bye,
                        ConnEnd::Violation { .. } => break End::Violation,
                        ConnEnd::Replaced | ConnEnd::Server { .. } => {}
                    }
                }
            },
            _ = session.end_requested.notified() => match session.take_end_request() {
                Some(EndRequest::Evict) => break End::Evicted,
                Some(EndRequest::Bye) => break End::Bye,
                Some(EndRequest::Overflow) => break End::Overflow,
                None => {}
            },
            _ = ping.tick(), if detached_until.is_none() => {
                if let Some(conn) = session.conn() {
                    session.outbox().set_ping(Bytes::copy_from_slice(&conn.ping_payload()));
                    session.wake.notify_one();
                }
            }
            _ = progress.tick(), if detached_until.is_none() && engine.wants_progress() => {
                let now = session.progress();
                if now != last_progress {
                    last_progress = now;
                    let _ = engine.control(Control::Progress(now));
                }
            }
            _ = stats.tick(), if detached_until.is_none() => {
                let text = ServerMsg::Stats(session.stats()).to_json();
                session.outbox().set_stats(text);
                session.wake.notify_one();
            }
            _ = sleep_until(detached_until.unwrap_or_else(Instant::now)), if detached_until.is_some() => {
                info!(session_id = %session.id, detached_ms = detached_at.map_or(0, |t| t.elapsed().as_millis() as u64), "no resume within the window: session expired");
                break End::Expired;
            }
        }
    };

    // Close the slot first: no resume can attach from here on.
    let conn = {
        let mut slot = lock(&session.slot);
        slot.closed = true;
        slot.conn.take()
    };
    session.state.store(State::Closing as u8, Relaxed);
    if let (Some(conn), Some(farewell)) = (conn.as_ref(), end.farewell()) {
        conn.finish(farewell);
    } else if let (Some(conn), End::Bye) = (conn.as_ref(), &end) {
        // A `bye` from the control bus: close the client's connection too.
        conn.finish(ConnEnd::Bye);
    }
    let reason = end.engine_reason();
    engine.end(&reason);
    app.metrics.ended(end.label());
    let c = session.outbox().counters();
    match &end {
        End::Engine(_) | End::Overflow => {
            warn!(session_id = %session.id, reason = %reason, slices_sent = c.slices_sent, slices_dropped = c.slices_dropped, "session ended")
        }
        _ => {
            info!(session_id = %session.id, reason = %reason, slices_sent = c.slices_sent, slices_dropped = c.slices_dropped, "session ended")
        }
    }
    // Release: the seat (and the listing, and the token) go together.
    drop(seat);
    drop(lease);
    app.seat_released();
}

/// The log line of a lost transport, with what was seen of the loss.
fn log_detached(session_id: &str, how: &ConnEnd, window: Duration) {
    let window_s = window.as_secs_f64();
    match how {
        ConnEnd::Reaped(ev) => info!(
            session_id,
            window_s,
            evidence = ev.reason.as_str(),
            tcp_state = ev.tcp_state.map(|s| s.name()),
            error = ev.error.as_deref(),
            queue_bytes = ev.queue_bytes,
            "transport lost; waiting for a resume"
        ),
        ConnEnd::Lost(why) => info!(
            session_id,
            window_s,
            evidence = %why,
            "transport lost; waiting for a resume"
        ),
        _ => info!(session_id, window_s, "transport lost; waiting for a resume"),
    }
}
