//! The two ends of one engine session.
//!
//! The control channel has two lanes in one bounded queue: the client's
//! `params` (and the server's progress reports) may fill [`CONTROL_QUEUE`]
//! slots, and [`LIFECYCLE_RESERVE`] more are kept for lifecycle messages
//! (keyframe, detached, resumed, end), so a client's flood can never crowd
//! out what the engine must hear about the session's life.

mod queue;

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::{stats::SessionStats, EngineError};

pub use queue::Receiver as ControlReceiver;

/// Messages from a session to its engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Knobs from a `params` message (the whole object).
    Params(Map<String, Value>),
    /// The client (re)attached: send a keyframe next.
    Keyframe,
    /// The client's transport is lost; the session waits this long for a
    /// resume. Engines should stop producing meanwhile.
    Detached {
        /// The resume window, in milliseconds.
        resume_window_ms: u64,
    },
    /// The client is back (a [`Control::Keyframe`] follows).
    Resumed,
    /// How far the client has got (sent at most 4 times a second).
    Progress(Progress),
    /// The session ended, with its reason (`bye`, `reaped:send_stall`, …).
    End(String),
}

/// The client's progress, for engines that run just ahead of playback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// The client's last acknowledged `seq`.
    pub acked_seq: u64,
    /// The last `seq` sent to the client.
    pub sent_seq: u64,
    /// The client's playback buffer depth, when it reports one.
    pub buffer_ms: Option<f64>,
}

/// Most `params` (and progress) messages queued for one engine session;
/// past this the client is sending faster than the engine takes them and
/// the session ends with `params_flood` (1008). Progress reports are simply
/// skipped then (the next one carries the latest figures).
pub const CONTROL_QUEUE: usize = 64;
/// Slots kept for lifecycle messages on top of [`CONTROL_QUEUE`]; a
/// lifecycle message that finds even these taken means the engine stopped
/// taking its messages (`engine_stalled`).
pub const LIFECYCLE_RESERVE: usize = 8;

/// The session's handle on its engine. Dropping it stops the engine session.
#[derive(Debug)]
pub struct EngineSession {
    /// Engine description for `ready.engine`: name, version, knobs.
    pub info: Value,
    control: queue::Sender,
    failure: Option<oneshot::Receiver<EngineError>>,
    stats: SessionStats,
    wants_progress: bool,
}

/// The engine's end: control messages in, one failure report out.
#[derive(Debug)]
pub struct EngineSide {
    /// Control messages from the session; closed when the session ends.
    pub control: ControlReceiver,
    failure: oneshot::Sender<EngineError>,
}

impl EngineSession {
    /// A connected pair.
    pub fn pair(info: Value) -> (Self, EngineSide) {
        Self::pair_with_stats(info, SessionStats::default())
    }

    /// A connected pair whose engine reports figures into `stats`.
    pub fn pair_with_stats(info: Value, stats: SessionStats) -> (Self, EngineSide) {
        let (ctx, crx) = queue::queue(CONTROL_QUEUE + LIFECYCLE_RESERVE);
        let (ftx, frx) = oneshot::channel();
        (
            Self {
                info,
                control: ctx,
                failure: Some(frx),
                stats,
                wants_progress: false,
            },
            EngineSide {
                control: crx,
                failure: ftx,
            },
        )
    }

    /// Sends a control message without waiting. `Err(Flooded)` when this
    /// session's `params` lane is full; a progress report that does not fit
    /// is skipped (`Ok`).
    pub fn control(&self, msg: Control) -> Result<(), EngineError> {
        let data_lane_full = self.control.capacity() <= LIFECYCLE_RESERVE;
        match &msg {
            Control::Params(_) if data_lane_full => {
                return Err(EngineError::Flooded(format!(
                    "more than {CONTROL_QUEUE} params messages queued before the engine took them"
                )))
            }
            Control::Progress(_) if data_lane_full => return Ok(()),
            _ => {}
        }
        self.control.try_send(msg).map_err(|e| match e {
            queue::SendError::Full => EngineError::Stalled,
            queue::SendError::Closed => EngineError::Lost,
        })
    }

    /// Marks an engine that uses [`Control::Progress`]; the built-in ones do
    /// not, and sparing them the reports spares a timer per session.
    pub fn with_progress(mut self) -> Self {
        self.wants_progress = true;
        self
    }

    /// Whether the engine wants [`Control::Progress`] reports.
    pub fn wants_progress(&self) -> bool {
        self.wants_progress
    }

    /// The engine's latest figures for this session.
    pub fn stats(&self) -> SessionStats {
        self.stats.clone()
    }

    /// Ends the engine session with a reason (best effort) and drops it.
    pub fn end(self, reason: &str) {
        let _ = self.control.try_send(Control::End(reason.to_owned()));
    }

    /// Resolves when the engine fails this session; pending while it serves.
    pub async fn failed(&mut self) -> EngineError {
        match self.failure.as_mut() {
            Some(rx) => {
                let err = rx.await.unwrap_or(EngineError::Lost);
                self.failure = None;
                err
            }
            None => std::future::pending().await,
        }
    }
}

impl EngineSide {
    /// Splits into the control receiver and a failure reporter.
    pub fn split(self) -> (ControlReceiver, FailureReporter) {
        (self.control, FailureReporter(self.failure))
    }
}

/// Reports an engine session's failure, once.
#[derive(Debug)]
pub struct FailureReporter(oneshot::Sender<EngineError>);

impl FailureReporter {
    /// Reports the failure to the session.
    pub fn fail(self, err: EngineError) {
        let _ = self.0.send(err);
    }
}
