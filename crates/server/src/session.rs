//! A session: the unit that holds a seat, owns an engine session and
//! outlives any one connection (resume).
//!
//! [`Session`] is the shared part: the outbox, the lifecycle [`Machine`]
//! (which connection is attached, whether the session waits for a resume
//! or has ended), the figures `/sessions` shows. The session's task (see
//! [`task`]) owns the seat, the engine session and the lease, feeds the
//! machine what happens and carries out what it says. Connections (see
//! [`conn`]) report to the task through a bounded channel.
//!
//! # Layout
//! - [`machine`]: the lifecycle as a pure state machine.
//! - [`task`]: the session task that drives it.
//! - [`outbox`]: the pure send policy (window, drops, coalescing).
//! - [`conn`]: one WebSocket connection's reader and writer.
//! - `goodbye`: how a connection is left (close handshake, reset).
//! - [`shared`]: what sessions share with the rest of the server.
//! - `signal`: the lock-free stop and wake signals of the per-slice path.

pub mod conn;
pub(crate) mod goodbye;
pub(crate) mod machine;
pub mod outbox;
pub(crate) mod periodic;
pub mod shared;
pub(crate) mod signal;
pub(crate) mod task;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex, MutexGuard, OnceLock,
    },
    time::Duration,
};

use seatkeeper_engine::{stats::SessionStats, Progress, Slice, SliceSink};
use seatkeeper_protocol::{messages::Stats, ClientMsg, ServerMsg};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::ids;
use conn::{Conn, ConnEnd, Lane};
pub(crate) use machine::{AlreadyEnding, EndRequest};
pub use machine::{Closed, State};
use machine::{Link, Machine};
use outbox::{Outbox, Overflow};
use shared::Shared;
use signal::Wake;
pub(crate) use task::{run_guarded, Owned};

/// Events for the session task.
pub enum Event {
    /// Knobs for the engine.
    Params(Map<String, Value>),
    /// A connection finished. Boxed: a channel's block holds 32 events
    /// whatever its use, and an unboxed `ConnEnd` made that 4.6 KiB per
    /// session.
    ConnEnded(u64, Box<ConnEnd>),
    /// A connection asks to be attached (see [`Session::attach`]). Boxed
    /// like `ConnEnded`, so an event stays 32 bytes.
    Attach(Box<AttachRequest>),
}

/// A connection asking to be attached.
pub struct AttachRequest {
    /// The connection.
    pub(crate) conn: Arc<Conn>,
    /// The token it presented, for a resume.
    pub(crate) resume: Option<String>,
    /// Answered with the writer generation, or dropped if refused.
    pub(crate) reply: oneshot::Sender<Result<u64, Closed>>,
}

/// Capacity of a session's event channel.
const EVENTS: usize = 64;

impl Link for Arc<Conn> {
    fn id(&self) -> u64 {
        self.id
    }
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
    /// The attached connection's writer, for a push to write through while
    /// it waits (taken under the outbox lock, after it).
    lane: Mutex<Option<Box<dyn Lane>>>,
    /// Wakes the attached connection's writer.
    pub(crate) wake: Wake,
    /// The lifecycle. Stepped by the session task only; read by anyone.
    machine: Mutex<Machine<Arc<Conn>>>,
    resumes: AtomicU64,
    rtt_us: AtomicU64,
    /// The client's last reported buffer depth (`f64` bits; NaN: none).
    buffer_ms: AtomicU64,
    /// The engine's latest `stats` for this session.
    pub(crate) engine_stats: OnceLock<SessionStats>,
    events: mpsc::Sender<Event>,
    /// Wakes the task for a request left in the machine (a stored permit
    /// if the task is busy, so no request is missed; unlike an event it
    /// cannot be lost to a full channel).
    end_requested: Notify,
    /// When the ping and `stats` are next due ([`periodic`]).
    periodic: Mutex<periodic::Due>,
    app: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    /// A new session and the receiver of its events.
    pub(crate) fn new(
        app: &Arc<Shared>,
        client_id: Option<String>,
    ) -> (Arc<Self>, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(EVENTS);
        let session = Arc::new(Self {
            id: ids::session_id(),
            client_id,
            started_at_ms: ids::now_ms(),
            engine_info: Mutex::new(Value::Null),
            outbox: Mutex::new(Outbox::new(app.config.window, app.config.outbox)),
            lane: Mutex::new(None),
            wake: Wake::default(),
            machine: Mutex::new(Machine::new(app.config.resume_window)),
            resumes: AtomicU64::new(0),
            rtt_us: AtomicU64::new(u64::MAX),
            buffer_ms: AtomicU64::new(f64::NAN.to_bits()),
            engine_stats: OnceLock::new(),
            events: tx,
            end_requested: Notify::new(),
            periodic: Mutex::new(periodic::Due::now()),
            app: Arc::clone(app),
        });
        (session, rx)
    }

