//! The two ends of one engine session.

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::EngineError;

/// Messages from a session to its engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Knobs from a `params` message (the whole object).
    Params(Map<String, Value>),
    /// The client (re)attached: send a keyframe next.
    Keyframe,
    /// The session ended, with its reason (`bye`, `reaped:send_stall`, …).
    End(String),
}

/// Most control messages queued for one engine session; past this the
/// engine is not keeping up and the session ends with `engine_stalled`.
pub const CONTROL_QUEUE: usize = 64;

/// The session's handle on its engine. Dropping it stops the engine session.
#[derive(Debug)]
pub struct EngineSession {
    /// Engine description for `ready.engine`: name, version, knobs.
    pub info: Value,
    control: mpsc::Sender<Control>,
    failure: Option<oneshot::Receiver<EngineError>>,
}

/// The engine's end: control messages in, one failure report out.
#[derive(Debug)]
pub struct EngineSide {
    /// Control messages from the session; closed when the session ends.
    pub control: mpsc::Receiver<Control>,
    failure: oneshot::Sender<EngineError>,
}

impl EngineSession {
    /// A connected pair.
    pub fn pair(info: Value) -> (Self, EngineSide) {
        let (ctx, crx) = mpsc::channel(CONTROL_QUEUE);
        let (ftx, frx) = oneshot::channel();
        (
            Self {
                info,
                control: ctx,
                failure: Some(frx),
            },
            EngineSide {
                control: crx,
                failure: ftx,
            },
        )
    }

    /// Sends a control message without waiting.
    pub fn control(&self, msg: Control) -> Result<(), EngineError> {
        self.control.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EngineError::Stalled,
            mpsc::error::TrySendError::Closed(_) => EngineError::Lost,
        })
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
    /// Reports that the engine can no longer serve this session.
    pub fn fail(self, err: EngineError) {
        let _ = self.failure.send(err);
    }

    /// Splits into the control receiver and a failure reporter.
    pub fn split(self) -> (mpsc::Receiver<Control>, FailureReporter) {
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
