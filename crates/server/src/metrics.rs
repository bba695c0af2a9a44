//! Process-wide counters and their Prometheus text exposition. Plain
//! atomics: the hot path pays one relaxed add per event.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

use seatkeeper_liveness::Reason;

/// Why sessions ended, as labels of `seatkeeper_sessions_ended_total`.
pub const END_REASONS: [&str; 11] = [
    "bye",
    "client_close",
    "reaped",
    "lost",
    "expired",
    "evicted",
    "violation",
    "overflow",
    "engine",
    "shutdown",
    "internal",
];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Sessions started.
    pub sessions_started: AtomicU64,
    /// Sessions ended, per [`END_REASONS`] index.
    pub sessions_ended: [AtomicU64; END_REASONS.len()],
    /// Reaps, per [`Reason::ALL`] index.
    pub reaps: [AtomicU64; 3],
    /// Hellos refused with `busy`.
    pub busy: AtomicU64,
    /// Connections refused before a session (bad hello, token, timeout).
    pub refused: AtomicU64,
    /// WebSocket upgrades accepted.
    pub upgrades: AtomicU64,
    /// Connections refused over `--max-connections`.
    pub connections_refused: AtomicU64,
    /// Open TCP connections.
    pub connections_open: AtomicU64,
    /// Slices written.
    pub slices_sent: AtomicU64,
    /// Slices dropped by flow control.
    pub slices_dropped: AtomicU64,
    /// Payload bytes written.
    pub bytes_sent: AtomicU64,
    /// Client messages received.
    pub messages_in: AtomicU64,
    /// Client messages refused (bad, unknown, flood, too big).
    pub messages_refused: AtomicU64,
    /// Sessions resumed by a new connection.
    pub resumes: AtomicU64,
    /// Resumes that replaced a still-attached connection.
    pub takeovers: AtomicU64,
    /// Accept errors (descriptor limit and the like).
    pub accept_errors: AtomicU64,
}

impl Metrics {
    /// Counts a session end.
    pub fn ended(&self, reason: &str) {
        let i = END_REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(END_REASONS.len() - 1);
        self.sessions_ended[i].fetch_add(1, Relaxed);
    }

    /// Counts a reap.
    pub fn reaped(&self, reason: Reason) {
        let i = Reason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.reaps[i].fetch_add(1, Relaxed);
    }
}

/// Writes one metric family.
pub fn family<V: std::fmt::Display>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(&str, V)],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

impl Metrics {
    /// Appends the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let labelled =
            |labels: &mut dyn Iterator<Item = (String, &AtomicU64)>| -> Vec<(String, u64)> {
                labels.map(|(l, v)| (l, v.load(Relaxed))).collect()
            };
        let ended = labelled(
            &mut END_REASONS
                .iter()
                .zip(&self.sessions_ended)
                .map(|(r, v)| (format!("reason=\"{r}\""), v)),
        );
        let reaps = labelled(
            &mut Reason::ALL
                .iter()
                .zip(&self.reaps)
                .map(|(r, v)| (format!("reason=\"{}\"", r.as_str()), v)),
        );
        for (name, help, samples) in [
            (
                "seatkeeper_sessions_ended_total",
                "Sessions ended, by reason.",
                ended,
            ),
            (
                "seatkeeper_reaps_total",
                "Dead clients reaped, by the rule that fired.",
                reaps,
            ),
        ] {
            let samples: Vec<(&str, u64)> = samples.iter().map(|(l, v)| (l.as_str(), *v)).collect();
            family(out, name, "counter", help, &samples);
        }
        for (name, help, v) in [
            (
                "seatkeeper_sessions_started_total",
                "Sessions started.",
                &self.sessions_started,
            ),
            (
                "seatkeeper_busy_total",
                "Hellos refused for want of a seat.",
                &self.busy,
            ),
            (
                "seatkeeper_refused_total",
                "Connections refused before a session (bad hello, bad token, no hello in time).",
                &self.refused,
            ),
            (
                "seatkeeper_upgrades_total",
                "WebSocket upgrades accepted.",
                &self.upgrades,
            ),
            (
                "seatkeeper_connections_refused_total",
                "Connections refused over --max-connections.",
                &self.connections_refused,
            ),
            (
                "seatkeeper_slices_sent_total",
                "Slices written to clients.",
                &self.slices_sent,
            ),
            (
                "seatkeeper_slices_dropped_total",
                "Slices dropped by flow control.",
                &self.slices_dropped,
            ),
            (
                "seatkeeper_bytes_sent_total",
                "Slice payload bytes written to clients.",
                &self.bytes_sent,
            ),
            (
                "seatkeeper_messages_received_total",
                "Client messages received.",
                &self.messages_in,
            ),
            (
                "seatkeeper_messages_refused_total",
                "Client messages refused.",
                &self.messages_refused,
            ),
            (
                "seatkeeper_resumes_total",
                "Sessions resumed by a new connection.",
                &self.resumes,
            ),
            (
                "seatkeeper_takeovers_total",
                "Resumes that replaced a still-attached connection.",
                &self.takeovers,
            ),
            (
                "seatkeeper_accept_errors_total",
                "Errors accepting connections (descriptor limit, ...).",
                &self.accept_errors,
            ),
        ] {
            family(out, name, "counter", help, &[("", v.load(Relaxed))]);
        }
        family(
            out,
            "seatkeeper_connections_open",
            "gauge",
            "Open client TCP connections.",
            &[("", self.connections_open.load(Relaxed))],
        );
    }
}
