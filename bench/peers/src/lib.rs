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
