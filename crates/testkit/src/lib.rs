//! Test-only helpers: start the real `seatkeeper` binary on a free loopback
//! port, speak to it over real sockets, and wait for conditions with
//! generous bounds. Each integration test then reads like its scenario.
//!
//! # Layout
//! - [`server`]: spawn the binary, its routes over [`http`], wait-for helpers.
//! - [`ws`]: the one WebSocket client (the chaos tool's): a `Result` API on
//!   a socket the test controls (buffer sizes, freezing, FIN, RST), with a
//!   raw escape hatch for bad input, and the frame codec ([`ws::frame`]).
//! - [`client`]: [`Client`], that client with each step a call that panics
//!   on failure, so a scenario reads as its steps.
//! - [`http`]: the one HTTP/1.1 client (the chaos tool's), with a raw
//!   escape hatch for requests written by hand.
//! - [`redis`]: a throwaway `redis-server` for pool tests ([`redis_or_skip!`]).
//! - [`pool`]: pods in pool mode, the pool CLI, the session steps pool tests share.
//! - [`proc`]: run the binary to completion; a `serve`'s pid, descriptors
//!   and memory from `/proc`.
//! - [`rng`]: a xorshift generator.
//! - [`sentinel`]: a master, a replica and a Sentinel, for failover tests.
//! - [`field`]: a network namespace with a `tbf`-shaped link that can be
//!   cut, for the reaper's field tests.
//! - [`tls`]: a self-signed certificate and a connector that trusts it.
//! - [`relay`]: a TCP relay that can stop reading pod-side (the tunnel).

pub mod client;
pub mod field;
pub mod pool;
pub mod proc;
pub mod redis;
pub mod relay;
pub mod rng;
pub mod sentinel;
pub mod server;
pub mod tls;

/// The one WebSocket client and its frame codec, shared with the chaos tool.
pub mod ws {
    pub use seatkeeper_chaos::client::{Client, Event, HelloOutcome, Ready};
    pub use seatkeeper_chaos::frame;
}

/// The one HTTP/1.1 client, shared with the chaos tool.
pub mod http {
    pub use seatkeeper_chaos::http::{exchange, exchange_on, http};
}

pub use client::Client;
pub use relay::Relay;
pub use rng::Rng;
pub use server::{wait_until, Server};
pub use ws::Event;
