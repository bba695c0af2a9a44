//! The pong clock: which pings have reached the client, and since when.
//!
//! A ping written behind a backlog waits in the server's send queue (and on
//! a slow link, in the network) before the client can read it; counting
//! that wait against the client reaps a live slow link whose pings are
//! merely late. So each ping is recorded with the offset in the TCP stream
//! at which it ends — every byte written to the socket since the
//! connection started, the HTTP upgrade and TLS records included — and its
//! clock starts only once the kernel reports the peer has acknowledged that
//! many bytes (`tcpi_bytes_acked`, which counts payload only: the SYN is not
//! in it). From then on the ping sits in the client's own receive buffer,
//! and a client that reads answers it. Off Linux (no acked-byte count) the
//! clock starts at the write.
//!
//! Only the oldest unanswered, acknowledged ping matters: a newer ping
//! never restarts an older one's clock. A pong answers its own ping and
//! every older one (a peer may answer only the most recent ping, RFC 6455
//! §5.5.3).
//!
//! [`PingLedger`] is pure (no clock, no locks); [`Pings`] is the shared
//! handle the writer, the reader and the sampler thread use.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

/// Most unanswered pings remembered per connection. Past this the newest
/// are not recorded: the oldest are the ones whose clocks run, and a pong
/// for a newer ping clears the older ones anyway. At one ping every 5 s
/// this is over five minutes of unanswered pings.
pub const MAX_PENDING: usize = 64;

/// One ping in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// The ping's id (its payload); ids rise with every ping.
    pub id: u64,
    /// Bytes written to the TCP socket once the ping was out.
    pub end_offset: u64,
    /// When the writer handed the ping to the socket.
    pub written_at: Instant,
    /// When a sweep first saw the ping's bytes acknowledged.
    pub acked_at: Option<Instant>,
}

impl Ping {
    /// How long the client has had the ping at `now` (zero before its
    /// bytes were acknowledged).
    pub fn waited(&self, now: Instant) -> Duration {
        self.acked_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }
}

/// The unanswered pings of one connection, oldest first. Pure.
#[derive(Debug, Clone, Default)]
pub struct PingLedger {
    pending: VecDeque<Ping>,
}

impl PingLedger {
    /// Records a ping `id` whose last byte is at stream offset `end_offset`,
    /// written at `at`. Ids and offsets must not go backwards; a ping that
    /// would is ignored.
    pub fn written(&mut self, id: u64, end_offset: u64, at: Instant) {
        if self.pending.len() >= MAX_PENDING {
            return;
        }
        if self
            .pending
            .back()
            .is_some_and(|p| p.id >= id || p.end_offset > end_offset)
        {
            return;
        }
        self.pending.push_back(Ping {
            id,
            end_offset,
            written_at: at,
            acked_at: None,
        });
    }

    /// A pong for ping `id`: it and every older ping are answered. Returns
    /// whether any ping was.
    pub fn answered(&mut self, id: u64) -> bool {
        let before = self.pending.len();
        while self.pending.front().is_some_and(|p| p.id <= id) {
            self.pending.pop_front();
        }
        self.pending.len() != before
    }

    /// Marks the pings whose bytes the peer has acknowledged by `now`
    /// (`bytes_acked`; `None` where the kernel gives no count: then a ping
    /// counts from its write), and returns the oldest acknowledged one.
    pub fn acknowledged(&mut self, now: Instant, bytes_acked: Option<u64>) -> Option<Ping> {
        for p in self.pending.iter_mut().filter(|p| p.acked_at.is_none()) {
            match bytes_acked {
                Some(acked) if acked >= p.end_offset => p.acked_at = Some(now),
                Some(_) => break, // offsets rise: the rest are further on
                None => p.acked_at = Some(p.written_at),
            }
        }
        self.pending
            .front()
            .filter(|p| p.acked_at.is_some())
            .copied()
    }

    /// Whether a sweep at `now` must look at the socket for the pong
    /// clock's sake: a ping's bytes are not yet seen acknowledged (its clock
    /// starts at the look that first sees them), or the oldest acknowledged
    /// ping will have waited `timeout` by the sweep after this one
    /// (`interval` on). Between the two the clock runs on wall time alone,
    /// and the look that can give the unresponsive verdict is never skipped.
    pub fn needs_look(&self, now: Instant, timeout: Duration, interval: Duration) -> bool {
        // Offsets rise, so pings are acknowledged oldest first: if the
        // newest is, all are.
        if self.pending.back().is_some_and(|p| p.acked_at.is_none()) {
            return true;
        }
        self.pending
            .front()
            .is_some_and(|p| p.waited(now).saturating_add(interval) >= timeout)
    }

    /// Unanswered pings.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether every ping was answered.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// A connection's ping ledger, shared by its writer (pings written), its
/// reader (pongs) and the sampler thread (acknowledgements). The lock is
/// held for a few instructions and never across I/O.
#[derive(Debug, Default)]
pub struct Pings {
    ledger: Mutex<PingLedger>,
    /// Whether any ping is unanswered, kept with the ledger, so the
    /// sweep's skip rule reads it without the lock.
    any: AtomicBool,
}

impl Pings {
    fn lock(&self) -> std::sync::MutexGuard<'_, PingLedger> {
        // Every update leaves the ledger consistent; a panic elsewhere
        // cannot tear it.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// See [`PingLedger::written`].
    pub fn written(&self, id: u64, end_offset: u64, at: Instant) {
        let mut ledger = self.lock();
        ledger.written(id, end_offset, at);
        self.any.store(!ledger.is_empty(), Ordering::Release);
    }

    /// See [`PingLedger::answered`].
    pub fn answered(&self, id: u64) -> bool {
        let mut ledger = self.lock();
        let answered = ledger.answered(id);
        self.any.store(!ledger.is_empty(), Ordering::Release);
        answered
    }

    /// Whether any ping is unanswered (without taking the ledger's lock).
    pub fn any_pending(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// See [`PingLedger::needs_look`]; without the lock when no ping is
    /// out.
    pub fn needs_look(&self, now: Instant, timeout: Duration, interval: Duration) -> bool {
        self.any_pending() && self.lock().needs_look(now, timeout, interval)
    }

    /// See [`PingLedger::acknowledged`].
    pub fn acknowledged(&self, now: Instant, bytes_acked: Option<u64>) -> Option<Ping> {
        self.lock().acknowledged(now, bytes_acked)
    }

    /// Unanswered pings now.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// The oldest unanswered ping, as the sampler last marked it (the one
    /// whose clock the unresponsive rule runs).
    pub fn oldest(&self) -> Option<Ping> {
        self.lock().pending.front().copied()
    }
}

#[cfg(test)]
mod tests;
