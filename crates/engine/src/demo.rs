//! `demo`: the built-in real-time generative audio engine. 48 kHz stereo,
//! f16 PCM slices (kind 1) of 100 ms, paced by the clock; a sequenced
//! bass/drums/pad pattern whose knobs come from `params`.

mod synth;

use half::f16;
use serde_json::{json, Map, Value};

use crate::{paced::Generator, Slice};
use seatkeeper_protocol::slice::{SliceBuf, FLAG_DROPPABLE, FLAG_KEYFRAME, KIND_PCM_F16};

pub use synth::{Knobs, Synth};

/// Output sample rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// Interleaved channels.
pub const CHANNELS: usize = 2;
/// Frames per slice (100 ms).
pub const FRAMES_PER_SLICE: usize = 4_800;

/// The demo engine's generator for one session.
#[derive(Debug)]
pub struct Demo {
    synth: Synth,
    scratch: Vec<f32>,
}

impl Demo {
    /// A new session's generator, with knobs from `hello.engine` if given.
    pub fn new(config: &Map<String, Value>) -> Self {
        let mut knobs = Knobs::default();
        knobs.apply(config);
        Self {
            synth: Synth::new(SAMPLE_RATE, knobs),
            scratch: vec![0.0; FRAMES_PER_SLICE * CHANNELS],
        }
    }

    /// Description for `ready.engine`: format and knobs.
    pub fn info(&self) -> Value {
        json!({
            "name": "demo",
            "version": env!("CARGO_PKG_VERSION"),
            "kind": KIND_PCM_F16,
            "format": "pcm_f16le",
            "sample_rate": SAMPLE_RATE,
            "channels": CHANNELS,
            "slice_ms": 100,
            "knobs": Knobs::describe(self.synth.knobs()),
        })
    }
}

impl Generator for Demo {
    fn rate_hz(&self) -> f64 {
        SAMPLE_RATE as f64 / FRAMES_PER_SLICE as f64
    }

    fn slice(&mut self, _n: u64, timestamp_us: u64) -> Slice {
        self.synth.render(&mut self.scratch);
        let mut buf = SliceBuf::with_capacity(self.scratch.len() * 2);
        let out = buf.payload_mut();
        for s in &self.scratch {
            out.extend_from_slice(&f16::from_f32(*s).to_le_bytes());
        }
        Slice {
            kind: KIND_PCM_F16,
            // PCM decodes on its own: every slice is a keyframe.
            flags: FLAG_DROPPABLE | FLAG_KEYFRAME,
            timestamp_us,
            frame: buf.freeze(),
        }
    }

    fn params(&mut self, params: &Map<String, Value>) {
        let mut knobs = self.synth.knobs().clone();
        knobs.apply(params);
        self.synth.set_knobs(knobs);
    }
}
