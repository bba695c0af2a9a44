//! Client behaviours that a real-time session server must survive, played
//! on demand against any server that speaks the seatkeeper contract, and a
//! load generator. `seatkeeper chaos` answers an operator's question —
//! "would my setup reap this client, and how fast?" — with one JSON line;
//! the integration tests and the benchmark suite call the same code.
//!
//! Everything here only ever connects to loopback or to the addresses of a
//! network namespace it made itself ([`target`] enforces it unless the
//! caller opts out), and every wait is bounded.
//!
//! # Layout
//! - [`args`]: `seatkeeper chaos` flags ([`ChaosArgs`]) and the scenario names.
//! - [`run`](fn@run) / [`run_many`]: play a scenario, return [`Verdict`]s.
//! - [`scenario`]: one module per family of behaviours.
//! - [`verdict`]: the JSON line.
//! - [`client`]: the WebSocket client (the tool's, the load generator's and
//!   the tests'), whose socket the caller controls.
//! - [`frame`]: WebSocket frames by hand, for the client's raw escape hatch.
//! - [`relay`]: the tunnel stand-in that stops reading pod-side.
//! - [`http`]: the one-request HTTP/1.1 client (the tool's and the tests')
//!   and the `/sessions` probe.
//! - [`child`]: client processes (for SIGSTOP and the network namespace).
//! - [`netns`]: the namespace and veth pair of the `blackhole` scenario.
//! - [`field`]: a namespace per test or benchmark behind a `tbf`-shaped link
//!   that can be cut, plus a clean control link.
//! - [`target`]: URL parsing and the loopback-only guard.
//! - [`hist`]: a small log-linear latency histogram.
//! - [`load`]: `seatkeeper load`, N sessions from one process.

pub mod args;
pub mod child;
pub mod client;
mod error;
pub mod field;
pub mod frame;
pub mod hist;
pub mod http;
pub mod load;
pub mod netns;
pub mod relay;
pub mod scenario;
pub mod target;
pub mod verdict;

pub use args::{ChaosArgs, Scenario};
pub use error::ChaosError;
pub use relay::Relay;
pub use scenario::{run, run_many};
pub use verdict::Verdict;
