//! Every family `/metrics` exposes, declared once: name, help, type,
//! labels, and how its value is read from a [`View`]. The Prometheus text
//! is rendered from this table, in table order, so adding a metric is one
//! row here and nothing else.

use std::{
    fmt::{self, Write},
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

use seatkeeper_liveness::{doubt::Why, Reason, SamplerStats};

use super::{EndReason, Metrics};

/// What a family's samples are read from, gathered once per scrape.
#[derive(Debug)]
pub struct View<'a> {
    /// The server's counters.
    pub metrics: &'a Metrics,
    /// Seats configured.
    pub seats_total: u32,
    /// Seats held.
    pub seats_held: u32,
    /// Sessions waiting for a resume.
    pub detached: u64,
    /// Whether the engine can open sessions.
    pub engine_ready: bool,
    /// The liveness sampler's figures.
    pub sweeps: &'a SamplerStats,
    /// The engine's numeric stats (names checked and capped by the engine
    /// crate, so the label stays bounded).
    pub engine_stats: Vec<(String, f64)>,
}

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
        }
    }
}

/// The label set of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// One unlabelled sample.
    None,
    /// `reason`, one sample per [`EndReason`].
    EndReason,
    /// `reason`, one sample per reap rule ([`Reason`]).
    ReapRule,
    /// `name`, one sample per engine stat (none: the family is left out).
    EngineStat,
    /// `reason`, one sample per reason a sweep looks at a socket ([`Why`]).
    LookReason,
}

impl Labels {
    /// The label pairs (`key="value"`) of the samples, in order.
    fn values(self, view: &View<'_>) -> Vec<String> {
        match self {
            Self::None => vec![String::new()],
            Self::EndReason => EndReason::ALL
                .iter()
                .map(|r| format!("reason=\"{}\"", r.as_str()))
                .collect(),
            Self::ReapRule => Reason::ALL
                .iter()
                .map(|r| format!("reason=\"{}\"", r.as_str()))
                .collect(),
            Self::LookReason => Why::ALL
                .iter()
                .map(|w| format!("reason=\"{}\"", w.as_str()))
                .collect(),
            Self::EngineStat => view
                .engine_stats
                .iter()
                .map(|(name, _)| format!("name=\"{name}\""))
                .collect(),
        }
    }
}

/// A sample value: counts print as integers, durations and engine figures
/// as floats.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    /// A count.
    Int(u64),
    /// Anything else.
    Float(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) => v.fmt(f),
            Self::Float(v) => v.fmt(f),
        }
    }
}

