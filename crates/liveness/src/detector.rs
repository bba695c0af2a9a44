//! The stall detector: a sequence of observations in, a verdict out. Pure:
//! it takes `now` as an argument and does no I/O, so every rule is tested
//! over synthetic sequences.
//!
//! The rules (contract, "Dead clients"):
//! - **send stall**: the send queue stays above zero while `bytes_acked`
//!   does not advance and the queue does not shrink, for the whole grace
//!   window. Any progress — an acked byte, a shorter queue — restarts the
//!   window, so a slow link that drains a little in every window is kept.
//! - **peer close**: the state leaves `ESTABLISHED`, or the socket errors.
//! - **unresponsive**: a ping reached the client — its TCP acknowledged the
//!   ping's bytes — and no pong came back for the pong timeout since that
//!   acknowledgement (see [`crate::pings`]).

use std::time::{Duration, Instant};

use crate::{
    pings::Ping,
    sys::{Sample, SampleError, TcpState},
};

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorConfig {
    /// How long a send queue may sit still before the peer is judged dead.
    pub grace: Duration,
    /// How long a ping the peer's TCP acknowledged may go unanswered before
    /// the peer is judged unresponsive; `None` disables the rule.
    pub pong_timeout: Option<Duration>,
}

/// What the sampler saw this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The kernel figures, or why there are none.
    pub sample: Result<Sample, SampleError>,
    /// The oldest unanswered ping whose bytes the peer has acknowledged
    /// (see [`crate::pings::PingLedger::acknowledged`]).
    pub ping: Option<Ping>,
}

/// Why a connection was reaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The send queue sat still for the grace window.
    SendStall,
    /// The peer closed, reset, or the socket errored.
    PeerClose,
    /// A ping the peer acknowledged went unanswered for the pong timeout.
    Unresponsive,
}

impl Reason {
    /// The label used in logs and `seatkeeper_reaps_total{reason=…}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendStall => "send_stall",
            Self::PeerClose => "peer_close",
            Self::Unresponsive => "unresponsive",
        }
    }

    /// All reasons, for metrics.
    pub const ALL: [Reason; 3] = [Self::SendStall, Self::PeerClose, Self::Unresponsive];
}

/// The evidence behind a reap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The rule that fired.
    pub reason: Reason,
    /// Send queue bytes at the verdict (0 when unknown).
    pub queue_bytes: u32,
    /// Acked bytes at the verdict, when the kernel reports them.
    pub bytes_acked: Option<u64>,
    /// How long the condition held.
    pub stalled_for: Duration,
    /// TCP state at the verdict, when known.
    pub tcp_state: Option<TcpState>,
    /// The socket error, when that was the evidence.
    pub error: Option<String>,
    /// For `unresponsive`: the ping that went unanswered — when it was
    /// written, when its bytes were acknowledged (`stalled_for` is how long
    /// it then waited), and where it ended in the stream.
    pub ping: Option<Ping>,
}

/// The detector's answer for one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing queued: the peer has everything.
    Healthy,
    /// Bytes queued, and the peer made progress since the last sample.
    Draining,
    /// Bytes queued and no progress for this long (under the grace window).
    Stalled(Duration),
    /// No kernel figures on this platform; only the pong rule applies.
    Unknown,
    /// The connection is dead.
    Reap(Evidence),
}

/// Per-connection detector state.
#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectorConfig,
    last: Option<(u32, Option<u64>)>,
    /// When the queue was last empty or last made progress.
    progress_at: Instant,
}

impl Detector {
    /// A detector for a connection that starts at `now`.
    pub fn new(config: DetectorConfig, now: Instant) -> Self {
        Self {
            config,
            last: None,
            progress_at: now,
        }
    }

    /// The send queue is known to be still empty at `now` without a new
    /// sample: the last sample saw it empty and the owner has handed the
    /// socket no byte since (the queue grows only by writes). Restarts the
    /// stall window as a sample would have, so a sweep that skipped the
    /// kernel look (see [`crate::doubt`]) never counts as stall time; does
    /// nothing unless the last sample saw an empty queue.
    pub fn still_empty(&mut self, now: Instant) {
        if matches!(self.last, Some((0, _))) {
            self.progress_at = now;
        }
    }

    /// Judges one observation taken at `now`.
    pub fn observe(&mut self, now: Instant, obs: &Observation) -> Verdict {
        if let (Some(timeout), Some(ping)) = (self.config.pong_timeout, obs.ping) {
            let waited = ping.waited(now);
            if waited >= timeout {
                let (queue_bytes, bytes_acked, tcp_state) = match &obs.sample {
                    Ok(s) => (s.send_queue, s.bytes_acked, Some(s.state)),
                    Err(_) => (0, None, None),
                };
                return Verdict::Reap(Evidence {
                    reason: Reason::Unresponsive,
                    queue_bytes,
                    bytes_acked,
                    stalled_for: waited,
                    tcp_state,
                    error: None,
                    ping: Some(ping),
                });
            }
        }
        let sample = match &obs.sample {
            Ok(s) => *s,
            Err(SampleError::Unsupported) => return Verdict::Unknown,
            Err(e) => {
                return Verdict::Reap(Evidence {
                    reason: Reason::PeerClose,
                    queue_bytes: 0,
                    bytes_acked: None,
                    stalled_for: Duration::ZERO,
                    tcp_state: None,
                    error: Some(e.to_string()),
                    ping: None,
                })
            }
        };
        if sample.state != TcpState::ESTABLISHED {
            return Verdict::Reap(Evidence {
                reason: Reason::PeerClose,
                queue_bytes: sample.send_queue,
                bytes_acked: sample.bytes_acked,
                stalled_for: Duration::ZERO,
                tcp_state: Some(sample.state),
                error: None,
                ping: None,
            });
        }
        let current = (sample.send_queue, sample.bytes_acked);
        let progressed = match self.last {
            None => true,
            Some((queue, acked)) => {
                sample.send_queue < queue
                    || matches!((acked, sample.bytes_acked), (Some(a), Some(b)) if b > a)
            }
        };
        self.last = Some(current);
        if sample.send_queue == 0 || progressed {
            self.progress_at = now;
            return if sample.send_queue == 0 {
                Verdict::Healthy
            } else {
                Verdict::Draining
            };
        }
        let still = now.saturating_duration_since(self.progress_at);
        if still >= self.config.grace {
            Verdict::Reap(Evidence {
                reason: Reason::SendStall,
                queue_bytes: sample.send_queue,
                bytes_acked: sample.bytes_acked,
                stalled_for: still,
                tcp_state: Some(sample.state),
                error: None,
                ping: None,
            })
        } else {
            Verdict::Stalled(still)
        }
    }
}

#[cfg(test)]
mod tests;
