//! Each session's share of its connection's write queue: what it has queued
//! and not yet written, charged when a frame is queued and given back when
//! the writer has written it (or the frame is dropped unwritten).

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use bytes::Bytes;

use crate::{external::Limits, EngineError};

/// Lifecycle frames (`session_start`, `keyframe`, `session_detached`,
/// `session_resumed`) one session may have queued and not yet written.
pub(super) const LIFECYCLE_QUEUE: usize = 8;
/// Queue slots for the connection's own frames (`welcome`, `error`).
const CONN_RESERVE: usize = 16;

/// Capacity of a connection's write queue: every session's quota, its
/// `session_end`, and the connection's own frames.
pub(in crate::external) fn write_queue(limits: &Limits, max_sessions: usize) -> usize {
    max_sessions
        .saturating_mul(limits.session_queue_frames + LIFECYCLE_QUEUE + 1)
        .saturating_add(CONN_RESERVE)
}

/// Which share of the write queue a frame counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::external) enum Lane {
    /// `params` and progress: the session's frame and byte quota.
    Data,
    /// Lifecycle messages: [`LIFECYCLE_QUEUE`] per session.
    Lifecycle,
}

/// What one session has queued and not yet written.
#[derive(Debug, Default)]
pub(in crate::external) struct Quota {
    frames: AtomicUsize,
    bytes: AtomicUsize,
    lifecycle: AtomicUsize,
}

impl Quota {
    /// Charges one frame of `bytes` to `quota`, or says why it does not fit.
    pub(super) fn charge(
        quota: &Arc<Self>,
        lane: Lane,
        bytes: usize,
        limits: &Limits,
    ) -> Result<Charge, EngineError> {
        // Only this session's forwarder charges its quota, so the check and
        // the charge below cannot race with another charge.
        match lane {
            Lane::Data => {
                let frames = quota.frames.load(Ordering::Relaxed);
                let queued = quota.bytes.load(Ordering::Relaxed);
                let max_frames = limits.session_queue_frames;
                let max_bytes = limits.session_queue_bytes;
                // One frame always fits, however large: the limit is on what
                // piles up, not on a single message.
                if frames >= max_frames || (frames > 0 && queued + bytes > max_bytes) {
                    return Err(EngineError::Flooded(format!(
                        "more than {max_frames} messages or {max_bytes} bytes of params queued before the engine read them"
                    )));
                }
                quota.frames.fetch_add(1, Ordering::Relaxed);
                quota.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Lane::Lifecycle => {
                if quota.lifecycle.load(Ordering::Relaxed) >= LIFECYCLE_QUEUE {
                    return Err(EngineError::Flooded(format!(
                        "more than {LIFECYCLE_QUEUE} lifecycle messages (resumes) queued before the engine read them"
                    )));
                }
                quota.lifecycle.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(Charge {
            quota: quota.clone(),
            bytes,
            lane,
        })
    }
}

/// A frame's claim on its session's quota, given back when the writer has
/// written the frame (or the frame is dropped unwritten).
pub(super) struct Charge {
    quota: Arc<Quota>,
    bytes: usize,
    lane: Lane,
}

impl Drop for Charge {
    fn drop(&mut self) {
        match self.lane {
            Lane::Data => {
                self.quota.frames.fetch_sub(1, Ordering::Relaxed);
                self.quota.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
            }
            Lane::Lifecycle => {
                self.quota.lifecycle.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// One frame in the write queue.
pub(in crate::external) struct Out {
    pub(in crate::external) frame: Bytes,
    pub(super) _charge: Option<Charge>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_fills_per_lane_and_written_frames_give_it_back() {
        let limits = Limits {
            session_queue_frames: 2,
            session_queue_bytes: 100,
            ..Limits::default()
        };
        let q = Arc::new(Quota::default());
        // One frame always fits, even over the byte limit.
        let big = Quota::charge(&q, Lane::Data, 1_000, &limits).expect("one frame fits");
        let err = Quota::charge(&q, Lane::Data, 1, &limits)
            .err()
            .expect("bytes full");
        assert_eq!(err.code(), "params_flood");
        drop(big);
        let a = Quota::charge(&q, Lane::Data, 10, &limits).unwrap();
        let _b = Quota::charge(&q, Lane::Data, 10, &limits).unwrap();
        assert!(
            Quota::charge(&q, Lane::Data, 10, &limits).is_err(),
            "frames full"
        );
        // A full data lane leaves the lifecycle lane alone, and vice versa.
        let lifecycle: Vec<_> = (0..LIFECYCLE_QUEUE)
            .map(|_| Quota::charge(&q, Lane::Lifecycle, 10, &limits).unwrap())
            .collect();
        assert!(Quota::charge(&q, Lane::Lifecycle, 10, &limits).is_err());
        drop(a);
        assert!(Quota::charge(&q, Lane::Data, 10, &limits).is_ok());
        drop(lifecycle);
        assert!(Quota::charge(&q, Lane::Lifecycle, 10, &limits).is_ok());
        assert_eq!(
            write_queue(&limits, 4),
            4 * (2 + LIFECYCLE_QUEUE + 1) + CONN_RESERVE
        );
    }
}
