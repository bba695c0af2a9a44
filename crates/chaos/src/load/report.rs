//! The load generator's JSON report.

use std::{collections::BTreeMap, time::Duration};

use serde::Serialize;

use super::{conn::Outcome, LoadArgs};
use crate::hist::Histogram;

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: Option<u64>,
    /// 99th percentile.
    pub p99_us: Option<u64>,
    /// 99.9th percentile.
    pub p999_us: Option<u64>,
    /// Largest.
    pub max_us: u64,
}

/// What `seatkeeper load` prints.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Sessions asked for.
    pub sessions: usize,
    /// Sessions that got `ready`.
    pub ready: usize,
    /// Hellos answered with something else (`busy`, `error`), by type.
    pub refused: BTreeMap<String, u64>,
    /// Sessions that failed to connect or hello.
    pub errors: u64,
    /// First error text, for a post-mortem.
    pub first_error: Option<String>,
    /// Wall time of the run, seconds.
    pub elapsed_s: f64,
    /// Slices delivered, all sessions.
    pub slices: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// Slices a second, all sessions.
    pub slices_per_s: f64,
    /// Payload megabytes (10^6) a second.
    pub mb_per_s: f64,
    /// Slices the server dropped by flow control (its `stats`).
    pub dropped: u64,
    /// Gaps in `seq`.
    pub seq_gaps: u64,
    /// Delivery latency against each session's first slice.
    pub latency: Latency,
    /// Sessions the server ended before the run did (reaps, closes), by how.
    pub ended_early: BTreeMap<String, u64>,
    /// Seats `/sessions` still listed 2 s after every client said bye.
    pub seats_held_after: Option<u64>,
}

impl LoadReport {
    pub(super) fn build(
        args: &LoadArgs,
        outcomes: &[Outcome],
        hist: &Histogram,
        ended_early: BTreeMap<String, u64>,
        elapsed: Duration,
        seats_held_after: Option<u64>,
    ) -> Self {
        let mut refused = BTreeMap::new();
        for o in outcomes {
            if let Some(r) = &o.refused {
                *refused.entry(r.clone()).or_default() += 1;
            }
        }
        let slices: u64 = outcomes.iter().map(|o| o.slices).sum();
        let bytes: u64 = outcomes.iter().map(|o| o.bytes).sum();
        let secs = elapsed.as_secs_f64().max(1e-9);
        Self {
            sessions: args.sessions,
            ready: outcomes.iter().filter(|o| o.ready).count(),
            refused,
            errors: outcomes.iter().filter(|o| o.error.is_some()).count() as u64,
            first_error: outcomes.iter().find_map(|o| o.error.clone()),
            elapsed_s: secs,
            slices,
            bytes,
            slices_per_s: slices as f64 / secs,
            mb_per_s: bytes as f64 / secs / 1e6,
            dropped: outcomes.iter().map(|o| o.dropped).sum(),
            seq_gaps: outcomes.iter().map(|o| o.gaps).sum(),
            latency: Latency {
                count: hist.count(),
                p50_us: hist.quantile(0.5),
                p99_us: hist.quantile(0.99),
                p999_us: hist.quantile(0.999),
                max_us: hist.max(),
            },
            ended_early,
            seats_held_after,
        }
    }

    /// The one-line JSON form.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
