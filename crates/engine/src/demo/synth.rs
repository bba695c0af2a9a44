//! The demo engine's generative synthesizer: a seeded 16-step groove of
//! kick, snare or clap and noise hats under a filtered bass, a detuned-saw
//! chord pad and an echoing pluck arpeggio, arranged in 8-bar sections so
//! it develops over minutes rather than looping one bar.
//!
//! # Layout
//! - `dsp`: hashing PRNG, noise, oscillators, filter, soft clipper
//! - `score`: what each bar plays, derived from `(seed, bar)`
//! - `drums`, `tonal`: the instruments and the echo
//! - `band`: the instruments together, the sidechain and the mix

mod band;
mod drums;
mod dsp;
mod score;
mod tonal;

use std::fmt;

use serde_json::{json, Map, Value};

use band::Band;
use dsp::soft_clip;
use score::{plan, Bar, STEPS};

/// Samples between control updates (smoothing, filter coefficients):
/// 0.7 ms is fine-grained enough for envelopes and 32 times cheaper.
const BLOCK: u32 = 32;

/// The demo engine's knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Knobs {
    /// Beats per minute, 60..180; changes glide over about a second.
    pub tempo: f32,
    /// Song seed: key, mode, grooves, progressions and variations.
    pub seed: u64,
    /// Low-pass brightness of pad, bass and pluck, 0..1.
    pub brightness: f32,
    /// Output gain, 0..1.
    pub volume: f32,
    /// Busyness, 0..1: how many optional drum, bass and arpeggio hits play.
    pub density: f32,
    /// Shuffle, 0..1: delays off-beat sixteenths up to a triplet feel.
    pub swing: f32,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            tempo: 112.0,
            seed: 1,
            brightness: 0.5,
            volume: 0.7,
            density: 0.5,
            swing: 0.15,
        }
    }
}

impl Knobs {
    /// Applies the known knobs present in `params`; ignores the rest; clamps.
    pub fn apply(&mut self, params: &Map<String, Value>) {
        let num = |name: &str| params.get(name).and_then(Value::as_f64).map(|v| v as f32);
        if let Some(v) = num("tempo") {
            self.tempo = v.clamp(60.0, 180.0);
        }
        if let Some(v) = params.get("seed").and_then(|v| {
            // A slider may send 7.0 for 7.
            v.as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64))
        }) {
            self.seed = v;
        }
        if let Some(v) = num("brightness") {
            self.brightness = v.clamp(0.0, 1.0);
        }
        if let Some(v) = num("volume") {
            self.volume = v.clamp(0.0, 1.0);
        }
        if let Some(v) = num("density") {
            self.density = v.clamp(0.0, 1.0);
        }
        if let Some(v) = num("swing") {
            self.swing = v.clamp(0.0, 1.0);
        }
    }

    /// The knob list for `ready.engine.knobs`.
    pub fn describe(current: &Knobs) -> Value {
        // The knob schema (see `crate::knobs`); `value` is the current
        // setting, kept beside `default` for clients that read it.
        let number = |name: &str, label: &str, range: [Value; 3], v: Value, unit: Option<&str>| {
            let [min, max, step] = range;
            let mut k = json!({"name": name, "kind": "number", "label": label, "min": min, "max": max,
                               "step": step, "default": v, "value": v});
            if let Some(unit) = unit {
                k["unit"] = json!(unit);
            }
            k
        };
        let unit = || [json!(0.0), json!(1.0), json!(0.01)];
        json!([
            number(
                "tempo",
                "Tempo",
                [json!(60), json!(180), json!(1)],
                json!(current.tempo),
                Some("bpm")
            ),
            number(
                "seed",
                "Seed",
                [json!(0), json!(999), json!(1)],
                json!(current.seed),
                None
            ),
            number(
                "brightness",
                "Brightness",
                unit(),
                json!(current.brightness),
                None
            ),
            number("volume", "Volume", unit(), json!(current.volume), None),
            number("density", "Density", unit(), json!(current.density), None),
            number("swing", "Swing", unit(), json!(current.swing), None),
        ])
    }

    /// Pub fields can be set to anything; the audio path must never see a
    /// NaN or an out-of-range value.
    fn sanitized(mut self) -> Self {
        let d = Self::default();
        let fix =
            |v: f32, lo: f32, hi: f32, def: f32| if v.is_finite() { v.clamp(lo, hi) } else { def };
        self.tempo = fix(self.tempo, 60.0, 180.0, d.tempo);
        self.brightness = fix(self.brightness, 0.0, 1.0, d.brightness);
        self.volume = fix(self.volume, 0.0, 1.0, d.volume);
        self.density = fix(self.density, 0.0, 1.0, d.density);
        self.swing = fix(self.swing, 0.0, 1.0, d.swing);
        self
    }
}

