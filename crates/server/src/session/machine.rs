//! A session's lifecycle as a pure state machine.
//!
//! Everything that decides whether a session lives, waits for a resume or
//! ends is here, and nothing else is: no clock (every input that needs the
//! time is given `now`), no I/O, no locks. [`Machine::step`] takes an
//! [`Input`] and returns the [`Action`]s that follow; the session task (see
//! `session.rs`) only feeds it and carries the actions out. So every path —
//! attach, resume, takeover, a lost transport, detach and expiry, `bye`, a
//! reap, eviction, an engine failure, shutdown, a panic — is a unit test on
//! a simulated clock (`machine/tests.rs`), and the rules a seat depends on
//! are a property test over random event sequences: a seat is held exactly
//! while the session lives, a resume token works once, and an ended session
//! never acts again.
//!
//! ```text
//!             attach               transport lost (resume window)
//!  Starting ─────────▶ Streaming ─────────────────────────────────▶ Detached
//!                       │  ▲  ▲ takeover (resume while attached)      │   │
//!                       │  │  └──────┘                                │   │
//!                       │  └───────────── resume (token) ─────────────┘   │
//!                       │ bye, close, reap, violation, evict,             │ window
//!                       │ overflow, engine failure, shutdown, panic       │ passed
//!                       ▼                                                 ▼
//!                     Ended ◀──────────────────────────────────────────────
//! ```
//!
//! The connection handle is generic ([`Link`]): the server's is
//! `Arc<Conn>`, the tests' a number.

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use seatkeeper_engine::{Control, EngineError};
use seatkeeper_liveness::{Evidence, Reason};
use seatkeeper_protocol::{close, ServerMsg};

use super::conn::ConnEnd;
use crate::metrics::EndReason;

/// A connection as the machine knows it: something with an id.
pub(crate) trait Link: Clone {
    /// Process-unique connection id.
    fn id(&self) -> u64;
}

/// A request to end the session from outside its task (an admin's
/// eviction, a `bye` on the control bus, the outbox overflowing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndRequest {
    /// An admin ended the session.
    Evict,
    /// A `bye` came through the control bus.
    Bye,
    /// Undroppable messages piled past the outbox's bound.
    Overflow,
}

/// The session is already ending; a request to end it changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AlreadyEnding;

/// Session states as `/sessions` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A connection is attached and slices flow (or is about to be).
    Streaming,
    /// The connection was lost; waiting for a resume.
    Detached,
    /// The session is ending.
    Closing,
}

impl State {
    /// The name `/sessions` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Streaming => "streaming",
            Self::Detached => "detached",
            Self::Closing => "closing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Created, no connection attached yet.
    Starting,
    Streaming,
    Detached {
        since: Instant,
        until: Instant,
    },
    Ended,
}

/// What happens to a session.
#[derive(Debug)]
pub(crate) enum Input<C> {
    /// A connection asks to be attached: a fresh session's first one
    /// (`resume: None`), or a resume with the token it presented. `token`
    /// is the token the client gets for its next resume.
    Attach {
        conn: C,
        resume: Option<String>,
        token: String,
    },
    /// Connection `conn` ended, as `how` says.
    ConnEnded { conn: u64, how: ConnEnd },
    /// A request was left with [`Machine::request`].
    Requested,
    /// The server is stopping.
    Shutdown,
    /// The engine failed this session.
    EngineFailed(EngineError),
    /// Time passed (the resume window may have run out).
    Tick,
    /// The session task panicked.
    Panicked,
}

/// What the driver does, in order.
#[derive(Debug)]
pub(crate) enum Action<C> {
    /// Attach `conn`: its writer starts a new generation, `token` replaces
    /// the session's resume token, and `ready` goes out first.
    Attach {
        conn: C,
        token: String,
        resumed: bool,
    },
    /// `old` was taken over by `new` (it is told so with 4002).
    Replace { old: C, new: C },
    /// Tell the engine. A failure to deliver `Detached` ends the session
    /// (the engine would keep producing for nobody); the others are hints.
    Engine(Control),
    /// End connection `conn` this way.
    Finish(C, ConnEnd),
    /// For the log: the session was resumed after `after` detached.
    Resumed { after: Duration },
    /// For the log: the transport was lost as `how` says; the session waits
    /// `window` for a resume.
    Detached { how: ConnEnd, window: Duration },
    /// For the log: no resume came within the window.
    Expired { after: Duration },
    /// The session ended: tell the engine, count it, release the seat.
    /// Always the last action the machine ever returns.
    End(End),
}

