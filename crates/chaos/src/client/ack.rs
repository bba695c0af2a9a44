//! When to ack: the policy the load generator and the stream scenarios share.

use std::time::Duration;

use tokio::time::Instant;

use super::Ready;

/// When to send a cumulative ack: often enough that the window never closes
/// on a client that keeps up, rarely enough that a fast stream stays far
/// below a server's message-rate limit (the contract's default is 500/s).
#[derive(Debug, Clone)]
pub struct AckPolicy {
    every_slices: u64,
    every_bytes: u64,
    max_delay: Duration,
    pending_slices: u64,
    pending_bytes: u64,
    last_seq: u64,
    first_pending: Option<Instant>,
}

impl AckPolicy {
    /// Acks each slice at once (low-rate streams, the browser's behaviour).
    pub fn each() -> Self {
        Self::coalescing(1, 1, Duration::ZERO)
    }

    /// Acks once a quarter of `ready`'s window is pending, or after 10 ms.
    pub fn for_window(r: &Ready) -> Self {
        Self::coalescing(
            (r.window_slices / 4).max(1),
            (r.window_bytes / 4).max(1),
            Duration::from_millis(10),
        )
    }

    fn coalescing(every_slices: u64, every_bytes: u64, max_delay: Duration) -> Self {
        Self {
            every_slices,
            every_bytes,
            max_delay,
            pending_slices: 0,
            pending_bytes: 0,
            last_seq: 0,
            first_pending: None,
        }
    }

    /// Records a slice read; returns the seq to ack now, if any.
    pub fn on_slice(&mut self, seq: u64, bytes: usize, now: Instant) -> Option<u64> {
        self.last_seq = self.last_seq.max(seq);
        self.pending_slices += 1;
        self.pending_bytes += bytes as u64;
        self.first_pending.get_or_insert(now);
        (self.pending_slices >= self.every_slices
            || self.pending_bytes >= self.every_bytes
            || now.duration_since(self.first_pending.unwrap_or(now)) >= self.max_delay)
            .then(|| self.take())
    }

    /// Whether a slice was read and not acked yet.
    pub fn has_pending(&self) -> bool {
        self.first_pending.is_some()
    }

    /// When a pending ack is due even if no slice arrives.
    pub fn deadline(&self) -> Option<Instant> {
        self.first_pending.map(|t| t + self.max_delay)
    }

    /// The seq to ack now (clears the pending state).
    pub fn take(&mut self) -> u64 {
        self.pending_slices = 0;
        self.pending_bytes = 0;
        self.first_pending = None;
        self.last_seq
    }
}
