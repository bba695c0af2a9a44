//! The guard a session owns for its pool seat.

use std::fmt;
use std::sync::Arc;

use super::{Command, Shared};

/// A seat held in the pool on behalf of one session.
///
/// Dropping it releases the seat: it leaves the agent's lease set at once
/// (so the next heartbeat no longer publishes it) and a release goes to
/// Redis through the agent's bounded queue. If that queue is full the
/// message is skipped and a heartbeat is nudged instead, whose re-sync frees
/// the seat just the same. Keep the lease inside the session, so "held
/// seats equal live sessions" holds by ownership.
pub struct Lease {
    shared: Arc<Shared>,
    slot: u32,
    epoch: u64,
}

impl Lease {
    pub(super) fn new(shared: Arc<Shared>, slot: u32, epoch: u64) -> Self {
        Self {
            shared,
            slot,
            epoch,
        }
    }

    /// The fencing epoch of the claim this lease redeemed.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The pod's seat slot the claim reserved.
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("pod_id", &self.shared.cfg.pod_id)
            .field("slot", &self.slot)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.shared.leases().remove(&self.epoch);
        let release = Command::Release {
            slot: self.slot,
            epoch: self.epoch,
        };
        if self.shared.commands.try_send(release).is_err() {
            self.shared.nudge.notify_one();
        }
    }
}
