//! The outbox: everything a session wants to send, and the policy that picks
//! what goes next. Pure: no I/O, no clock, no locks — the session keeps it
//! behind a mutex that is never held across an `.await`, and the writer
//! pulls from it at the last moment, so the newest slice wins.
//!
//! Policy per kind:
//! - control messages (`ready`, `error`, engine notices) go first, in order,
//!   never dropped; past [`Limits::control`] the client is too far behind
//!   and the session ends ([`Overflow`]);
//! - the ping is coalesced (one pending at most), then `stats` (newest only);
//! - slices wait for the ack window. While the window is full, droppable
//!   slices are dropped and the newest wins; non-droppable slices queue up
//!   to [`Limits::nondroppable`], past which the session ends.
//!
//! After a (re)attach the window is reset and the first slice sent is a
//! keyframe: droppable non-keyframes ahead of it are dropped.
//!
//! The outbox also knows whether the writer waits with nothing to send
//! ([`writer_waits`](Outbox::writer_waits)): then a slice the engine pushes
//! may be written at once by the pusher ([`pop_slice`](Outbox::pop_slice)),
//! under this lock, instead of waking the writer for it. A write that the
//! socket did not take whole owes a flush, which the writer pops first
//! ([`Item::Flush`]).

use std::collections::VecDeque;

use bytes::Bytes;
use seatkeeper_engine::Slice;
use seatkeeper_protocol::{
    messages::Window,
    slice::{SliceHeader, FLAG_DROPPABLE, FLAG_KEYFRAME},
    SLICE_HEADER_LEN,
};

pub use crate::config::OutboxLimits as Limits;

/// The client fell so far behind that non-droppable messages piled up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// An ack for a slice that was never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckAhead {
    /// Highest seq sent so far (0: none).
    pub sent: u64,
}

/// The next thing to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A JSON text frame.
    Text(String),
    /// A WebSocket ping with this payload.
    Ping(Bytes),
    /// A stamped slice.
    Slice(Stamped),
    /// Write out what a slice written by its pusher left queued.
    Flush,
}

/// A slice ready for the wire: its stamped header, and its payload, shared
/// (not copied) with the engine and every other session sent the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    /// The 20-byte slice header.
    pub header: [u8; SLICE_HEADER_LEN],
    /// The payload after it.
    pub payload: Bytes,
}

impl Stamped {
    /// Bytes on the wire (header and payload).
    pub fn len(&self) -> usize {
        SLICE_HEADER_LEN + self.payload.len()
    }

    /// Never: a slice has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Per-session counters kept with the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Slices the engine pushed, sent or not.
    pub slices_produced: u64,
    /// Slices written.
    pub slices_sent: u64,
    /// Slices dropped by flow control.
    pub slices_dropped: u64,
    /// Payload bytes written.
    pub bytes_sent: u64,
    /// Highest cumulative ack.
    pub last_ack_seq: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Outbox {
    window: Window,
    limits: Limits,
    control: VecDeque<String>,
    ping: Option<Bytes>,
    stats: Option<String>,
    pending: VecDeque<Slice>,
    pending_nondroppable: usize,
    in_flight: VecDeque<(u64, u64)>,
    in_flight_bytes: u64,
    next_seq: u64,
    need_keyframe: bool,
    generation: u64,
    /// The writer of this generation found nothing to send and waits.
    writer_waits: bool,
    /// A slice written by its pusher left bytes queued on the connection.
    flush_owed: bool,
    counters: Counters,
}

impl Outbox {
    /// An empty outbox; seq starts at 1.
    pub fn new(window: Window, limits: Limits) -> Self {
        Self {
            window,
            limits,
            control: VecDeque::new(),
            ping: None,
            stats: None,
            pending: VecDeque::new(),
            pending_nondroppable: 0,
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            next_seq: 1,
            need_keyframe: false,
            generation: 0,
            writer_waits: false,
            flush_owed: false,
            counters: Counters::default(),
        }
    }

    /// A new connection takes over: the window resets, stale control and
    /// telemetry go, and the next slice sent is a keyframe. Returns the new
    /// generation; a writer holding an older one gets nothing more.
    pub fn attach(&mut self) -> u64 {
        self.generation += 1;
        self.control.clear();
        self.ping = None;
        self.stats = None;
        self.in_flight.clear();
        self.in_flight_bytes = 0;
        self.need_keyframe = true;
        self.writer_waits = false;
        self.flush_owed = false;
        self.generation
    }

    /// Records whether the writer of `generation` waits with nothing to
    /// send (it says so each time it looks and finds nothing, and stops
    /// saying so when it takes an item).
    pub fn set_writer_waits(&mut self, generation: u64, waits: bool) {
        if generation == self.generation {
            self.writer_waits = waits;
        }
    }

    /// Whether the current writer waits with nothing to send.
    pub fn writer_waits(&self) -> bool {
        self.writer_waits
    }

    /// The next item, if it is a slice of at most `max_len` payload bytes,
    /// for a pusher writing it itself while the writer of `generation`
    /// waits: `None` if that writer does not wait, was replaced, owes a
    /// flush, or anything else is ready first (a control message, the
    /// ping, `stats`, a larger slice: the writer sends those).
    pub fn pop_slice(&mut self, generation: u64, max_len: usize) -> Option<Stamped> {
        let first = self.writer_waits
            && !self.flush_owed
            && self.control.is_empty()
            && self.ping.is_none()
            && self.stats.is_none()
            && self
                .pending
                .front()
                .is_some_and(|s| s.frame.payload_len() <= max_len);
        if !first {
            return None;
        }
        match self.pop(generation) {
            Ok(Some(Item::Slice(s))) => Some(s),
            _ => None,
        }
    }