/// Renders the demo's stereo audio, continuously across calls.
pub struct Synth {
    rate: f32,
    knobs: Knobs,
    /// Smoothed knobs: jumping them would click (volume, filters) or
    /// lurch (tempo).
    tempo: f32,
    bright: f32,
    gain: f32,
    k_tempo: f32,
    k_bright: f32,
    k_gain: f32,
    /// Sixteenth steps per sample at the smoothed tempo.
    step_inc: f32,
    bar: u64,
    step: usize,
    /// Position within the current step, in steps.
    pos: f32,
    fired: bool,
    countdown: u32,
    plan: Bar,
    band: Band,
}

impl fmt::Debug for Synth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Synth")
            .field("rate", &self.rate)
            .field("knobs", &self.knobs)
            .field("bar", &self.bar)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl Synth {
    /// A synthesizer at `sample_rate` (at least 8 kHz) with `knobs`.
    pub fn new(sample_rate: u32, knobs: Knobs) -> Self {
        let rate = sample_rate.max(8_000) as f32;
        let knobs = knobs.sanitized();
        let smoothing = |tau: f32| 1.0 - (-(BLOCK as f32) / (tau * rate)).exp();
        Self {
            rate,
            tempo: knobs.tempo,
            bright: knobs.brightness,
            gain: knobs.volume,
            k_tempo: smoothing(0.4),
            k_bright: smoothing(0.06),
            k_gain: 1.0 - (-1.0 / (0.02 * rate)).exp(),
            step_inc: 0.0,
            bar: 0,
            step: 0,
            pos: 0.0,
            fired: false,
            countdown: 0,
            plan: plan(knobs.seed, 0),
            band: Band::new(rate, BLOCK, knobs.seed),
            knobs,
        }
    }

    /// Current knobs.
    pub fn knobs(&self) -> &Knobs {
        &self.knobs
    }

    /// Replaces the knobs. Each glides to its new value; a new seed
    /// changes the pattern from the next step and the chords from the
    /// next bar.
    pub fn set_knobs(&mut self, knobs: Knobs) {
        let knobs = knobs.sanitized();
        if knobs.seed != self.knobs.seed {
            self.plan = plan(knobs.seed, self.bar);
        }
        self.knobs = knobs;
    }

    /// Fills `out` (interleaved stereo) with the next `out.len() / 2`
    /// frames; every sample is within [-1, 1].
    pub fn render(&mut self, out: &mut [f32]) {
        let mut frames = out.chunks_exact_mut(2);
        for frame in &mut frames {
            if self.countdown == 0 {
                self.control();
                self.countdown = BLOCK;
            }
            self.countdown -= 1;
            self.clock();
            let (l, r) = self.band.next(self.step_inc);
            self.gain += (self.knobs.volume - self.gain) * self.k_gain;
            frame[0] = soft_clip(l * self.gain);
            frame[1] = soft_clip(r * self.gain);
        }
        frames.into_remainder().fill(0.0);
    }

    fn control(&mut self) {
        self.tempo += (self.knobs.tempo - self.tempo) * self.k_tempo;
        self.bright += (self.knobs.brightness - self.bright) * self.k_bright;
        self.step_inc = self.tempo / 60.0 * 4.0 / self.rate;
        self.band.control(self.bright, self.step_inc);
    }

    /// Plays each step once, when its (possibly swung) time arrives.
    fn clock(&mut self) {
        let offset = if self.step % 2 == 1 {
            self.knobs.swing / 3.0
        } else {
            0.0
        };
        if !self.fired && self.pos >= offset {
            self.fired = true;
            self.band.play(&self.plan, self.step, self.knobs.density);
        }
        self.pos += self.step_inc;
        if self.pos >= 1.0 {
            self.pos -= 1.0;
            self.fired = false;
            self.step += 1;
            if self.step == STEPS {
                self.step = 0;
                self.bar += 1;
                self.plan = plan(self.knobs.seed, self.bar);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;

    fn render(synth: &mut Synth, seconds: f32) -> Vec<f32> {
        let mut out = vec![0.0; (seconds * RATE as f32) as usize * 2];
        synth.render(&mut out);
        out
    }

    fn knobs(f: impl FnOnce(&mut Knobs)) -> Knobs {
        let mut k = Knobs::default();
        f(&mut k);
        k
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    /// Left-channel energy around 1.5 kHz: above the kick and bass
    /// fundamentals, below the hats, where the pad and pluck overtones live.
    fn presence(x: &[f32]) -> f32 {
        let mut band = dsp::Svf::new(1_500.0, 0.7, RATE as f32);
        let y: Vec<f32> = x.chunks(2).map(|s| band.run(s[0]).1).collect();
        rms(&y)
    }

    fn max_jump(x: &[f32]) -> f32 {
        x.chunks(2)
            .zip(x.chunks(2).skip(1))
            .map(|(a, b)| (b[0] - a[0]).abs().max((b[1] - a[1]).abs()))
            .fold(0.0, f32::max)
    }

    #[test]
    fn bounded_and_finite_across_seeds_and_extremes() {
        let cases = [
            knobs(|_| {}),
            knobs(|k| {
                (k.seed, k.tempo, k.volume, k.brightness, k.density, k.swing) =
                    (7, 180.0, 1.0, 1.0, 1.0, 1.0)
            }),
            knobs(|k| {
                (k.seed, k.tempo, k.volume, k.brightness, k.density, k.swing) =
                    (42, 60.0, 1.0, 0.0, 0.0, 0.0)
            }),
            knobs(|k| (k.seed, k.volume, k.brightness, k.density) = (999, 1.0, 1.0, 1.0)),
            knobs(|k| (k.seed, k.volume) = (u64::MAX, 0.0)),
        ];
        for k in cases {
            let out = render(&mut Synth::new(RATE, k.clone()), 10.0);
            assert!(out.iter().all(|s| s.is_finite() && s.abs() <= 1.0), "{k:?}");
        }
    }

    #[test]
    fn deterministic_and_continuous_across_calls() {
        let mut a = Synth::new(RATE, Knobs::default());
        let mut b = Synth::new(RATE, Knobs::default());
        let whole = render(&mut a, 3.0);
        let mut pieces = vec![0.0; whole.len()];
        for chunk in pieces.chunks_mut(2 * 777) {
            b.render(chunk);
        }
        assert_eq!(whole, pieces);
    }

    #[test]
    fn seeds_differ() {
        let a = render(&mut Synth::new(RATE, knobs(|k| k.seed = 1)), 4.0);
        let b = render(&mut Synth::new(RATE, knobs(|k| k.seed = 2)), 4.0);
        let diff: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        assert!(rms(&diff) > 0.05, "{}", rms(&diff));
    }

    #[test]
    fn makes_real_sound() {
        let out = render(&mut Synth::new(RATE, Knobs::default()), 10.0);
        let level = rms(&out);
        assert!((0.05..0.45).contains(&level), "rms {level}");
    }

    #[test]
    fn knob_changes_do_not_click() {
        type Change = fn(&mut Knobs);
        let changes: [(Change, bool); 5] = [
            (|k| k.tempo = 180.0, true),
            (|k| k.tempo = 60.0, true),
            (|k| k.volume = 0.0, true),
            (|k| k.brightness = 1.0, true),
            // Another seed is another song: only its first samples compare.
            (|k| k.seed = 5, false),
        ];
        for (change, same_song) in changes {
            let mut steady = Synth::new(RATE, Knobs::default());
            let mut changed = Synth::new(RATE, Knobs::default());
            render(&mut steady, 2.0);
            render(&mut changed, 2.0);
            let mut k = changed.knobs().clone();
            change(&mut k);
            changed.set_knobs(k.clone());
            let (s, c) = (render(&mut steady, 3.0), render(&mut changed, 3.0));
            // Right after the change the output has barely moved...
            let early = s[..64].iter().zip(&c[..64]).map(|(x, y)| (x - y).abs());
            assert!(early.fold(0.0, f32::max) < 0.01, "{k:?}");
            // ...and while it glides no step is sharper than the music's own
            // (hat and kick onsets, about 0.18 per sample here).
            if same_song {
                let (js, jc) = (max_jump(&s), max_jump(&c));
                assert!(jc < 1.25 * js, "{k:?}: jump {jc} vs {js}");
            }
        }
    }

    #[test]
    fn tempo_sets_the_pace() {
        let position = |tempo: f32| {
            let mut synth = Synth::new(RATE, knobs(|k| k.tempo = tempo));
            render(&mut synth, 8.05);
            synth.bar * STEPS as u64 + synth.step as u64
        };
        // 8 s is 32 sixteenths at 60 BPM and 96 at 180; 50 ms more lands
        // mid-step, away from rounding.
        assert_eq!((position(60.0), position(180.0)), (32, 96));
    }

    #[test]
    fn brightness_opens_the_filters() {
        let dark = render(&mut Synth::new(RATE, knobs(|k| k.brightness = 0.0)), 6.0);
        let bright = render(&mut Synth::new(RATE, knobs(|k| k.brightness = 1.0)), 6.0);
        let (d, b) = (presence(&dark), presence(&bright));
        assert!(b > 2.0 * d, "dark {d} bright {b}");
    }

    #[test]
    fn apply_clamps_and_describe_lists_every_knob() {
        let mut k = Knobs::default();
        let params = json!({"tempo": 500, "seed": 12.0, "brightness": -1, "volume": 2,
                            "density": 0.25, "swing": 9, "other": 1});
        k.apply(params.as_object().unwrap());
        assert_eq!(
            (k.tempo, k.seed, k.brightness, k.volume),
            (180.0, 12, 0.0, 1.0)
        );
        assert_eq!((k.density, k.swing), (0.25, 1.0));
        let names: Vec<_> = Knobs::describe(&k)
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].clone())
            .collect();
        assert_eq!(
            names,
            ["tempo", "seed", "brightness", "volume", "density", "swing"]
        );
        crate::knobs::validate(&Knobs::describe(&k)).expect("the demo's knobs follow the schema");
    }
}
