//! One WebSocket connection of a session: a reader (this task) and a writer
//! (its own task, the only owner of the sink). Either side ends the
//! connection by recording a [`ConnEnd`] and setting the connection's
//! stop signal; the writer then says goodbye (an error, a close frame) if the
//! ending calls for one, under a time bound, and the reader reports the end
//! to the session task.
//!
//! While the writer waits with nothing to send, the engine's push writes a
//! slice itself through the connection's [`Lane`] (one wake-up and one task
//! turn fewer per slice); everything else, and anything the socket does not
//! take at once, is the writer's.

use std::{
    net::SocketAddr,
    panic::AssertUnwindSafe,
    sync::{atomic::Ordering::Relaxed, Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::FutureExt;
use hyper_util::rt::TokioIo;
use seatkeeper_liveness::{Evidence, Hooks, Pings, SocketHandle, Verdict};
use seatkeeper_protocol::{close, ClientMsg, ServerMsg};
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::{debug, error, warn};

use super::shared::Shared;
use super::{
    goodbye::{self, Goodbye},
    outbox::{Item, Outbox},
    signal::{Side, Stop},
    Event, Session,
};

mod rate;
#[cfg(test)]
mod tests;
pub mod wire;

use rate::RateLimit;
pub use wire::{Io, WsOver};
use wire::{SendError, Wire};

/// The WebSocket type of a connection in the server.
pub type Ws = WsOver<TokioIo<hyper::upgrade::Upgraded>>;

/// How a connection ended.
#[derive(Debug, Clone)]
pub enum ConnEnd {
    /// The client sent a close frame.
    PeerClosed(Option<u16>),
    /// The transport failed or closed without a close frame.
    Lost(String),
    /// The client said `bye`.
    Bye,
    /// The client broke a rule; it gets `error` and this close code.
    Violation {
        /// Close code.
        code: u16,
        /// The error sent before the close.
        error: ServerMsg,
    },
    /// The sampler found the client dead.
    Reaped(Evidence),
    /// A resume took the session over.
    Replaced,
    /// The session ended it (eviction, shutdown, engine failure).
    Server {
        /// Close code.
        code: u16,
        /// Close reason text.
        reason: String,
        /// An error sent before the close.
        error: Option<ServerMsg>,
    },
}

impl ConnEnd {
    /// How the connection is left.
    pub(crate) fn goodbye(&self) -> Goodbye {
        let close = |error: Option<ServerMsg>, code: u16, reason: String| Goodbye::Close {
            error,
            code,
            reason,
        };
        match self {
            Self::Bye => close(None, close::NORMAL, "bye".into()),
            Self::Violation { code, error } => {
                let reason = match error {
                    ServerMsg::Error { code, .. } => code.clone(),
                    _ => String::new(),
                };
                close(Some(error.clone()), *code, reason)
            }
            // A live connection (another tab) must see its 4002; a
            // half-open one is reset when the close frame cannot get out
            // within the close grace.
            Self::Replaced => close(
                None,
                close::REPLACED,
                "replaced by a resumed connection".into(),
            ),
            Self::Server {
                code,
                reason,
                error,
            } => close(error.clone(), *code, reason.clone()),
            Self::PeerClosed(_) => Goodbye::Echo,
            Self::Lost(_) | Self::Reaped(_) => Goodbye::Abort,
        }
    }
}

/// One connection's shared state.
pub struct Conn {
    /// Process-unique connection id.
    pub id: u64,
    /// The session it serves (for logs).
    pub session_id: String,
    /// Peer address.
    pub peer: SocketAddr,
    /// The socket, for the sampler and `/sessions`.
    pub socket: Arc<SocketHandle>,
    /// Cancelled when the connection is ending.
    pub(crate) stop: Stop,
    started: Instant,
    /// Unanswered pings and where they end in the TCP stream.
    pings: Pings,
    end: Mutex<Option<ConnEnd>>,
    /// What the sampler said last (for the operator's page).
    observed: Mutex<Observed>,
    app: Arc<Shared>,
}

/// The sampler's last word on a connection: which rule is counting, and
/// how far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Observed {
    /// `healthy`, `draining`, `send_stall` (counting), `unknown` (no
    /// kernel figures), or the reason of a reap.
    pub rule: &'static str,
    /// How long the rule has been counting.
    pub counting: Duration,
}

impl Conn {
    /// A connection about to be attached to `session_id`.
    pub(crate) fn new(
        app: &Arc<Shared>,
        session_id: &str,
        peer: SocketAddr,
        socket: Arc<SocketHandle>,
    ) -> Arc<Self> {
        Arc::new(Self {
            id: app.next_conn_id(),
            session_id: session_id.to_owned(),
            peer,
            socket,
            stop: Stop::default(),
            started: Instant::now(),
            pings: Pings::default(),
            end: Mutex::new(None),
            observed: Mutex::new(Observed::default()),
            app: Arc::clone(app),
        })
    }

    /// Records how the connection ends (the first word wins) and stops it.
    pub fn finish(&self, end: ConnEnd) -> bool {
        let first = {
            let mut slot = self.end.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(end);
                true
            } else {
                false
            }
        };
        self.stop.stop();
        first
    }

    fn ended(&self) -> ConnEnd {
        self.end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| ConnEnd::Lost("ended".into()))
    }

    /// A ping payload: nanoseconds since the connection started.
    pub fn ping_payload(&self) -> [u8; 8] {
        (self.started.elapsed().as_nanos() as u64).to_le_bytes()
    }

    fn pong(&self, payload: &[u8]) -> Option<Duration> {
        let sent = u64::from_le_bytes(payload.try_into().ok()?);
        let now = self.started.elapsed().as_nanos() as u64;
        if sent > now {
            return None; // not ours
        }
        self.pings.answered(sent);
        Some(Duration::from_nanos(now - sent))
    }

    /// The writer flushed ping `payload`: everything written to the TCP
    /// socket so far is the ping's end offset in the stream.
    fn ping_written(&self, payload: &[u8]) {
        if let Ok(id) = payload.try_into().map(u64::from_le_bytes) {
            self.pings
                .written(id, self.socket.bytes_written(), Instant::now());
        }
    }

    fn since_start_ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.started).as_millis() as u64
    }
}

