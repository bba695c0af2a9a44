//! The engine link through the real binary: a small engine written here in
//! Rust (`fake`) connects to the server's engine socket, and real clients
//! connect over loopback.
//!
//! # Layout
//! - `fake`: the test engine (slow reader on demand, records what it hears).
//! - `fairness`: floods are the flooder's fault (1008), bystanders stream on,
//!   `session_end` always arrives.
//! - `bench`: figures for BENCHMARKS.md (`--ignored`).
//! - `lifecycle`: `session_detached`, `session_resumed`, `progress`, stats,
//!   `welcome.max_sessions`, the knob schema; the demo engine while detached.

mod bench;
mod fairness;
mod fake;
mod lifecycle;

use std::time::Duration;

use seatkeeper_testkit::{server::socket_path, Server};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");
/// Generous bound for anything that should happen "soon".
const SOON: Duration = Duration::from_secs(20);

/// Waits for `/readyz` to say 200.
async fn ready(s: &Server) {
    assert!(s.wait_ready(SOON).await, "never ready: {}", s.log_text());
}

/// The session object of `GET /sessions/{id}`.
async fn session(s: &Server, id: &str) -> Value {
    s.get_json(&format!("/sessions/{id}")).await
}
