//! External engines end to end: the real Python example engine as a child
//! process, and small fake engines (in Rust, below) that misbehave on purpose.
//!
//! # Layout
//! - `support`: sockets, the Python child, a collecting sink, fake engines.
//! - `python`: the Python example engine: slices, knobs, kill and restart.
//! - `faults`: engines that stall, send garbage, refuse, or arrive twice.
//! - `bench`: slices per second through the link (`--ignored`).

mod bench;
mod faults;
mod python;
mod support;
