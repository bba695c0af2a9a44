//! The server's metrics: process-wide counters (plain atomics, so the hot
//! path pays one relaxed add per event) and the one table every exposed
//! family is declared in ([`table`]), from which `/metrics` is rendered.
//!
//! # Layout
//! - this module: the counters and the label enums they are indexed by.
//! - [`table`]: name, help, type and labels of every family, and the
//!   Prometheus text rendering.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use seatkeeper_liveness::Reason;

pub mod table;

pub use table::{render, View};

/// Why a session ended: the `reason` label of
/// `seatkeeper_sessions_ended_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The client said `bye`.
    Bye,
    /// The client closed its WebSocket.
    ClientClose,
    /// The liveness watchdog reaped a dead client.
    Reaped,
    /// The transport was lost and no resume was possible.
    Lost,
    /// The resume window ran out.
    Expired,
    /// An operator evicted the session.
    Evicted,
    /// The client broke the protocol.
    Violation,
    /// The client fell too far behind.
    Overflow,
    /// The engine failed the session.
    Engine,
    /// The server shut down.
    Shutdown,
    /// The session task panicked.
    Internal,
}

impl EndReason {
    /// Every reason, in exposition order.
    pub const ALL: [EndReason; 11] = [
        Self::Bye,
        Self::ClientClose,
        Self::Reaped,
        Self::Lost,
        Self::Expired,
        Self::Evicted,
        Self::Violation,
        Self::Overflow,
        Self::Engine,
        Self::Shutdown,
        Self::Internal,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bye => "bye",
            Self::ClientClose => "client_close",
            Self::Reaped => "reaped",
            Self::Lost => "lost",
            Self::Expired => "expired",
            Self::Evicted => "evicted",
            Self::Violation => "violation",
            Self::Overflow => "overflow",
            Self::Engine => "engine",
            Self::Shutdown => "shutdown",
            Self::Internal => "internal",
        }
    }
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Sessions started.
    pub sessions_started: AtomicU64,
    /// Sessions ended, per [`EndReason`] (its position in [`EndReason::ALL`]).
    pub sessions_ended: [AtomicU64; EndReason::ALL.len()],
    /// Reaps, per [`Reason::ALL`] index.
    pub reaps: [AtomicU64; Reason::ALL.len()],
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
    /// Of those, written by the engine's push itself while the writer
    /// waited (no wake-up for them).
    pub slices_written_by_push: AtomicU64,
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
    pub fn ended(&self, reason: EndReason) {
        self.sessions_ended[reason as usize].fetch_add(1, Relaxed);
    }

    /// Counts a reap.
    pub fn reaped(&self, reason: Reason) {
        let i = Reason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.reaps[i].fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reasons_index_their_own_counter() {
        // `ended` indexes by discriminant: ALL must list them in that order.
        for (i, r) in EndReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
        let m = Metrics::default();
        m.ended(EndReason::Internal);
        assert_eq!(m.sessions_ended[10].load(Relaxed), 1);
    }
}