    /// A slice written by its pusher left bytes queued: the writer pops
    /// [`Item::Flush`] next.
    pub fn owe_flush(&mut self) {
        self.flush_owed = true;
        self.writer_waits = false;
    }

    /// The current connection generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Queues a control message.
    pub fn push_control(&mut self, text: String) -> Result<(), Overflow> {
        if self.control.len() >= self.limits.control {
            return Err(Overflow);
        }
        self.control.push_back(text);
        Ok(())
    }

    /// Sets the pending ping (replacing an unsent one).
    pub fn set_ping(&mut self, payload: Bytes) {
        self.ping = Some(payload);
    }

    /// Sets the pending stats (replacing unsent ones).
    pub fn set_stats(&mut self, text: String) {
        self.stats = Some(text);
    }

    fn free_slots(&self) -> usize {
        (self.window.slices as usize).saturating_sub(self.in_flight.len())
    }

    /// Queues a slice from the engine.
    pub fn push_slice(&mut self, slice: Slice) -> Result<(), Overflow> {
        self.counters.slices_produced += 1;
        if slice.flags & FLAG_DROPPABLE == 0 {
            if self.pending_nondroppable >= self.limits.nondroppable {
                return Err(Overflow);
            }
            self.pending_nondroppable += 1;
            self.pending.push_back(slice);
            return Ok(());
        }
        // Droppable: at most as many waiting as the window has room for
        // (at least one, the newest), so a full window never builds a queue.
        let cap = self
            .free_slots()
            .saturating_sub(self.pending_nondroppable)
            .max(1);
        while self.pending.len() - self.pending_nondroppable >= cap {
            let Some(i) = self.pending.iter().position(is_droppable) else {
                break;
            };
            self.pending.remove(i);
            self.counters.slices_dropped += 1;
        }
        self.pending.push_back(slice);
        Ok(())
    }

    fn window_admits(&self, len: u64) -> bool {
        self.free_slots() > 0
            && (self.in_flight.is_empty() || self.in_flight_bytes + len <= self.window.bytes)
    }

    /// Takes the next item for the writer of `generation`, or `None` when
    /// nothing may be sent now. `Err` means that writer was replaced.
    pub fn pop(&mut self, generation: u64) -> Result<Option<Item>, Replaced> {
        if generation != self.generation {
            return Err(Replaced);
        }
        if std::mem::take(&mut self.flush_owed) {
            return Ok(Some(Item::Flush));
        }
        if let Some(text) = self.control.pop_front() {
            return Ok(Some(Item::Text(text)));
        }
        if let Some(p) = self.ping.take() {
            return Ok(Some(Item::Ping(p)));
        }
        if let Some(s) = self.stats.take() {
            return Ok(Some(Item::Text(s)));
        }
        if self.need_keyframe {
            while let Some(front) = self.pending.front() {
                if front.flags & FLAG_KEYFRAME != 0 || !is_droppable(front) {
                    break;
                }
                self.pending.pop_front();
                self.counters.slices_dropped += 1;
            }
        }
        let Some(front) = self.pending.front() else {
            return Ok(None);
        };
        let len = front.frame.payload_len() as u64;
        if !self.window_admits(len) {
            return Ok(None);
        }
        let slice = self.pending.pop_front().expect("front exists");
        if !is_droppable(&slice) {
            self.pending_nondroppable -= 1;
        }
        if slice.flags & FLAG_KEYFRAME != 0 {
            self.need_keyframe = false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push_back((seq, len));
        self.in_flight_bytes += len;
        self.counters.slices_sent += 1;
        self.counters.bytes_sent += len;
        let header = SliceHeader {
            flags: slice.flags,
            kind: slice.kind,
            seq,
            timestamp_us: slice.timestamp_us,
        };
        Ok(Some(Item::Slice(Stamped {
            header: header.to_bytes(),
            payload: slice.frame.payload_bytes(),
        })))
    }

    /// Whether [`pop`](Self::pop) would return something now.
    pub fn has_ready(&self) -> bool {
        // The slice pop would send: past the ones it drops for a keyframe.
        let next = if self.need_keyframe {
            self.pending
                .iter()
                .find(|s| s.flags & FLAG_KEYFRAME != 0 || !is_droppable(s))
        } else {
            self.pending.front()
        };
        self.flush_owed
            || !self.control.is_empty()
            || self.ping.is_some()
            || self.stats.is_some()
            || next.is_some_and(|s| self.window_admits(s.frame.payload_len() as u64))
    }

    /// The `seq` of the last slice sent (0 before the first).
    pub fn sent_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// A cumulative ack. Acks behind the last one are harmless repeats; an
    /// ack for a seq never sent is refused.
    pub fn ack(&mut self, seq: u64) -> Result<(), AckAhead> {
        let sent = self.next_seq - 1;
        if seq > sent {
            return Err(AckAhead { sent });
        }
        while let Some(&(s, len)) = self.in_flight.front() {
            if s > seq {
                break;
            }
            self.in_flight.pop_front();
            self.in_flight_bytes -= len;
        }
        self.counters.last_ack_seq = self.counters.last_ack_seq.max(seq);
        Ok(())
    }

    /// Whether an ack for `seq` would acknowledge slices sent and not yet
    /// acknowledged.
    pub fn acks_new(&self, seq: u64) -> bool {
        seq > self.counters.last_ack_seq && seq < self.next_seq
    }

    /// Counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Slices sent and not acknowledged.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.len() as u32
    }
}

/// The writer's connection was replaced by a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaced;

fn is_droppable(s: &Slice) -> bool {
    s.flags & FLAG_DROPPABLE != 0
}

#[cfg(test)]
mod tests;