impl Conn {
    /// The sampler's last word on this connection.
    pub(crate) fn observed(&self) -> Observed {
        *self.observed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Hooks for Conn {
    fn observed(&self, verdict: &Verdict) {
        let seen = match verdict {
            Verdict::Healthy => Observed {
                rule: "healthy",
                counting: Duration::ZERO,
            },
            Verdict::Draining => Observed {
                rule: "draining",
                counting: Duration::ZERO,
            },
            Verdict::Stalled(d) => Observed {
                rule: "send_stall",
                counting: *d,
            },
            Verdict::Unknown => Observed {
                rule: "unknown",
                counting: Duration::ZERO,
            },
            Verdict::Reap(ev) => Observed {
                rule: ev.reason.as_str(),
                counting: ev.stalled_for,
            },
        };
        *self.observed.lock().unwrap_or_else(|e| e.into_inner()) = seen;
    }

    fn pings(&self) -> &Pings {
        &self.pings
    }

    fn on_reap(&self, ev: &Evidence) {
        self.app.metrics.reaped(ev.reason);
        warn!(
            session_id = %self.session_id,
            peer = %self.peer,
            reason = ev.reason.as_str(),
            queue_bytes = ev.queue_bytes,
            bytes_acked = ev.bytes_acked,
            stalled_ms = ev.stalled_for.as_millis() as u64,
            tcp_state = ev.tcp_state.map(|s| s.name()),
            error = ev.error.as_deref(),
            // Unresponsive: when the ping went out and when its bytes were
            // acknowledged (ms since the connection started); stalled_ms is
            // how long it then went unanswered.
            ping_written_at_ms = ev.ping.map(|p| self.since_start_ms(p.written_at)),
            ping_acked_at_ms = ev.ping.and_then(|p| p.acked_at).map(|t| self.since_start_ms(t)),
            ping_end_offset = ev.ping.map(|p| p.end_offset),
            "reaped dead client"
        );
        self.app.recent_reaps.push(serde_json::json!({
            "at_ms": crate::ids::now_ms(),
            "session_id": self.session_id,
            "peer": self.peer.to_string(),
            "reason": ev.reason.as_str(),
            "queue_bytes": ev.queue_bytes,
            "bytes_acked": ev.bytes_acked,
            "stalled_ms": ev.stalled_for.as_millis() as u64,
            "tcp_state": ev.tcp_state.map(|s| s.name()),
            "error": ev.error,
            "ping_written_ms": ev.ping.map(|p| self.since_start_ms(p.written_at)),
            "ping_acked_ms": ev.ping.and_then(|p| p.acked_at).map(|t| self.since_start_ms(t)),
        }));
        self.finish(ConnEnd::Reaped(ev.clone()));
    }
}

/// Runs an attached connection until it ends, then reports to the session.
/// A panic anywhere in it still reports (as a lost transport), so the
/// session never waits on a connection that is gone.
pub(crate) async fn run<S: Io>(
    ws: WsOver<S>,
    session: Arc<Session>,
    conn: Arc<Conn>,
    generation: u64,
) {
    let attached = AssertUnwindSafe(run_attached(ws, &session, &conn, generation))
        .catch_unwind()
        .await;
    if attached.is_err() {
        error!(session_id = %session.id, conn = conn.id, "connection task panicked; treating the transport as lost");
        conn.socket.abort();
        let end = ConnEnd::Lost("internal error".into());
        conn.finish(end.clone());
        session.clear_lane(generation);
        // Awaited, not tried: a full channel must not lose the report.
        let _ = session
            .events()
            .send(Event::ConnEnded(conn.id, Box::new(end)))
            .await;
    }
}

async fn run_attached<S: Io>(
    ws: WsOver<S>,
    session: &Arc<Session>,
    conn: &Arc<Conn>,
    generation: u64,
) {
    let app = Arc::clone(&session.app);
    let watch = app.sampler.watch(Arc::clone(&conn.socket), conn.clone());
    let wire = Wire::new(ws);
    session.set_lane(
        generation,
        Box::new(DirectLane {
            wire: wire.clone(),
            conn: Arc::clone(conn),
            generation,
        }),
    );
    let mut writer = tokio::spawn(write_loop(
        wire.clone(),
        Arc::clone(session),
        Arc::clone(conn),
        generation,
    ));
    // Either side may end first; a writer that dies (even by panic) ends
    // the reader too.
    let early = tokio::select! {
        _ = read_loop(&wire, session, conn) => None,
        w = &mut writer => {
            conn.finish(ConnEnd::Lost("writer ended".into()));
            Some(w)
        }
    };
    drop(watch);
    // The stop is set: no push writes any more; the lane's share of the
    // stream goes, so the goodbye can have it whole.
    session.clear_lane(generation);
    let end = conn.ended();
    debug!(session_id = %session.id, conn = conn.id, end = ?end, "connection ending");
    // Report first: a seat is released at once, whatever the goodbye costs.
    let _ = session
        .events()
        .send(Event::ConnEnded(conn.id, Box::new(end.clone())))
        .await;
    // The writer says whether the stream is still usable; the goodbye needs
    // it back whole.
    let usable = match early {
        Some(w) => w.unwrap_or(false),
        None => writer.await.unwrap_or(false),
    };
    match wire.into_ws() {
        // Boxed: the goodbye's state (2 KiB: the whole stream, timers, the
        // close) would otherwise be part of every connection's future for
        // its whole life.
        Some(ws) if usable => {
            Box::pin(goodbye::say(
                ws,
                end.goodbye(),
                &conn.socket,
                app.config.close_grace,
            ))
            .await
        }
        // The writer failed or died: nothing more can be said.
        _ => {
            conn.socket.abort();
        }
    }
}

async fn read_loop<S: Io>(wire: &Wire<S>, session: &Arc<Session>, conn: &Arc<Conn>) {
    let app = &session.app;
    let mut bucket = RateLimit::new(
        app.config.max_msg_rate,
        tokio::time::Instant::now().into_std(),
    );
    let cancelled = conn.stop.stopped(Side::Reader);
    tokio::pin!(cancelled);
    loop {
        let msg = tokio::select! {
            biased;
            _ = &mut cancelled => return,
            msg = wire.next() => msg,
        };
        let msg = match msg {
            None => {
                conn.finish(ConnEnd::Lost(
                    "connection closed without a close frame".into(),
                ));
                return;
            }
            Some(Err(e)) => {
                let end = read_error(e, app.config.max_message_bytes);
                if matches!(end, ConnEnd::Violation { .. }) {
                    app.metrics.messages_refused.fetch_add(1, Relaxed);
                }
                conn.finish(end);
                return;
            }
            Some(Ok(m)) => m,
        };
        app.metrics.messages_in.fetch_add(1, Relaxed);
        let limited = !matches!(msg, Message::Pong(_) | Message::Close(_))
            && !bucket.take(tokio::time::Instant::now().into_std());
        if limited && !exempt_from_rate(&msg, session) {
            app.metrics.messages_refused.fetch_add(1, Relaxed);
            conn.finish(violation(
                close::POLICY,
                "rate_limited",
                format!("more than {} messages a second", app.config.max_msg_rate),
            ));
            return;
        }
        match msg {
            Message::Text(text) => match ClientMsg::parse(&text) {
                Ok(ClientMsg::Bye) => {
                    conn.finish(ConnEnd::Bye);
                    return;
                }
                Ok(m) => {
                    // The client reads: the watchdog may skip a look (never a verdict).
                    if matches!(m, ClientMsg::Ack { .. }) {
                        conn.socket.mark_progress();
                    }
                    session.client_message(m).await
                }
                Err(e) if e.is_fatal() => {
                    app.metrics.messages_refused.fetch_add(1, Relaxed);
                    conn.finish(violation(close::INVALID_PAYLOAD, e.code(), e.to_string()));
                    return;
                }
                Err(e) => {
                    app.metrics.messages_refused.fetch_add(1, Relaxed);
                    session.send_control(&ServerMsg::error(e.code(), e.to_string()));
                }
            },
            Message::Binary(_) => {
                app.metrics.messages_refused.fetch_add(1, Relaxed);
                conn.finish(violation(
                    close::UNSUPPORTED_DATA,
                    "binary_not_accepted",
                    "clients send text (JSON) messages only",
                ));
                return;
            }
            Message::Pong(p) => {
                conn.socket.mark_progress();
                if let Some(rtt) = conn.pong(&p) {
                    session.set_rtt(rtt);
                }
            }
            Message::Close(frame) => {
                conn.socket.mark_closing();
                conn.finish(ConnEnd::PeerClosed(frame.map(|f| u16::from(f.code))));
                return;
            }
            Message::Ping(_) | Message::Frame(_) => {} // pongs are automatic
        }
    }
}

/// Whether `msg` is spared by the message-rate limit: an ack for slices not
/// acknowledged before (bounded by what the server itself sent, so a client
/// may ack every slice of a fast stream), or a `bye` (it ends the
/// connection, so it cannot flood; refusing it would turn a clean goodbye
/// right after a burst of acks into a violation).
fn exempt_from_rate(msg: &Message, session: &Session) -> bool {
    let Message::Text(text) = msg else {
        return false;
    };
    match ClientMsg::parse(text) {
        Ok(ClientMsg::Ack { seq, .. }) => session.outbox().acks_new(seq),
        Ok(ClientMsg::Bye) => true,
        _ => false,
    }
}

/// Maps a read error to how the connection ends.
pub(crate) fn read_error(e: tungstenite::Error, max: usize) -> ConnEnd {
    use tungstenite::error::{CapacityError, Error};
    match e {
        Error::Capacity(CapacityError::MessageTooLong { size, .. }) => violation(
            close::TOO_BIG,
            "message_too_big",
            format!("message of {size} bytes is over the {max}-byte limit"),
        ),
        Error::Capacity(c) => violation(close::TOO_BIG, "message_too_big", c.to_string()),
        Error::Utf8(_) => violation(
            close::INVALID_PAYLOAD,
            "invalid_payload",
            "text frame is not UTF-8",
        ),
        // A FIN or reset without a close frame is a lost transport, not a
        // misbehaving client: the session waits for a resume.
        Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            ConnEnd::Lost("connection closed without a close frame".into())
        }
        Error::Protocol(p) => violation(close::POLICY, "protocol_error", p.to_string()),
        other => ConnEnd::Lost(other.to_string()),
    }
}

pub(crate) fn violation(code: u16, err: &str, message: impl Into<String>) -> ConnEnd {
    ConnEnd::Violation {
        code,
        error: ServerMsg::error(err, message),
    }
}

/// A connection's writer, from outside its task: see the module docs.
pub(crate) trait Lane: Send + Sync {
    /// The writer generation it writes for.
    fn generation(&self) -> u64;

