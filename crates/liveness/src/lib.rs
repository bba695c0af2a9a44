//! Kernel evidence that a TCP peer is alive, read from outside the
//! connection's own I/O.
//!
//! A live client's TCP stack keeps acknowledging bytes however slow or busy
//! the application on top is; a dead one acknowledges nothing, and the
//! server's send queue sits still. This crate reads those figures
//! (`SIOCOUTQ`, `TCP_INFO`), turns a sequence of them into a verdict with a
//! pure detector, and runs one sampler thread that sweeps every watched
//! socket per interval — so a write that never completes cannot delay the
//! verdict, and the verdict does not need the writer's cooperation.
//!
//! # Layout
//! - [`sys`]: the platform module, the crate's only `unsafe` (Linux), or a
//!   fallback that says "unsupported".
//! - [`socket`]: [`SocketHandle`], a socket number that can never be sampled
//!   after it was closed and reused.
//! - [`pings`]: where each ping ends in the stream, and when the peer's TCP
//!   acknowledged it (the pong clock).
//! - [`detector`]: samples in, verdict out; no clock, no I/O.
//! - [`doubt`]: which sockets a sweep must ask the kernel about, and which
//!   it may skip (their clients keep up); no clock, no I/O.
//! - [`sampler`]: the sweeping thread and its registry.

pub mod detector;
pub mod doubt;
pub mod pings;
pub mod sampler;
pub mod socket;
pub mod sys;

pub use detector::{Detector, DetectorConfig, Evidence, Observation, Reason, Verdict};
pub use pings::{Ping, PingLedger, Pings};
pub use sampler::{Hooks, Sampler, SamplerStats, Watch};
pub use socket::SocketHandle;
pub use sys::{Sample, SampleError, TcpState};
