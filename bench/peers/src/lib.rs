//! The benchmark suite's plumbing: starting each peer as a process on a
//! port of its own, and the figures measured against them.
//!
//! # Layout
//! - [`peer`]: seatkeeper, the Python `websockets` server (with and without
//!   the watchdog), the plain tokio-tungstenite server.
//! - [`figures`]: each figure the suite reports.

pub mod figures;
pub mod peer;
