//! Placeholder synthesizer (a sine); replaced by the sequenced one.

use serde_json::{json, Map, Value};

/// The demo engine's knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Knobs {
    /// Beats per minute.
    pub tempo: f32,
    /// Pattern seed.
    pub seed: u64,
    /// Filter brightness, 0..1.
    pub brightness: f32,
    /// Output gain, 0..1.
    pub volume: f32,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            tempo: 112.0,
            seed: 1,
            brightness: 0.5,
            volume: 0.7,
        }
    }
}

impl Knobs {
    /// Applies the known knobs present in `params`; ignores the rest; clamps.
    pub fn apply(&mut self, params: &Map<String, Value>) {
        if let Some(v) = params.get("tempo").and_then(Value::as_f64) {
            self.tempo = (v as f32).clamp(60.0, 180.0);
        }
        if let Some(v) = params.get("seed").and_then(Value::as_u64) {
            self.seed = v;
        }
        if let Some(v) = params.get("brightness").and_then(Value::as_f64) {
            self.brightness = (v as f32).clamp(0.0, 1.0);
        }
        if let Some(v) = params.get("volume").and_then(Value::as_f64) {
            self.volume = (v as f32).clamp(0.0, 1.0);
        }
    }

    /// The knob list for `ready.engine.knobs`.
    pub fn describe(current: &Knobs) -> Value {
        json!([
            {"name": "tempo", "min": 60, "max": 180, "step": 1, "value": current.tempo},
            {"name": "seed", "min": 0, "max": 999, "step": 1, "value": current.seed},
            {"name": "brightness", "min": 0.0, "max": 1.0, "step": 0.01, "value": current.brightness},
            {"name": "volume", "min": 0.0, "max": 1.0, "step": 0.01, "value": current.volume},
        ])
    }
}

/// Renders stereo audio.
#[derive(Debug)]
pub struct Synth {
    rate: f32,
    knobs: Knobs,
    phase: f32,
}

impl Synth {
    /// A synthesizer at `sample_rate` with `knobs`.
    pub fn new(sample_rate: u32, knobs: Knobs) -> Self {
        Self {
            rate: sample_rate as f32,
            knobs,
            phase: 0.0,
        }
    }

    /// Current knobs.
    pub fn knobs(&self) -> &Knobs {
        &self.knobs
    }

    /// Replaces the knobs; takes effect from the next sample.
    pub fn set_knobs(&mut self, knobs: Knobs) {
        self.knobs = knobs;
    }

    /// Fills `out` (interleaved stereo) with the next frames.
    pub fn render(&mut self, out: &mut [f32]) {
        let step = 220.0 * (self.knobs.tempo / 112.0) / self.rate;
        for frame in out.chunks_exact_mut(2) {
            let s = (self.phase * std::f32::consts::TAU).sin() * 0.3 * self.knobs.volume;
            frame[0] = s;
            frame[1] = s;
            self.phase = (self.phase + step).fract();
        }
    }
}
