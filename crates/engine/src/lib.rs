//! Engines produce a session's slices. The server opens one engine session
//! per seatkeeper session and stops it when the session ends; the engine
//! pushes slices into the session's [`SliceSink`] on its own clock.
//!
//! # Layout
//! - [`session`]: the handle a session holds ([`EngineSession`]) and the
//!   engine's side of it ([`EngineSide`]).
//! - [`paced`]: a clock that paces a [`paced::Generator`] in catch-up batches.
//! - [`demo`]: the built-in generative audio engine (`demo`).
//! - [`synthetic`]: fixed-size slices at a fixed rate (`synthetic:RATE:BYTES`).
//! - [`spec`]: parsing `--engine` and building the engine it names.
//! - [`stats`]: engine `stats`, per session and as bounded gauges.
//! - [`knobs`]: the knob schema engines describe their knobs in.
//! - [`external`]: engines in another process, over a Unix or TCP socket
//!   (`unix:PATH`, `tcp:HOST:PORT`; protocol in `docs/ENGINE.md`).

pub mod demo;
pub mod external;
pub mod knobs;
pub mod paced;
pub mod session;
pub mod spec;
pub mod stats;
pub mod synthetic;

use std::{future::Future, pin::Pin, sync::Arc};

use seatkeeper_protocol::slice::Frame;
use serde_json::{Map, Value};

pub use session::{Control, ControlReceiver, EngineSession, EngineSide, Progress};
pub use spec::EngineSpec;

/// One slice from an engine, before the session gives it a `seq`.
#[derive(Debug, Clone)]
pub struct Slice {
    /// Engine-defined payload kind (slice header `kind`).
    pub kind: u16,
    /// Flag bits: droppable, keyframe (see `seatkeeper_protocol::slice`).
    pub flags: u8,
    /// Media timestamp in microseconds.
    pub timestamp_us: u64,
    /// The frame: header room and payload.
    pub frame: Frame,
}

/// Where an engine puts its slices: the session's outbox. Never blocks.
pub trait SliceSink: Send + Sync + 'static {
    /// Hands over one slice; flow control decides whether it is sent.
    fn push(&self, slice: Slice);
}

/// What the server asks of an engine to start a session.
pub struct OpenRequest {
    /// The seatkeeper session id.
    pub session_id: String,
    /// `hello.engine`, unchanged (empty when absent).
    pub config: Map<String, Value>,
    /// Where slices go.
    pub sink: Arc<dyn SliceSink>,
    /// The server's shutdown: an engine still opening the session gives up
    /// when it fires, and tells an external engine `session_end` `shutdown`.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// Why an engine could not serve, or stopped serving, a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No engine is connected, or it is not warm yet.
    #[error("no engine is ready")]
    NotReady,
    /// The engine went away (process died, connection lost).
    #[error("the engine was lost")]
    Lost,
    /// The engine stopped reading what the server sends it.
    #[error("the engine stopped reading its control messages")]
    Stalled,
    /// The engine refused the session or reported an error.
    #[error("engine error: {0}")]
    Failed(String),
    /// This session queued more towards the engine than its share (frames
    /// or bytes) before the engine took it: the client's flood, not the
    /// engine's failure. Only this session ends; others are untouched.
    #[error("{0}")]
    Flooded(String),
}

impl EngineError {
    /// The `error.code` for the client.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotReady => "engine_not_ready",
            Self::Lost => "engine_lost",
            Self::Stalled => "engine_stalled",
            Self::Failed(_) => "engine_error",
            Self::Flooded(_) => "params_flood",
        }
    }

    /// Whether the client caused it (close 1008) rather than the engine (1011).
    pub fn is_client_fault(&self) -> bool {
        matches!(self, Self::Flooded(_))
    }
}

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An engine: something that can open sessions.
pub trait Engine: Send + Sync + 'static {
    /// Short name, for logs and metrics.
    fn name(&self) -> String;
    /// Whether a new session could be opened now (drives `/readyz`).
    fn is_ready(&self) -> bool;
    /// Starts one session. The returned handle's `info` goes into `ready.engine`.
    fn open(&self, req: OpenRequest) -> BoxFuture<Result<EngineSession, EngineError>>;
    /// The numeric fields of the engine's latest `stats`, engine-wide, by
    /// name (at most [`stats::MAX_NAMES`] names), for `/metrics`.
    fn stat_gauges(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
}