/// Why an attach was refused (the session ended, or the token is not its
/// current one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// A session's lifecycle. See the module docs.
#[derive(Debug)]
pub(crate) struct Machine<C> {
    phase: Phase,
    conn: Option<C>,
    /// The token that resumes this session (only the newest one does).
    token: Option<String>,
    /// `None`: a lost transport ends the session at once.
    resume_window: Option<Duration>,
    /// The first outside request to end the session, until it is acted on.
    requested: Option<EndRequest>,
}

impl<C: Link> Machine<C> {
    /// A session that has not had a connection yet.
    pub(crate) fn new(resume_window: Option<Duration>) -> Self {
        Self {
            phase: Phase::Starting,
            conn: None,
            token: None,
            resume_window,
            requested: None,
        }
    }

    /// The attached connection.
    pub(crate) fn conn(&self) -> Option<&C> {
        self.conn.as_ref()
    }

    /// The token that resumes the session now.
    #[cfg(test)]
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The state `/sessions` shows.
    pub(crate) fn state(&self) -> State {
        match self.phase {
            Phase::Starting | Phase::Streaming => State::Streaming,
            Phase::Detached { .. } => State::Detached,
            Phase::Ended => State::Closing,
        }
    }

    /// Whether a connection is attached (pings, stats and progress run).
    pub(crate) fn streaming(&self) -> bool {
        self.phase == Phase::Streaming
    }

    /// Whether the session has ended.
    pub(crate) fn ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// When the resume window runs out, while detached.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Detached { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Leaves a request to end the session; the driver then steps
    /// [`Input::Requested`]. `Ok` means this request will be the end.
    pub(crate) fn request(&mut self, why: EndRequest) -> Result<(), AlreadyEnding> {
        if self.ended() || self.requested.is_some() {
            return Err(AlreadyEnding);
        }
        self.requested = Some(why);
        Ok(())
    }

    /// Applies `input` at `now` and says what follows.
    pub(crate) fn step(&mut self, now: Instant, input: Input<C>) -> Vec<Action<C>> {
        if self.ended() {
            return Vec::new();
        }
        match input {
            Input::Attach {
                conn,
                resume,
                token,
            } => self.attach(now, conn, resume, token),
            Input::ConnEnded { conn, how } => self.conn_ended(now, conn, how),
            Input::Requested => match self.requested {
                Some(EndRequest::Evict) => self.end(End::Evicted),
                Some(EndRequest::Bye) => self.end(End::Bye),
                Some(EndRequest::Overflow) => self.end(End::Overflow),
                None => Vec::new(),
            },
            Input::Shutdown => self.end(End::Shutdown),
            Input::EngineFailed(e) => self.end(End::Engine(e)),
            Input::Tick => match self.phase {
                Phase::Detached { since, until } if now >= until => {
                    let mut actions = vec![Action::Expired {
                        after: now.saturating_duration_since(since),
                    }];
                    actions.extend(self.end(End::Expired));
                    actions
                }
                _ => Vec::new(),
            },
            Input::Panicked => self.end(End::Internal),
        }
    }

    fn attach(
        &mut self,
        now: Instant,
        conn: C,
        resume: Option<String>,
        token: String,
    ) -> Vec<Action<C>> {
        let allowed = match (&self.phase, &resume) {
            (Phase::Starting, None) => true,
            (Phase::Streaming | Phase::Detached { .. }, Some(t)) => self.token.as_ref() == Some(t),
            _ => false,
        };
        if !allowed {
            return Vec::new();
        }
        let resumed = resume.is_some();
        let mut actions = vec![Action::Attach {
            conn: conn.clone(),
            token: token.clone(),
            resumed,
        }];
        self.token = Some(token);
        if let Some(old) = self.conn.replace(conn.clone()) {
            actions.push(Action::Replace { old, new: conn });
        }
        if let Phase::Detached { since, .. } = self.phase {
            actions.push(Action::Resumed {
                after: now.saturating_duration_since(since),
            });
            actions.push(Action::Engine(Control::Resumed));
        }
        actions.push(Action::Engine(Control::Keyframe));
        self.phase = Phase::Streaming;
        actions
    }

