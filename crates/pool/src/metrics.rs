//! Pool counters, rendered in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one process's pool activity. A pod fills the redeem, lapse,
/// release and heartbeat counters; `pool claim` and the allocator fill the
/// claim counters. Everything is a plain relaxed atomic: the numbers are
/// for dashboards, not for decisions.
#[derive(Debug, Default)]
pub struct PoolMetrics {
    /// Claims that reserved a seat.
    pub claims_granted: AtomicU64,
    /// Claims answered `no_free_seat`.
    pub claims_no_free_seat: AtomicU64,
    /// Claims that failed because Redis could not be reached.
    pub claims_failed: AtomicU64,
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
    /// Releases or re-publications refused because a newer epoch owns the seat.
    pub fenced: AtomicU64,
    /// Heartbeats that failed (Redis unreachable, timeout, pod id conflict).
    pub heartbeat_errors: AtomicU64,
    /// Times this pod (re-)registered: once at start, once after each outage.
    pub registrations: AtomicU64,
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
            "seatkeeper_pool_claims_total",
            "counter",
            "Seat claims by outcome.",
            &[
                ("outcome=\"granted\"", get(&self.claims_granted)),
                ("outcome=\"no_free_seat\"", get(&self.claims_no_free_seat)),
                ("outcome=\"error\"", get(&self.claims_failed)),
            ],
        );
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
            "Releases or re-publications refused for a stale epoch.",
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
            "seatkeeper_pool_redis_up",
            "gauge",
            "1 while the last Redis round trip succeeded.",
            &[("", get(&self.redis_up))],
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, u64)]) {
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

    #[test]
    fn renders_every_family_with_help_and_type() {
        let m = PoolMetrics::default();
        PoolMetrics::inc(&m.claims_granted);
        PoolMetrics::add(&m.lapsed, 3);
        let mut out = String::new();
        m.render_prometheus(&mut out);
        assert!(out.contains("seatkeeper_pool_claims_total{outcome=\"granted\"} 1\n"));
        assert!(out.contains("seatkeeper_pool_claims_lapsed_total 3\n"));
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(out.contains(&format!("# TYPE {name} ")), "{name}");
            assert!(out.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
