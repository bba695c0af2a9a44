//! Allocation-free DSP building blocks: hashing PRNG, noise, oscillators,
//! a state-variable filter and a soft clipper.

use std::f32::consts::PI;

/// splitmix64's finalizer: a good 64-bit mixer, so nearby seeds and tags
/// give unrelated streams.
pub(super) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64 stream for score decisions (a few hundred draws per bar,
/// so speed hardly matters; independence of streams does).
pub(super) struct Rng(u64);

impl Rng {
    /// A stream keyed by the seed and what it is for, so each decision
    /// (key, pattern of phrase n, ...) can be redrawn without the others.
    pub(super) fn new(seed: u64, tag: u64) -> Self {
        Self(mix64(seed ^ mix64(tag.wrapping_add(0x5EA7))))
    }

    pub(super) fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f32 {
        (self.bits() >> 40) as f32 / (1u64 << 24) as f32
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.bits() % n as u64) as usize
    }

    pub(super) fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }
}

/// xorshift32 white noise: one shift-xor triple per sample is all the hats
/// and snare need.
pub(super) struct Noise(u32);

impl Noise {
    pub(super) fn new(seed: u64) -> Self {
        Self((mix64(seed) as u32) | 1)
    }

    /// Uniform in [-1, 1).
    pub(super) fn sample(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        (x as i32) as f32 * (1.0 / 2_147_483_648.0)
    }
}

pub(super) fn midi_hz(note: f32) -> f32 {
    440.0 * ((note - 69.0) / 12.0).exp2()
}

/// Per-sample multiplier for an exponential decay with time constant `tau_s`.
pub(super) fn decay(tau_s: f32, rate: f32) -> f32 {
    (-1.0 / (tau_s * rate)).exp()
}

/// Advances a [0, 1) phase; `dt` is always below 1.
pub(super) fn advance(phase: &mut f32, dt: f32) {
    *phase += dt;
    if *phase >= 1.0 {
        *phase -= 1.0;
    }
}

/// Sawtooth with a polyBLEP step correction: naive saws alias audibly in
/// the upper notes once the filter is open.
pub(super) fn saw(phase: f32, dt: f32) -> f32 {
    let mut v = 2.0 * phase - 1.0;
    if phase < dt {
        let t = phase / dt;
        v -= t + t - t * t - 1.0;
    } else if phase > 1.0 - dt {
        let t = (phase - 1.0) / dt;
        v -= t * t + t + t + 1.0;
    }
    v
}

pub(super) fn sine(phase: f32) -> f32 {
    (phase * 2.0 * PI).sin()
}

/// Rational tanh approximation, exact ±1 at ±3: keeps peaks inside [-1, 1]
/// without the hard edges of a clamp.
pub(super) fn soft_clip(x: f32) -> f32 {
    let x = x.clamp(-3.0, 3.0);
    x * (27.0 + x * x) / (27.0 + 9.0 * x * x)
}

/// Zeroes values small enough to become subnormal while decaying; subnormal
/// arithmetic is slow enough on x86 to blow the render budget.
pub(super) fn flush(x: f32) -> f32 {
    if x.abs() < 1e-12 {
        0.0
    } else {
        x
    }
}

/// Topology-preserving state-variable filter (Zavalishin/Simper): stays
/// stable and quiet when its cutoff moves every control block.
#[derive(Clone, Copy, Default)]
pub(super) struct Svf {
    a1: f32,
    a2: f32,
    a3: f32,
    k: f32,
    ic1: f32,
    ic2: f32,
}

impl Svf {
    pub(super) fn new(hz: f32, q: f32, rate: f32) -> Self {
        let mut f = Self::default();
        f.tune(hz, q, rate);
        f
    }

    pub(super) fn tune(&mut self, hz: f32, q: f32, rate: f32) {
        let g = (PI * hz.clamp(20.0, rate * 0.45) / rate).tan();
        self.k = 1.0 / q;
        self.a1 = 1.0 / (1.0 + g * (g + self.k));
        self.a2 = g * self.a1;
        self.a3 = g * self.a2;
    }

    /// One sample; returns (low, band, high).
    #[inline]
    pub(super) fn run(&mut self, x: f32) -> (f32, f32, f32) {
        let v3 = x - self.ic2;
        let v1 = self.a1 * self.ic1 + self.a2 * v3;
        let v2 = self.ic2 + self.a2 * self.ic1 + self.a3 * v3;
        self.ic1 = 2.0 * v1 - self.ic1;
        self.ic2 = 2.0 * v2 - self.ic2;
        (v2, v1, x - self.k * v1 - v2)
    }

    pub(super) fn lp(&mut self, x: f32) -> f32 {
        self.run(x).0
    }

    pub(super) fn tidy(&mut self) {
        self.ic1 = flush(self.ic1);
        self.ic2 = flush(self.ic2);
    }

    pub(super) fn reset(&mut self) {
        self.ic1 = 0.0;
        self.ic2 = 0.0;
    }
}