    fn conn_ended(&mut self, now: Instant, id: u64, how: ConnEnd) -> Vec<Action<C>> {
        if self.conn.as_ref().map(Link::id) != Some(id) {
            return Vec::new(); // replaced by a resume, or already detached: old news
        }
        let end = match &how {
            ConnEnd::Lost(_)
            | ConnEnd::Reaped(Evidence {
                reason: Reason::PeerClose,
                ..
            }) => match self.resume_window {
                Some(window) => {
                    self.conn = None;
                    self.phase = Phase::Detached {
                        since: now,
                        until: now + window,
                    };
                    let resume_window_ms = window.as_millis().try_into().unwrap_or(u64::MAX);
                    return vec![
                        Action::Detached { how, window },
                        Action::Engine(Control::Detached { resume_window_ms }),
                    ];
                }
                None => match &how {
                    ConnEnd::Reaped(ev) => End::Reaped(ev.reason),
                    _ => End::Lost,
                },
            },
            ConnEnd::Reaped(ev) => End::Reaped(ev.reason),
            ConnEnd::PeerClosed(_) => End::ClientClose,
            ConnEnd::Bye => End::Bye,
            ConnEnd::Violation { .. } => End::Violation,
            // The session's own doing: it has already moved on.
            ConnEnd::Replaced | ConnEnd::Server { .. } => return Vec::new(),
        };
        // The connection is gone: nothing is said to it.
        self.conn = None;
        self.end(end)
    }

    fn end(&mut self, end: End) -> Vec<Action<C>> {
        self.phase = Phase::Ended;
        self.token = None;
        self.requested = None;
        let mut actions = Vec::with_capacity(2);
        if let Some(conn) = self.conn.take() {
            if let Some(farewell) = end.farewell() {
                actions.push(Action::Finish(conn, farewell));
            }
        }
        actions.push(Action::End(end));
        actions
    }
}

/// How a session ended: one place for its metric, the reason the engine is
/// told, and what the attached connection hears.
#[derive(Debug, Clone, PartialEq)]
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
    /// The session task panicked.
    Internal,
}

impl End {
    /// Metrics label.
    pub(crate) fn label(&self) -> EndReason {
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
            Self::Internal => EndReason::Internal,
        }
    }

    /// The reason the engine is told in `session_end`.
    pub(crate) fn engine_reason(&self) -> String {
        match self {
            Self::Reaped(r) => format!("reaped:{}", r.as_str()),
            Self::Engine(e) => format!("engine:{}", e.code()),
            other => other.label().as_str().to_owned(),
        }
    }

    /// Whether the log says it as a warning (the server's or the engine's
    /// trouble, not the client's choice).
    pub(crate) fn is_trouble(&self) -> bool {
        matches!(self, Self::Engine(_) | Self::Overflow | Self::Internal)
    }

    /// What a still-attached connection is told on the way out; `None`
    /// when the connection ends on its own terms.
    pub(crate) fn farewell(&self) -> Option<ConnEnd> {
        let server = |code, error: Option<ServerMsg>, reason: &str| {
            Some(ConnEnd::Server {
                code,
                reason: reason.to_owned(),
                error,
            })
        };
        match self {
            // A `bye` from the control bus closes the client's connection too.
            Self::Bye => Some(ConnEnd::Bye),
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
            Self::Internal => server(
                close::INTERNAL,
                Some(ServerMsg::error(
                    "internal",
                    "the session failed inside the server",
                )),
                "internal error",
            ),
            // The connection already ended (or is ending on its own terms).
            Self::ClientClose | Self::Reaped(_) | Self::Lost | Self::Violation => None,
        }
    }
}
