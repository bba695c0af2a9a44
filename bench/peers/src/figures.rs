//! The figures. Each function starts the peers it needs, measures, stops
//! them, and returns its results as JSON for `results.json`.
//!
//! # Layout
//! - [`release`]: time to release a frozen / tunnel / blackholed client's seat.
//! - [`live`]: false reaps among live clients over 3× the grace window.
//! - [`throughput`]: one session's MB/s (1 MiB slices) and slices/s (4 KiB).
//! - [`field`]: dead and live clients across a `tbf`-shaped link, one
//!   network namespace per peer, rate and scenario.
//! - [`latency`]: p50/p99 delivery latency at a steady rate; watchdog cost.
//! - [`resume`]: reconnect → first slice over 100 resumes vs a fresh session.

pub mod field;
pub mod latency;
pub mod live;
pub mod release;
pub mod resume;
pub mod throughput;

use std::{net::IpAddr, path::PathBuf};

use crate::peer::{Kind, Paths, Peer, Setup};

/// What every figure needs.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The programs.
    pub paths: Paths,
    /// The chaos binary (child clients of blackhole).
    pub chaos: PathBuf,
    /// Grace window given to seatkeeper and the Python watchdog.
    pub grace_s: f64,
    /// Sampling interval for both.
    pub interval_ms: u64,
    /// Runs per release scenario and peer.
    pub runs: usize,
    /// Longest wait for a release.
    pub timeout_s: f64,
}

impl Bench {
    /// A setup on loopback.
    pub fn setup(&self, seats: usize, engine: &str) -> Setup {
        Setup {
            ip: IpAddr::from([127, 0, 0, 1]),
            seats,
            engine: engine.to_owned(),
            grace_s: self.grace_s,
            interval_ms: self.interval_ms,
            window: None,
            netns: None,
        }
    }

    /// Starts every peer with `setup`.
    pub async fn start_all(&self, setup: &Setup) -> anyhow::Result<Vec<Peer>> {
        let mut peers = Vec::new();
        for k in Kind::ALL {
            peers.push(Peer::start(k, &self.paths, setup).await?);
        }
        Ok(peers)
    }
}

/// Stops every peer.
pub async fn stop_all(peers: Vec<Peer>) {
    for p in peers {
        p.stop().await;
    }
}
