//! Which sockets a sweep must ask the kernel about, and which it may skip.
//!
//! A kernel look (`TCP_INFO`, and `SIOCOUTQ` when bytes are in flight)
//! costs about a microsecond per socket, and a dump of the kernel's table
//! costs no less (it walks every socket on the host). So the sweep asks less
//! often instead: a socket whose client visibly keeps up is skipped, and
//! every socket in doubt is looked at every sweep. Pure: no clock, no I/O.
//!
//! # The rule
//!
//! A sweep skips a socket's look only when **all** of these hold:
//!
//! 1. **The last look cleared it**: its verdict was `Healthy` or `Draining`
//!    (the stall window restarted at that look) and the kernel reported
//!    `tcpi_bytes_acked` (without it, progress over a gap of several sweeps
//!    cannot be told from a queue that shrank and grew again).
//! 2. **The gap stays bounded**: fewer than [`max_gap`] sweeps in a row were
//!    skipped. Every socket is looked at at least every `max_gap` sweeps.
//! 3. **No ping needs the look**: the pong clock starts at the look that
//!    first sees a ping's bytes acknowledged, so while any ping's bytes are
//!    not yet seen acknowledged the socket is looked at every sweep; and
//!    from the sweep before the oldest acknowledged ping's wait reaches the
//!    pong timeout, again every sweep
//!    ([`Pings::needs_look`](crate::Pings::needs_look)). In between the
//!    clock runs on wall time and needs no look, so a client that reads its
//!    pings late but keeps up otherwise is not held in doubt for the whole
//!    wait, and the pong clock runs exactly as if no sweep were ever
//!    skipped.
//! 4. **Nothing can be stalled**, in one of two ways:
//!    - **the queue is provably empty**: the last look saw it empty and
//!      nothing was written since (it grows only by writes). The detector's
//!      stall window restarts as if the kernel had been asked
//!      ([`Detector::still_empty`](crate::Detector::still_empty)). A client
//!      that was sent nothing owes no ack, so its silence is no doubt —
//!      the common case on a server too loaded to write to every client
//!      every sweep;
//!    - or **the client keeps up**: the owner read an ack or a pong from it
//!      since the previous sweep ([`SocketHandle::mark_progress`]), and the
//!      socket took bytes since then too (the writer is not blocked on a
//!      full buffer).
//!
//! `max_gap` is an eighth of the stall grace in sweeps, between 1 and
//! [`MAX_GAP_SWEEPS`] (500 ms sweeps, 30 s grace: a look at least every 7
//! sweeps, 3.5 s). An eighth keeps the forced look far inside the grace
//! window: a stall that starts after a clearing look is looked at again long
//! before it could be reaped, and from then on (verdict `Stalled`) it is
//! looked at every sweep. The cap keeps a peer close that only the kernel
//! sees (the reader sees a FIN or reset itself) recognised within seconds.
//!
//! # What it can and cannot change
//!
//! A skipped sweep feeds the detector nothing (except the provable empty
//! queue of rule 4), so the stall window runs on wall time between looks,
//! and verdicts stay kernel evidence: the client's progress marks only ever
//! skip a look, and their absence only ever brings one. Against a sweep
//! that looks at every socket every time:
//! - no reap comes **earlier** (a skipped sweep never counts as stall time:
//!   across a gap `tcpi_bytes_acked` is monotonic, so "no progress at the
//!   next look" means none at the skipped sweeps either, and the only other
//!   kind of progress, an empty queue, is carried by rule 4);
//! - an unresponsive reap comes at the **same** sweep (rule 3);
//! - a send-stall or peer-close reap comes **later** by at most one sweep
//!   for a client that stops altogether while bytes are sent to it (its
//!   marks stop, so the very next sweep looks), and by at most one gap
//!   (`max_gap` sweeps) for a client whose acks or pongs keep coming while
//!   its TCP acknowledges nothing, or a peer close only the kernel sees on
//!   a socket that was sent nothing (the reader sees a FIN or a reset
//!   itself).
//!   The delay is that a look after skipped sweeps credits the progress it
//!   finds to its own time, not to the skipped sweep where it happened.
//!
//! [`SocketHandle::mark_progress`]: crate::SocketHandle::mark_progress

use std::time::Duration;

use crate::{
    detector::Verdict,
    sys::{Sample, SampleError},
};

/// The most sweeps in a row a socket goes without a kernel look.
pub const MAX_GAP_SWEEPS: u32 = 16;

/// The share of the stall grace a gap between looks may span (one part in
/// this many).
pub const GAP_SHARE_OF_GRACE: u32 = 8;