    /// Called under the outbox lock with a slice just pushed: writes the
    /// next slice of `ob` now if the writer waits and the stream is free.
    /// `true` when it went out whole (the writer need not wake); `false`
    /// when the writer must wake (nothing was written, or part of it waits
    /// for the writer's flush).
    fn write_now(&self, ob: &mut Outbox) -> bool;
}

/// Largest slice payload a push writes itself. Larger ones go through the
/// writer: the push runs on the engine's pacer, which must not spend a tick
/// copying megabytes into one socket while other sessions' slices wait.
const PUSH_WRITE_MAX: usize = 64 << 10;

struct DirectLane<S> {
    wire: Wire<S>,
    conn: Arc<Conn>,
    generation: u64,
}

impl<S: Io> Lane for DirectLane<S> {
    fn generation(&self) -> u64 {
        self.generation
    }

    fn write_now(&self, ob: &mut Outbox) -> bool {
        // Whether the writer waits is the outbox's to say (`pop_slice`).
        if self.conn.stop.is_stopped() {
            return false;
        }
        let mut len = 0;
        // This runs on the engine's pacer, for every session it serves: a
        // panic here ends this connection (as in its own task), not them.
        let written = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.wire.write_now(|| {
                let slice = ob.pop_slice(self.generation, PUSH_WRITE_MAX)?;
                len = slice.payload.len() as u64;
                Some(slice)
            })
        }));
        let whole = match written {
            Ok(Some(whole)) => whole,
            Ok(None) => return false,
            Err(_) => {
                error!(session_id = %self.conn.session_id, conn = self.conn.id, "writing a pushed slice panicked; treating the transport as lost");
                self.conn.socket.abort();
                self.conn.finish(ConnEnd::Lost("internal error".into()));
                return false;
            }
        };
        let metrics = &self.conn.app.metrics;
        metrics.slices_sent.fetch_add(1, Relaxed);
        metrics.slices_written_by_push.fetch_add(1, Relaxed);
        metrics.bytes_sent.fetch_add(len, Relaxed);
        if !whole {
            ob.owe_flush();
        }
        whole
    }
}

