//! `synthetic:RATE_HZ:BYTES`: fixed-size, droppable keyframe slices at a
//! fixed rate, for load tests and benchmarks. Payload bytes are a pattern a
//! client can check (byte `i` of slice `n` is `(n + i) as u8`).

use serde_json::{json, Value};

use crate::{paced::Generator, Slice};
use seatkeeper_protocol::slice::{SliceBuf, FLAG_DROPPABLE, FLAG_KEYFRAME};

/// The synthetic engine's slice kind.
pub const KIND_SYNTHETIC: u16 = 0xFFFF;

/// Generator of synthetic slices.
#[derive(Debug, Clone)]
pub struct Synthetic {
    rate_hz: f64,
    bytes: usize,
    /// The pattern, 256 bytes longer than a slice: slice `n` is a window of it.
    pattern: Vec<u8>,
}

impl Synthetic {
    /// `rate_hz` slices per second of `bytes` payload each.
    pub fn new(rate_hz: f64, bytes: usize) -> Self {
        let pattern = (0..bytes + 256).map(|i| i as u8).collect();
        Self {
            rate_hz,
            bytes,
            pattern,
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

    fn slice(&mut self, n: u64, timestamp_us: u64) -> Slice {
        let mut buf = SliceBuf::with_capacity(self.bytes);
        let start = (n % 256) as usize;
        buf.payload_mut()
            .extend_from_slice(&self.pattern[start..start + self.bytes]);
        Slice {
            kind: KIND_SYNTHETIC,
            flags: FLAG_DROPPABLE | FLAG_KEYFRAME,
            timestamp_us,
            frame: buf.freeze(),
        }
    }
}
