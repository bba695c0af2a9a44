//! `synthetic:RATE_HZ:BYTES`: fixed-size, droppable keyframe slices at a
//! fixed rate, for load tests and benchmarks. Every slice carries the same
//! payload (byte `i` is `i as u8`), built once and shared: a slice costs a
//! reference count until it is actually sent, so the slices flow control
//! drops cost nothing, and the one copy happens when a sent slice is stamped.

use serde_json::{json, Value};

use crate::{paced::Generator, Slice};
use seatkeeper_protocol::slice::{Frame, SliceBuf, FLAG_DROPPABLE, FLAG_KEYFRAME};

/// The synthetic engine's slice kind.
pub const KIND_SYNTHETIC: u16 = 0xFFFF;

/// Generator of synthetic slices.
#[derive(Debug, Clone)]
pub struct Synthetic {
    rate_hz: f64,
    bytes: usize,
    frame: Frame,
}

impl Synthetic {
    /// `rate_hz` slices per second of `bytes` payload each.
    pub fn new(rate_hz: f64, bytes: usize) -> Self {
        let mut buf = SliceBuf::with_capacity(bytes);
        buf.payload_mut().extend((0..bytes).map(|i| i as u8));
        Self {
            rate_hz,
            bytes,
            frame: buf.freeze(),
        }
    }

    /// Description for `ready.engine`.
    pub fn info(&self) -> Value {
        json!({"name": "synthetic", "kind": KIND_SYNTHETIC, "rate_hz": self.rate_hz, "bytes": self.bytes, "knobs": []})
    }
}

impl Generator for Synthetic {
    fn rate_hz(&self) -> f64 {
        self.rate_hz
    }

    fn slice(&mut self, _n: u64, timestamp_us: u64) -> Slice {
        Slice {
            kind: KIND_SYNTHETIC,
            flags: FLAG_DROPPABLE | FLAG_KEYFRAME,
            timestamp_us,
            frame: self.frame.clone(),
        }
    }
}