/// Most sweeps between two kernel looks at one socket, for sweeps every
/// `interval` and a stall grace of `grace`: 1 (look every sweep) up to
/// [`MAX_GAP_SWEEPS`].
pub fn max_gap(interval: Duration, grace: Duration) -> u32 {
    let per = interval
        .as_nanos()
        .saturating_mul(GAP_SHARE_OF_GRACE as u128);
    if per == 0 {
        return 1;
    }
    (grace.as_nanos() / per).clamp(1, MAX_GAP_SWEEPS as u128) as u32
}

/// What the owner shows of a socket at a sweep, read without a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signals {
    /// [`SocketHandle::progress`](crate::SocketHandle::progress).
    pub progress: u64,
    /// [`SocketHandle::bytes_written`](crate::SocketHandle::bytes_written).
    pub written: u64,
    /// Whether the pong clock needs this sweep's look
    /// ([`Pings::needs_look`](crate::Pings::needs_look); false without a
    /// pong rule).
    pub ping_needs_look: bool,
}

/// Why a sweep looks at a socket: the first rule that held it in doubt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Rule 1: the last look did not clear it (a stall counting, no
    /// acked-byte count, or no look yet).
    Uncleared,
    /// Rule 2: the most sweeps in a row without a look.
    Gap,
    /// Rule 3: the pong clock needs the look.
    Ping,
    /// Rule 4: bytes were sent and no ack or pong came since the previous
    /// sweep.
    Quiet,
    /// Rule 4: bytes wait and the socket took none since the previous
    /// sweep (the writer may be blocked on a full buffer).
    Blocked,
}

impl Why {
    /// Every reason, in the order of [`index`](Self::index).
    pub const ALL: [Why; 5] = [
        Self::Uncleared,
        Self::Gap,
        Self::Ping,
        Self::Quiet,
        Self::Blocked,
    ];

    /// The label in `seatkeeper_watchdog_looks_by_reason_total{reason=…}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uncleared => "uncleared",
            Self::Gap => "gap",
            Self::Ping => "ping",
            Self::Quiet => "quiet",
            Self::Blocked => "blocked",
        }
    }

    /// This reason's index in [`ALL`](Self::ALL).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a sweep does with one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Ask the kernel (for this reason), and judge.
    Look(Why),
    /// Skip the look: the client keeps up and the writer is not blocked.
    Skip,
    /// Skip the look: the queue is provably still empty; restart the stall
    /// window ([`Detector::still_empty`](crate::Detector::still_empty)).
    SkipEmpty,
}

/// Per-socket state of the rule.
#[derive(Debug, Clone, Default)]
pub struct Doubt {
    /// Set by a look that cleared the socket (rule 1): its send queue, and
    /// the bytes written when it was taken.
    cleared: Option<(u32, u64)>,
    /// Sweeps skipped since the last look.
    skipped: u32,
    /// The signals at the previous sweep.
    prev: Option<Signals>,
}

impl Doubt {
    /// Decides this sweep's plan from the owner's `signals`, read before
    /// any look. Call once per sweep; after a look, call
    /// [`looked`](Self::looked).
    pub fn plan(&mut self, max_gap: u32, signals: Signals) -> Plan {
        let prev = self.prev.replace(signals);
        let (Some((queue, written)), Some(prev)) = (self.cleared, prev) else {
            return Plan::Look(Why::Uncleared);
        };
        if self.skipped + 1 >= max_gap {
            return Plan::Look(Why::Gap);
        }
        if signals.ping_needs_look {
            return Plan::Look(Why::Ping);
        }
        let plan = if queue == 0 && signals.written == written {
            Plan::SkipEmpty
        } else if signals.progress == prev.progress {
            return Plan::Look(Why::Quiet);
        } else if signals.written != prev.written {
            Plan::Skip
        } else {
            return Plan::Look(Why::Blocked);
        };
        self.skipped += 1;
        plan
    }

    /// Records a look: its `sample`, the `verdict` judged from it, and the
    /// bytes written as [`plan`](Self::plan)'s signals said (read before
    /// the sample, so a write racing the look only makes the next sweep
    /// look again).
    pub fn looked(
        &mut self,
        verdict: &Verdict,
        sample: &Result<Sample, SampleError>,
        written: u64,
    ) {
        self.skipped = 0;
        self.cleared = match (verdict, sample) {
            (Verdict::Healthy | Verdict::Draining, Ok(s)) if s.bytes_acked.is_some() => {
                Some((s.send_queue, written))
            }
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests;