/// One metric family.
#[derive(Debug)]
pub struct Family {
    /// The metric name.
    pub name: &'static str,
    /// `# HELP` text.
    pub help: &'static str,
    /// `# TYPE`.
    pub kind: Kind,
    /// The label set.
    pub labels: Labels,
    /// The value of the `i`-th sample (the `i`-th label value).
    read: fn(&View<'_>, usize) -> Value,
}

const fn counter(
    name: &'static str,
    help: &'static str,
    read: fn(&View<'_>, usize) -> Value,
) -> Family {
    Family {
        name,
        help,
        kind: Kind::Counter,
        labels: Labels::None,
        read,
    }
}

const fn gauge(
    name: &'static str,
    help: &'static str,
    read: fn(&View<'_>, usize) -> Value,
) -> Family {
    Family {
        name,
        help,
        kind: Kind::Gauge,
        labels: Labels::None,
        read,
    }
}

fn int(v: &AtomicU64) -> Value {
    Value::Int(v.load(Relaxed))
}

fn secs(ns: &AtomicU64) -> Value {
    Value::Float(ns.load(Relaxed) as f64 / 1e9)
}

fn flag(on: bool) -> Value {
    Value::Int(on as u64)
}

/// Every family, in exposition order.
pub static FAMILIES: &[Family] = &[
    Family {
        name: "seatkeeper_sessions_ended_total",
        help: "Sessions ended, by reason.",
        kind: Kind::Counter,
        labels: Labels::EndReason,
        read: |v, i| int(&v.metrics.sessions_ended[i]),
    },
    Family {
        name: "seatkeeper_reaps_total",
        help: "Dead clients reaped, by the rule that fired.",
        kind: Kind::Counter,
        labels: Labels::ReapRule,
        read: |v, i| int(&v.metrics.reaps[i]),
    },
    counter(
        "seatkeeper_sessions_started_total",
        "Sessions started.",
        |v, _| int(&v.metrics.sessions_started),
    ),
    counter(
        "seatkeeper_busy_total",
        "Hellos refused for want of a seat.",
        |v, _| int(&v.metrics.busy),
    ),
    counter(
        "seatkeeper_refused_total",
        "Connections refused before a session (bad hello, bad token, no hello in time).",
        |v, _| int(&v.metrics.refused),
    ),
    counter(
        "seatkeeper_upgrades_total",
        "WebSocket upgrades accepted.",
        |v, _| int(&v.metrics.upgrades),
    ),
    counter(
        "seatkeeper_connections_refused_total",
        "Connections refused over --max-connections.",
        |v, _| int(&v.metrics.connections_refused),
    ),
    counter(
        "seatkeeper_slices_sent_total",
        "Slices written to clients.",
        |v, _| int(&v.metrics.slices_sent),
    ),
    counter(
        "seatkeeper_slices_written_by_push_total",
        "Of the slices written, those the engine's push wrote itself while the connection's writer waited (no wake-up of the writer for them).",
        |v, _| int(&v.metrics.slices_written_by_push),
    ),
    counter(
        "seatkeeper_slices_dropped_total",
        "Slices dropped by flow control.",
        |v, _| int(&v.metrics.slices_dropped),
    ),
    counter(
        "seatkeeper_bytes_sent_total",
        "Slice payload bytes written to clients.",
        |v, _| int(&v.metrics.bytes_sent),
    ),
    counter(
        "seatkeeper_messages_received_total",
        "Client messages received.",
        |v, _| int(&v.metrics.messages_in),
    ),
    counter(
        "seatkeeper_messages_refused_total",
        "Client messages refused.",
        |v, _| int(&v.metrics.messages_refused),
    ),
    counter(
        "seatkeeper_resumes_total",
        "Sessions resumed by a new connection.",
        |v, _| int(&v.metrics.resumes),
    ),
    counter(
        "seatkeeper_takeovers_total",
        "Resumes that replaced a still-attached connection.",
        |v, _| int(&v.metrics.takeovers),
    ),
    counter(
        "seatkeeper_accept_errors_total",
        "Errors accepting connections (descriptor limit, ...).",
        |v, _| int(&v.metrics.accept_errors),
    ),
    gauge(
        "seatkeeper_connections_open",
        "Open client TCP connections.",
        |v, _| int(&v.metrics.connections_open),
    ),
    gauge("seatkeeper_seats_total", "Seats configured.", |v, _| {
        Value::Int(v.seats_total.into())
    }),
    gauge("seatkeeper_seats_held", "Seats held.", |v, _| {
        Value::Int(v.seats_held.into())
    }),
    gauge(
        "seatkeeper_lock_held",
        "1 while at least one seat is held.",
        |v, _| flag(v.seats_held > 0),
    ),
    gauge(
        "seatkeeper_sessions_detached",
        "Sessions waiting for a resume.",
        |v, _| Value::Int(v.detached),
    ),
    gauge(
        "seatkeeper_engine_ready",
        "1 while the engine can open sessions.",
        |v, _| flag(v.engine_ready),
    ),
    counter(
        "seatkeeper_watchdog_sweeps_total",
        "Watchdog sweeps over all session sockets.",
        |v, _| int(&v.sweeps.sweeps),
    ),
    counter(
        "seatkeeper_watchdog_samples_total",
        "Sockets swept by the watchdog, looked at or exempt.",
        |v, _| int(&v.sweeps.samples),
    ),
    counter(
        "seatkeeper_watchdog_looks_total",
        "Kernel looks (TCP_INFO) at sockets in doubt.",
        |v, _| int(&v.sweeps.looks),
    ),
    Family {
        name: "seatkeeper_watchdog_looks_by_reason_total",
        help: "Kernel looks by the rule that held the socket in doubt: uncleared (the last look found a stall, or no look yet), gap (the longest run without a look), ping (the pong clock), quiet (no ack or pong since the last sweep), blocked (bytes wait and the socket took none).",
        kind: Kind::Counter,
        labels: Labels::LookReason,
        read: |v, i| int(&v.sweeps.looks_by_why[i]),
    },
    counter(
        "seatkeeper_watchdog_exempt_total",
        "Looks skipped: the client kept up (an ack or pong since the last sweep, nothing waiting).",
        |v, _| int(&v.sweeps.exempted),
    ),
    gauge(
        "seatkeeper_watchdog_last_sweep_looks",
        "Kernel looks in the last sweep.",
        |v, _| int(&v.sweeps.last_sweep_looks),
    ),
    gauge(
        "seatkeeper_watchdog_last_sweep_exempt",
        "Looks skipped in the last sweep.",
        |v, _| int(&v.sweeps.last_sweep_exempted),
    ),
    counter(
        "seatkeeper_watchdog_sweep_seconds_total",
        "Wall-clock time spent sweeping (includes waiting for a core).",
        |v, _| secs(&v.sweeps.sweep_ns_total),
    ),
    counter(
        "seatkeeper_watchdog_sweep_cpu_seconds_total",
        "CPU time the sweeps used (what watching costs).",
        |v, _| secs(&v.sweeps.sweep_cpu_ns_total),
    ),
    gauge(
        "seatkeeper_watchdog_last_sweep_seconds",
        "Duration of the last sweep.",
        |v, _| secs(&v.sweeps.last_sweep_ns),
    ),
    gauge(
        "seatkeeper_watchdog_sockets",
        "Sockets in the last sweep.",
        |v, _| int(&v.sweeps.last_sweep_sockets),
    ),
    Family {
        name: "seatkeeper_engine_stat",
        help: "Numeric fields of the engine's latest stats (engine-wide, at most 32 names).",
        kind: Kind::Gauge,
        labels: Labels::EngineStat,
        read: |v, i| Value::Float(v.engine_stats[i].1),
    },
];

/// Renders every family of [`FAMILIES`] in Prometheus text format. A family
/// without samples (no engine stats yet) is left out.
pub fn render(view: &View<'_>) -> String {
    let mut out = String::with_capacity(8 << 10);
    for f in FAMILIES {
        let labels = f.labels.values(view);
        if labels.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
        for (i, l) in labels.iter().enumerate() {
            let v = (f.read)(view, i);
            if l.is_empty() {
                let _ = writeln!(out, "{} {v}", f.name);
            } else {
                let _ = writeln!(out, "{}{{{l}}} {v}", f.name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
