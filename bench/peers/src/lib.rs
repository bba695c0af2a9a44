//! The benchmark suite's plumbing: starting each peer as a process on a
//! port of its own, and the figures measured against them.
//!
//! # Layout
//! - [`peer`]: seatkeeper, the Python `websockets` server (with and without
//!   the watchdog), the plain tokio-tungstenite server.
//! - [`figures`]: each figure the suite reports.
//! - [`floor`]: the hand-rolled wire scraps of `floor-peer`, the leanest
//!   server for the same subset (a floor to measure the others against).

pub mod figures;
pub mod floor;
pub mod peer;

/// What the benchmark's own servers (`tt-peer`, `floor-peer`) take besides
/// their address: the same flags, so one command line drives either.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerArgs {
    /// Concurrent sessions.
    #[arg(long, default_value_t = 1)]
    pub seats: u64,
    /// synthetic:RATE_HZ:BYTES (demo = synthetic:10:19200).
    #[arg(long, default_value = "synthetic:10:19200")]
    pub engine: String,
    /// Most slices in flight.
    #[arg(long, default_value_t = 16)]
    pub window_slices: u64,
    /// Most payload bytes in flight.
    #[arg(long, default_value_t = 4 << 20)]
    pub window_bytes: u64,
}