async fn next_item(session: &Session, generation: u64) -> Option<(Item, bool)> {
    session
        .wake
        .until(|| {
            let mut ob = session.outbox();
            match ob.pop(generation) {
                // Replaced by a newer connection.
                Err(_) => Some(None),
                Ok(Some(item)) => {
                    ob.set_writer_waits(generation, false);
                    Some(Some((item, ob.has_ready())))
                }
                Ok(None) => {
                    // From here a pushed slice may be written by its pusher.
                    ob.set_writer_waits(generation, true);
                    None
                }
            }
        })
        .await
}

/// Writes until the connection ends. Returns whether the stream is still
/// usable (for the goodbye).
async fn write_loop<S: Io>(
    wire: Wire<S>,
    session: Arc<Session>,
    conn: Arc<Conn>,
    generation: u64,
) -> bool {
    let metrics = &session.app.metrics;
    // One stop waiter for the connection's life, not one per slice.
    let cancelled = conn.stop.stopped(Side::Writer);
    tokio::pin!(cancelled);
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut cancelled => break,
            next = next_item(&session, generation) => next,
        };
        let Some((item, more)) = next else {
            // Replaced by a newer connection; the session says how.
            conn.finish(ConnEnd::Replaced);
            break;
        };
        // A burst is written out once, when nothing more is ready.
        let flush = !more;
        let (ping, slice_len) = match &item {
            Item::Ping(p) => (Some(p.clone()), None),
            Item::Slice(s) => (None, Some(s.payload.len() as u64)),
            Item::Text(_) | Item::Flush => (None, None),
        };
        let sent = tokio::select! {
            biased;
            _ = &mut cancelled => break,
            r = async {
                match item {
                    Item::Text(t) => wire.send_text(t, flush).await,
                    // A ping is flushed at once: its end offset is taken after it.
                    Item::Ping(p) => wire.send_ping(p).await,
                    Item::Slice(s) => wire.send_slice(s, flush).await,
                    // What a slice written by its pusher left queued.
                    Item::Flush => wire.flush().await,
                }
            } => r,
        };
        match sent {
            Ok(()) => {}
            // The reader saw the peer's close and is ending the connection
            // with it.
            Err(SendError::Closing) => {
                cancelled.await;
                break;
            }
            Err(e) => {
                // A peer that sent its close and went makes a write fail
                // before the reader may have read that close: the reader,
                // which reads it (or the same failure) next, has the first
                // word, within the close grace.
                let grace = session.app.config.close_grace;
                let _ = tokio::time::timeout(grace, &mut cancelled).await;
                conn.finish(ConnEnd::Lost(format!("write failed: {e}")));
                return false;
            }
        }
        if let Some(p) = ping {
            conn.ping_written(&p);
        }
        if let Some(len) = slice_len {
            metrics.slices_sent.fetch_add(1, Relaxed);
            metrics.bytes_sent.fetch_add(len, Relaxed);
        }
    }
    true
}
