//! Pool figures, rendered in the Prometheus text format: [`PoolMetrics`]
//! for a pod, [`ClaimMetrics`] for a claimer (the allocator). Each process
//! renders only the figures it fills, so no family sits at 0 forever.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters of a pod's pool activity. Everything is a plain relaxed
/// atomic: the numbers are for dashboards, not for decisions.
#[derive(Debug, Default)]
pub struct PoolMetrics {
    /// Seat tokens redeemed by a fresh hello on this pod.
    pub redeemed: AtomicU64,
    /// Hellos refused with `bad_seat_token`.
    pub redeem_bad_token: AtomicU64,
    /// Hellos refused with `pool_unavailable` (Redis unreachable).
    pub redeem_unavailable: AtomicU64,
    /// Claims on this pod that lapsed unredeemed.
    pub lapsed: AtomicU64,
    /// Seats released by a lease as its session ended.
    pub released: AtomicU64,
    /// Held seats freed by the heartbeat's re-sync (a release that was lost).
    pub resynced: AtomicU64,
    /// Releases, re-publications or claims refused because another epoch
    /// owns the seat.
    pub fenced: AtomicU64,
    /// Hellos refused because the pod already holds their seat for an
    /// earlier token (a claim made by a failed-over Redis).
    pub seat_taken: AtomicU64,
    /// Heartbeats that failed (Redis unreachable, timeout, pod id conflict).
    pub heartbeat_errors: AtomicU64,
    /// Times this pod (re-)registered: once at start, once after each outage.
    pub registrations: AtomicU64,
    /// Connections made to Redis (a new one after every error; with
    /// Sentinel each one asks for the current master).
    pub reconnects: AtomicU64,
    /// 1 while the last Redis round trip succeeded, else 0.
    pub redis_up: AtomicU64,
}

impl PoolMetrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Appends `seatkeeper_pool_*` families, each with `# HELP` and `# TYPE`.
    pub fn render_prometheus(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        family(
            out,
            "seatkeeper_pool_claims_redeemed_total",
            "counter",
            "Seat tokens redeemed by a hello on this pod.",
            &[("", get(&self.redeemed))],
        );
        family(
            out,
            "seatkeeper_pool_claims_lapsed_total",
            "counter",
            "Claims on this pod that lapsed unredeemed.",
            &[("", get(&self.lapsed))],
        );
        family(
            out,
            "seatkeeper_pool_redeems_refused_total",
            "counter",
            "Hellos refused by the pool, by error code.",
            &[
                ("code=\"bad_seat_token\"", get(&self.redeem_bad_token)),
                ("code=\"pool_unavailable\"", get(&self.redeem_unavailable)),
            ],
        );
        family(
            out,
            "seatkeeper_pool_seat_taken_total",
            "counter",
            "Hellos refused because this pod holds their seat for an earlier token.",
            &[("", get(&self.seat_taken))],
        );
        family(
            out,
            "seatkeeper_pool_releases_total",
            "counter",
            "Seats returned to the pool: by a lease, or by the heartbeat re-sync.",
            &[
                ("how=\"release\"", get(&self.released)),
                ("how=\"resync\"", get(&self.resynced)),
            ],
        );
        family(
            out,
            "seatkeeper_pool_fenced_total",
            "counter",
            "Releases, re-publications or claims refused for another epoch.",
            &[("", get(&self.fenced))],
        );
        family(
            out,
            "seatkeeper_pool_heartbeat_errors_total",
            "counter",
            "Failed pool heartbeats.",
            &[("", get(&self.heartbeat_errors))],
        );
        family(
            out,
            "seatkeeper_pool_registrations_total",
            "counter",
            "Pool registrations (start, and after each Redis outage).",
            &[("", get(&self.registrations))],
        );
        family(
            out,
            "seatkeeper_pool_redis_connections_total",
            "counter",
            "Connections made to Redis (after each error; through Sentinel when configured).",
            &[("", get(&self.reconnects))],
        );
        family(
            out,
            "seatkeeper_pool_redis_up",
            "gauge",
            "1 while the last Redis round trip succeeded.",
            &[("", get(&self.redis_up))],
        );
    }
}

/// Upper bounds of the claim latency histogram, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A claimer's figures: claims by outcome and their latency. The Redis
/// gauge is the claimer's connection's, read at render time.
#[derive(Debug, Default)]
pub struct ClaimMetrics {
    /// Claims that reserved a seat.
    pub granted: AtomicU64,
    /// Claims answered `no_free_seat`.
    pub no_free_seat: AtomicU64,
    /// Claims that failed (Redis unreachable, unconfirmed, conflict).
    pub failed: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl ClaimMetrics {
    /// Records one claim's latency.
    pub(crate) fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Appends the claim families and `seatkeeper_pool_redis_up` (`up`).
    pub fn render_prometheus(&self, up: u64, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        family(
            out,
            "seatkeeper_pool_claims_total",
            "counter",
            "Seat claims by outcome.",
            &[
                ("outcome=\"granted\"", get(&self.granted)),
                ("outcome=\"no_free_seat\"", get(&self.no_free_seat)),
                ("outcome=\"error\"", get(&self.failed)),
            ],
        );
        let name = "seatkeeper_pool_claim_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to answer a claim, Redis round trips included."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", get(bucket));
        }
        let count = get(&self.count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", get(&self.sum_us) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
        family(
            out,
            "seatkeeper_pool_redis_up",
            "gauge",
            "1 while the last Redis round trip succeeded.",
            &[("", up)],
        );
    }
}

pub(crate) fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(&str, u64)],
) {
    // Writing into a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_families(out: &str) {
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(out.contains(&format!("# TYPE {base} ")), "{name}");
            assert!(out.contains(&format!("# HELP {base} ")), "{name}");
        }
    }

    #[test]
    fn renders_every_family_with_help_and_type() {
        let m = PoolMetrics::default();
        PoolMetrics::add(&m.lapsed, 3);
        let mut out = String::new();
        m.render_prometheus(&mut out);
        assert!(out.contains("seatkeeper_pool_claims_lapsed_total 3\n"));
        assert!(!out.contains("seatkeeper_pool_claims_total"));
        check_families(&out);
    }

    #[test]
    fn claim_metrics_render_a_histogram() {
        let m = ClaimMetrics::default();
        PoolMetrics::inc(&m.granted);
        m.observe(Duration::from_micros(800));
        m.observe(Duration::from_secs(7));
        let mut out = String::new();
        m.render_prometheus(1, &mut out);
        assert!(out.contains("seatkeeper_pool_claims_total{outcome=\"granted\"} 1\n"));
        assert!(out.contains("_bucket{le=\"0.0005\"} 0\n"));
        assert!(out.contains("_bucket{le=\"0.001\"} 1\n"));
        assert!(out.contains("_bucket{le=\"5\"} 1\n"));
        assert!(out.contains("_bucket{le=\"+Inf\"} 2\n"));
        assert!(out.contains("seatkeeper_pool_redis_up 1\n"));
        check_families(&out);
    }
}
