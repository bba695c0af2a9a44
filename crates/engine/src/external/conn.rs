//! One engine connection's shared state: its sessions by handle and the
//! write queue. What the reader does with each message is in `incoming`.
//!
//! The write queue is shared by every session on the connection, so each
//! session has a [`Quota`] in it: at most `session_queue_frames` frames and
//! `session_queue_bytes` bytes of `params`/progress, and [`LIFECYCLE_QUEUE`]
//! lifecycle frames, queued and not yet written. A session past its quota
//! fails alone with [`EngineError::Flooded`]; `session_end` is outside any
//! quota. The queue's capacity is the sum of all quotas, so it is full only
//! when the engine stopped reading altogether.
//!
//! Locks here are plain `std::sync::Mutex`es held for a map look-up and
//! never across an `.await`; the only waiting is done by the reader (on the
//! socket) and the writer task (on the socket), each on its own.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{frame, messages::ToEngine, Limits, Status};
use crate::{
    session::FailureReporter,
    stats::{Gauges, SessionStats},
    EngineError, EngineSession, SliceSink,
};

mod incoming;
mod quota;

pub(super) use quota::{write_queue, Lane, Out, Quota};

/// How many ended session ids a connection remembers, so that a late
/// message about one of them is ignored instead of taken for a protocol error.
const RECENT_ENDED: usize = 1024;

