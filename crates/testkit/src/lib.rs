//! Test-only helpers: start the real `seatkeeper` binary on a free loopback
//! port, speak to it over real sockets, and wait for conditions with
//! generous bounds. Each integration test then reads like its scenario.
//!
//! # Layout
//! - [`server`]: spawn the binary, plain HTTP/1.1 GETs, wait-for helpers.
//! - [`client`]: a WebSocket client whose socket the test controls
//!   (buffer sizes, freezing, FIN, RST).
//! - [`redis`]: a throwaway `redis-server` for pool tests ([`redis_or_skip!`]).
//! - [`pool`]: pods in pool mode, the pool CLI, the session steps pool tests share.
//! - [`proc`]: run the binary to completion; a `serve`'s pid, descriptors
//!   and memory from `/proc`.
//! - [`raw`]: a hand-written WebSocket client for bad input.
//! - [`rng`]: a xorshift generator.
//! - [`sentinel`]: a master, a replica and a Sentinel, for failover tests.
//! - [`field`]: a network namespace with a `tbf`-shaped link that can be
//!   cut, for the reaper's field tests.
//! - [`relay`]: a TCP relay that can stop reading pod-side (the tunnel).

pub mod client;
pub mod field;
pub mod pool;
pub mod proc;
pub mod raw;
pub mod redis;
pub mod relay;
pub mod rng;
pub mod sentinel;
pub mod server;

pub use client::{Client, Event};
pub use relay::Relay;
pub use rng::Rng;
pub use server::{wait_until, Server};