    pub(crate) fn outbox(&self) -> MutexGuard<'_, Outbox> {
        lock(&self.outbox)
    }

    /// Installs the writer of `generation` as the lane pushes write
    /// through, unless a newer connection has taken over already.
    pub(crate) fn set_lane(&self, generation: u64, lane: Box<dyn Lane>) {
        let ob = self.outbox();
        if ob.generation() == generation {
            *lock(&self.lane) = Some(lane);
        }
    }

    /// Removes the lane of `generation` (a newer one stays).
    pub(crate) fn clear_lane(&self, generation: u64) {
        let mut lane = lock(&self.lane);
        if lane.as_ref().is_some_and(|l| l.generation() == generation) {
            *lane = None;
        }
    }

    /// Asks the session task to attach `conn`: a fresh session's first
    /// connection (`resume: None`) or a resume with the token presented.
    /// Returns the writer generation for `conn`; `Closed` when the session
    /// has ended or the token is not its current one.
    pub(crate) async fn attach(
        &self,
        conn: &Arc<Conn>,
        resume: Option<String>,
    ) -> Result<u64, Closed> {
        let (reply, answer) = oneshot::channel();
        let asked = Event::Attach(Box::new(AttachRequest {
            conn: Arc::clone(conn),
            resume,
            reply,
        }));
        self.events.send(asked).await.map_err(|_| Closed)?;
        answer.await.unwrap_or(Err(Closed))
    }

    /// Carries out an accepted attach: the new token, a new writer
    /// generation with `ready` first in it.
    fn attached(&self, token: String, resumed: bool) -> u64 {
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
        if resumed {
            self.resumes.fetch_add(1, Relaxed);
        }
        self.wake.notify();
        generation
    }

    /// Attaches `conn` without the session task, deciding as the task
    /// would (for in-process connection tests): the first attach is fresh,
    /// a later one a takeover with the session's current token.
    #[cfg(test)]
    pub(crate) fn attach_now(&self, conn: &Arc<Conn>) -> u64 {
        use machine::{Action, Input};
        let actions = {
            let mut m = self.machine();
            let resume = m.token().map(str::to_owned);
            let input = Input::Attach {
                conn: Arc::clone(conn),
                resume,
                token: ids::token(),
            };
            m.step(std::time::Instant::now(), input)
        };
        let mut generation = None;
        for action in actions {
            match action {
                Action::Attach { token, resumed, .. } => {
                    generation = Some(self.attached(token, resumed));
                }
                Action::Replace { old, .. } => {
                    old.finish(ConnEnd::Replaced);
                }
                _ => {}
            }
        }
        generation.expect("the session takes the connection")
    }

    fn machine(&self) -> MutexGuard<'_, Machine<Arc<Conn>>> {
        lock(&self.machine)
    }

    /// The attached connection, if any.
    pub(crate) fn conn(&self) -> Option<Arc<Conn>> {
        self.machine().conn().cloned()
    }

    /// Queues a control message for the client; on overflow the session ends.
    pub(crate) fn send_control(&self, msg: &ServerMsg) {
        let pushed = self.outbox().push_control(msg.to_json());
        match pushed {
            Ok(()) => self.wake.notify(),
            Err(Overflow) => {
                let _ = self.request_end(EndRequest::Overflow);
            }
        }
    }

    /// Asks the session task to end the session. `Ok` when this request
    /// will be the session's end.
    pub(crate) fn request_end(&self, why: EndRequest) -> Result<(), AlreadyEnding> {
        self.machine().request(why)?;
        self.end_requested.notify_one();
        Ok(())
    }

    /// Whether the session waits for a resume.
    pub fn is_detached(&self) -> bool {
        self.machine().state() == State::Detached
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
                let acked = {
                    let mut ob = self.outbox();
                    ob.ack(seq).map(|()| ob.has_ready())
                };
                match acked {
                    // The writer wakes only for what the ack lets out (a
                    // slice that waited on the window), not once per ack.
                    Ok(true) => self.wake.notify(),
                    Ok(false) => {}
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
        let produced = self.outbox().counters().slices_produced;
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
            "state": self.machine().state().name(),
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
            "slices_produced": produced,
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
        // Counted with the outbox, under the lock this takes anyway: one
        // cache line fewer per slice than a counter of its own.
        let (result, dropped, written) = {
            let mut ob = s.outbox();
            let before = ob.counters().slices_dropped;
            let r = ob.push_slice(slice);
            // The writer waits: write it from here, not through a wake-up.
            let written = r.is_ok()
                && ob.writer_waits()
                && lock(&s.lane).as_ref().is_some_and(|l| l.write_now(&mut ob));
            (r, ob.counters().slices_dropped - before, written)
        };
        if dropped > 0 {
            s.app.metrics.slices_dropped.fetch_add(dropped, Relaxed);
        }
        match result {
            Ok(()) if written => {}
            Ok(()) => s.wake.notify(),
            Err(Overflow) => {
                let _ = s.request_end(EndRequest::Overflow);
            }
        }
    }
}