/// Why an engine connection is dropped. Each names the engine's mistake.
#[derive(Debug, thiserror::Error)]
pub(super) enum ProtocolError {
    /// The framing was wrong (length, version, type) or reading failed.
    #[error("{0}")]
    Frame(#[from] frame::FrameError),
    /// A JSON frame did not hold a message this server understands.
    #[error("bad JSON message: {0}")]
    Json(#[from] serde_json::Error),
    /// A slice named a handle this server never handed out on this connection.
    #[error("slice for session handle {0}, which was never assigned")]
    UnknownHandle(u32),
    /// A message named a session this server never started on this connection.
    #[error("message for unknown session {0:?}")]
    UnknownSession(String),
    /// A message that is not allowed at this point.
    #[error("{0}")]
    Unexpected(&'static str),
}

/// A session's place in the connection.
struct Entry {
    session_id: String,
    sink: Arc<dyn SliceSink>,
    phase: Phase,
    quota: Arc<Quota>,
    stats: SessionStats,
}

enum Phase {
    /// `session_start` sent; `open` waits for the answer here.
    Opening(oneshot::Sender<Result<EngineSession, EngineError>>),
    /// Running: the session learns of a failure through this.
    Live(FailureReporter),
}

#[derive(Default)]
struct State {
    next_handle: u32,
    sessions: HashMap<u32, Entry>,
    recent_ended: VecDeque<String>,
    stats: Option<Map<String, Value>>,
    gauges: Gauges,
    dead: bool,
}

impl State {
    /// Removes a session; whoever removes it owns telling both sides.
    fn remove(&mut self, handle: u32) -> Option<Entry> {
        let entry = self.sessions.remove(&handle)?;
        if self.recent_ended.len() == RECENT_ENDED {
            self.recent_ended.pop_front();
        }
        self.recent_ended.push_back(entry.session_id.clone());
        Some(entry)
    }

    /// The handle of a session named in a JSON message; `Ok(None)` for one
    /// that recently ended (a late message, not a mistake).
    fn lookup(&self, session_id: &str) -> Result<Option<u32>, ProtocolError> {
        if let Some((h, _)) = self
            .sessions
            .iter()
            .find(|(_, e)| e.session_id == session_id)
        {
            return Ok(Some(*h));
        }
        if self.recent_ended.iter().any(|id| id == session_id) {
            return Ok(None);
        }
        Err(ProtocolError::UnknownSession(session_id.to_owned()))
    }
}

/// What the engine said about itself in its `hello`.
#[derive(Debug, Clone)]
pub(super) struct Hello {
    pub(super) name: String,
    pub(super) version: String,
    pub(super) capabilities: Map<String, Value>,
    pub(super) max_sessions: usize,
}

/// One live engine connection.
pub(super) struct Conn {
    pub(super) id: u64,
    pub(super) hello: Hello,
    warm: AtomicBool,
    limits: Limits,
    out: mpsc::Sender<Out>,
    /// Cancelled once the connection is over, for whatever reason.
    pub(super) closed: CancellationToken,
    slices: AtomicU64,
    discarded: AtomicU64,
    state: Mutex<State>,
}

impl Conn {
    /// A connection whose writes go to `out` (drained by the writer task).
    pub(super) fn new(
        id: u64,
        hello: Hello,
        warm: bool,
        limits: Limits,
        out: mpsc::Sender<Out>,
        closed: CancellationToken,
    ) -> Self {
        Self {
            id,
            hello,
            warm: AtomicBool::new(warm),
            limits,
            out,
            closed,
            slices: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            state: Mutex::new(State {
                next_handle: 1,
                ..State::default()
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not turn every later look-up into one.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a session could be opened now.
    pub(super) fn is_ready(&self) -> bool {
        !self.closed.is_cancelled()
            && self.warm.load(Ordering::Relaxed)
            && self.out.capacity() > 0
            && self.state().sessions.len() < self.hello.max_sessions
    }

    /// The connection's figures.
    pub(super) fn status(&self) -> Status {
        let st = self.state();
        Status {
            connected: !self.closed.is_cancelled(),
            warm: self.warm.load(Ordering::Relaxed),
            name: Some(self.hello.name.clone()),
            version: Some(self.hello.version.clone()),
            capabilities: Some(self.hello.capabilities.clone()),
            sessions: st.sessions.len(),
            slices: self.slices.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
            stats: st.stats.clone(),
        }
    }

    /// The engine-wide gauges from its `stats`.
    pub(super) fn gauges(&self) -> Vec<(String, f64)> {
        self.state().gauges.snapshot()
    }

    /// Queues a message outside any session's quota (the connection's own
    /// frames, `session_end`) without waiting.
    pub(super) fn send(&self, msg: &ToEngine<'_>) -> Result<(), EngineError> {
        self.push(Out {
            frame: frame::encode_json(msg),
            _charge: None,
        })
    }

    /// Queues a message of one session against its quota, without waiting.
    pub(super) fn send_for(
        &self,
        quota: &Arc<Quota>,
        lane: Lane,
        msg: &ToEngine<'_>,
    ) -> Result<(), EngineError> {
        let frame = frame::encode_json(msg);
        let charge = Quota::charge(quota, lane, frame.len(), &self.limits)?;
        self.push(Out {
            frame,
            _charge: Some(charge),
        })
    }

    fn push(&self, out: Out) -> Result<(), EngineError> {
        // Full despite every session's quota fitting: the engine is not
        // reading at all (or sessions end and start faster than it reads).
        self.out.try_send(out).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EngineError::Stalled,
            mpsc::error::TrySendError::Closed(_) => EngineError::Lost,
        })
    }

    /// Registers a session about to be started; its slices are accepted from now on.
    pub(super) fn register(
        &self,
        session_id: &str,
        sink: Arc<dyn SliceSink>,
    ) -> Result<Registered, EngineError> {
        let mut st = self.state();
        if st.dead {
            return Err(EngineError::Lost);
        }
        if st.sessions.len() >= self.hello.max_sessions {
            return Err(EngineError::NotReady);
        }
        if st.sessions.values().any(|e| e.session_id == session_id) {
            return Err(EngineError::Failed(format!(
                "session {session_id} is already open on this engine"
            )));
        }
        let handle = st.next_handle;
        // Handles are never reused, so a late slice can never reach a newer session.
        st.next_handle = handle.checked_add(1).ok_or(EngineError::NotReady)?;
        let (tx, rx) = oneshot::channel();
        let quota = Arc::new(Quota::default());
        st.sessions.insert(
            handle,
            Entry {
                session_id: session_id.to_owned(),
                sink,
                phase: Phase::Opening(tx),
                quota: quota.clone(),
                stats: SessionStats::default(),
            },
        );
        Ok(Registered {
            handle,
            reply: rx,
            quota,
        })
    }

    /// Forgets a session the engine never heard of (its `session_start`
    /// could not be queued).
    pub(super) fn forget(&self, handle: u32) {
        self.state().remove(handle);
    }

    /// Ends a session from the server's side: the engine gets `session_end`
    /// unless the session was already gone (failed, refused, or ended).
    pub(super) fn end(&self, handle: u32, reason: &str) {
        let Some(entry) = self.state().remove(handle) else {
            return;
        };
        self.send_end(&entry.session_id, reason);
    }

    /// Queues `session_end`, which no quota refuses. Should even it not fit,
    /// the engine has stopped reading: dropping the connection is then how
    /// the engine learns that the session (and every other) is over.
    pub(super) fn send_end(&self, session_id: &str, reason: &str) {
        if let Err(EngineError::Stalled) = self.send(&ToEngine::SessionEnd { session_id, reason }) {
            tracing::warn!(
                conn = self.id,
                engine = %self.hello.name,
                session_id,
                "the engine's write queue is full even for session_end: dropping the connection"
            );
            self.teardown(EngineError::Stalled);
        }
    }

    /// Sends a message about a running session. `false` when the session is
    /// gone or has just failed (its quota exceeded, or the write queue full).
    /// A `best_effort` message past the quota is skipped instead.
    pub(super) fn to_session(
        &self,
        handle: u32,
        lane: Lane,
        msg: &ToEngine<'_>,
        best_effort: bool,
    ) -> bool {
        let Some(quota) = self.state().sessions.get(&handle).map(|e| e.quota.clone()) else {
            return false;
        };
        match self.send_for(&quota, lane, msg) {
            Ok(()) => true,
            Err(EngineError::Flooded(_)) if best_effort => true,
            Err(err) => {
                match &err {
                    EngineError::Stalled => tracing::warn!(
                        conn = self.id,
                        engine = %self.hello.name,
                        "the engine's write queue is full: failing a session with engine_stalled"
                    ),
                    EngineError::Flooded(why) => tracing::warn!(
                        conn = self.id,
                        engine = %self.hello.name,
                        "a session queued more than its share for the engine: failing it alone ({why})"
                    ),
                    _ => {}
                }
                self.fail(handle, err);
                false
            }
        }
    }

    /// Fails one session with `err`.
    fn fail(&self, handle: u32, err: EngineError) {
        if let Some(entry) = self.state().remove(handle) {
            report(entry, err);
        }
    }

    /// Ends the connection: every session fails with `err`, the engine
    /// is no longer ready, the reader and the writer stop.
    pub(super) fn teardown(&self, err: EngineError) {
        let entries: Vec<Entry> = {
            let mut st = self.state();
            if st.dead {
                return;
            }
            st.dead = true;
            st.sessions.drain().map(|(_, e)| e).collect()
        };
        // Not ready any more before any session hears of the failure, so a
        // server reacting to `failed()` never sees a ready engine.
        self.closed.cancel();
        if !entries.is_empty() {
            tracing::warn!(
                conn = self.id,
                engine = %self.hello.name,
                sessions = entries.len(),
                error = %err,
                "engine connection over: failing its sessions"
            );
        }
        for entry in entries {
            report(entry, err.clone());
        }
    }
}

/// A session just registered: its handle, where `open` waits for the
/// engine's answer, and its share of the write queue.
pub(super) struct Registered {
    pub(super) handle: u32,
    pub(super) reply: oneshot::Receiver<Result<EngineSession, EngineError>>,
    pub(super) quota: Arc<Quota>,
}

/// Tells a removed session's waiter why it is over.
fn report(entry: Entry, err: EngineError) {
    match entry.phase {
        Phase::Opening(tx) => {
            let _ = tx.send(Err(err));
        }
        Phase::Live(reporter) => reporter.fail(err),
    }
}
