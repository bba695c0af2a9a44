//! Pitched voices (bass, pad, pluck) and the echo. Envelopes are one-pole
//! followers that start from wherever they are, so a retrigger never
//! steps the output; oscillator phases run on across notes for the same
//! reason.

use super::drums::SILENT;
use super::dsp::{advance, decay, flush, midi_hz, saw, sine, Svf};

/// Monophonic bass: saw plus sine through a resonant low-pass whose
/// cutoff jumps on each note and settles (the "pluck" of a synth bass).
pub(super) struct Bass {
    rate: f32,
    phase: f32,
    dt: f32,
    amp: f32,
    vel: f32,
    gate: f32,
    fenv: f32,
    k_att: f32,
    k_rel: f32,
    k_fenv: f32,
    filter: Svf,
}

impl Bass {
    pub(super) fn new(rate: f32, block: f32) -> Self {
        Self {
            rate,
            phase: 0.0,
            dt: 0.0,
            amp: 0.0,
            vel: 0.0,
            gate: 0.0,
            fenv: 0.0,
            k_att: 1.0 - decay(0.003, rate),
            k_rel: decay(0.02, rate),
            k_fenv: decay(0.09, rate / block),
            filter: Svf::default(),
        }
    }

    /// `len` is in sixteenth steps, so notes keep their shape at any tempo.
    pub(super) fn trigger(&mut self, note: f32, vel: f32, len: f32) {
        self.dt = midi_hz(note) / self.rate;
        self.vel = vel;
        self.gate = len;
        self.fenv = 1.0;
    }

    pub(super) fn next(&mut self, step_inc: f32) -> f32 {
        if self.gate > 0.0 {
            self.gate -= step_inc;
            self.amp += (self.vel - self.amp) * self.k_att;
        } else if self.amp == 0.0 {
            return 0.0;
        } else {
            self.amp *= self.k_rel;
        }
        advance(&mut self.phase, self.dt);
        let x = 0.55 * saw(self.phase, self.dt) + 0.7 * sine(self.phase);
        self.filter.lp(x) * self.amp
    }

    pub(super) fn control(&mut self, cutoff: f32) {
        self.filter
            .tune(cutoff * (1.0 + 5.0 * self.fenv), 1.3, self.rate);
        self.fenv *= self.k_fenv;
        if self.gate <= 0.0 && self.amp < SILENT {
            self.amp = 0.0;
            self.filter.reset();
        }
        self.filter.tidy();
    }
}

/// Notes per pad chord.
pub(super) const CHORD: usize = 4;

/// One chord's oscillators: two detuned saws per note, one per side.
struct Bank {
    notes: [f32; CHORD],
    phase: [f32; 2 * CHORD],
    dt: [f32; 2 * CHORD],
    env: f32,
    gate: bool,
}

/// Detuned-saw pad. Two banks alternate so a new chord swells in while the
/// old one fades, instead of the pitches jumping under a held envelope.
pub(super) struct Pad {
    rate: f32,
    banks: [Bank; 2],
    cur: usize,
    k_att: f32,
    k_rel: f32,
    filter: [Svf; 2],
}

impl Pad {
    pub(super) fn new(rate: f32) -> Self {
        // Spread start phases: saws all starting at 0 would sum to a spike.
        let bank = |o: f32| Bank {
            notes: [0.0; CHORD],
            phase: std::array::from_fn(|i| (i as f32 * 0.618 + o).fract()),
            dt: [0.0; 2 * CHORD],
            env: 0.0,
            gate: false,
        };
        Self {
            rate,
            banks: [bank(0.0), bank(0.31)],
            cur: 0,
            k_att: 1.0 - decay(0.35, rate),
            k_rel: 1.0 - decay(0.6, rate),
            filter: [Svf::default(); 2],
        }
    }

    pub(super) fn trigger(&mut self, notes: [f32; CHORD]) {
        if self.banks[self.cur].gate && self.banks[self.cur].notes == notes {
            return;
        }
        self.banks[self.cur].gate = false;
        self.cur ^= 1;
        let b = &mut self.banks[self.cur];
        for (i, &n) in notes.iter().enumerate() {
            let hz = midi_hz(n) / self.rate;
            let detune = 0.003 + 0.001 * i as f32;
            b.dt[2 * i] = hz * (1.0 - detune);
            b.dt[2 * i + 1] = hz * (1.0 + detune);
        }
        b.notes = notes;
        b.gate = true;
    }

    pub(super) fn next(&mut self) -> (f32, f32) {
        let (mut l, mut r) = (0.0, 0.0);
        for b in &mut self.banks {
            if b.gate {
                b.env += (1.0 - b.env) * self.k_att;
            } else if b.env == 0.0 {
                continue;
            } else {
                b.env -= b.env * self.k_rel;
            }
            let (mut bl, mut br) = (0.0, 0.0);
            for i in 0..CHORD {
                advance(&mut b.phase[2 * i], b.dt[2 * i]);
                advance(&mut b.phase[2 * i + 1], b.dt[2 * i + 1]);
                bl += saw(b.phase[2 * i], b.dt[2 * i]);
                br += saw(b.phase[2 * i + 1], b.dt[2 * i + 1]);
            }
            l += bl * b.env;
            r += br * b.env;
        }
        (self.filter[0].lp(l), self.filter[1].lp(r))
    }

    pub(super) fn control(&mut self, cutoff: f32) {
        for f in &mut self.filter {
            f.tune(cutoff, 0.9, self.rate);
            f.tidy();
        }
        for b in &mut self.banks {
            if !b.gate && b.env < SILENT {
                b.env = 0.0;
            }
        }
    }
}

/// Short plucked saw/triangle for the arpeggio.
pub(super) struct Pluck {
    rate: f32,
    phase: f32,
    dt: f32,
    amp: f32,
    peak: f32,
    fenv: f32,
    k_att: f32,
    k_dec: f32,
    k_fenv: f32,
    filter: Svf,
}

impl Pluck {
    pub(super) fn new(rate: f32, block: f32) -> Self {
        Self {
            rate,
            phase: 0.0,
            dt: 0.0,
            amp: 0.0,
            peak: 0.0,
            fenv: 0.0,
            k_att: 1.0 - decay(0.002, rate),
            k_dec: decay(0.16, rate),
            k_fenv: decay(0.06, rate / block),
            filter: Svf::default(),
        }
    }

    pub(super) fn trigger(&mut self, note: f32, vel: f32) {
        self.dt = midi_hz(note) / self.rate;
        self.peak = vel;
        self.fenv = 1.0;
    }

    pub(super) fn next(&mut self) -> f32 {
        if self.peak == 0.0 && self.amp == 0.0 {
            return 0.0;
        }
        self.amp += (self.peak - self.amp) * self.k_att;
        self.peak *= self.k_dec;
        advance(&mut self.phase, self.dt);
        let tri = 4.0 * (self.phase - 0.5).abs() - 1.0;
        self.filter.lp(0.5 * saw(self.phase, self.dt) + 0.8 * tri) * self.amp
    }

    pub(super) fn control(&mut self, cutoff: f32) {
        self.filter
            .tune(cutoff * (1.0 + 4.0 * self.fenv), 1.6, self.rate);
        self.fenv *= self.k_fenv;
        if self.peak < SILENT && self.amp < SILENT {
            self.peak = 0.0;
            self.amp = 0.0;
            self.filter.reset();
        }
        self.filter.tidy();
    }
}

/// Ping-pong echo on a dotted eighth. The buffers are sized once in `new`
/// for the slowest tempo, so rendering never allocates.
pub(super) struct Echo {
    left: Vec<f32>,
    right: Vec<f32>,
    mask: usize,
    write: usize,
    /// Delay in samples; 0 until the first call sets it.
    tap: usize,
    /// Where a crossfade is heading, and how far it has got (0 = none).
    next_tap: usize,
    fade: f32,
    fade_inc: f32,
    damp: [f32; 2],
}

impl Echo {
    pub(super) fn new(rate: f32, max_seconds: f32) -> Self {
        let size = ((rate * max_seconds) as usize + 2).next_power_of_two();
        Self {
            left: vec![0.0; size],
            right: vec![0.0; size],
            mask: size - 1,
            write: 0,
            tap: 0,
            next_tap: 0,
            fade: 0.0,
            fade_inc: 1.0 / (0.02 * rate),
            damp: [0.0; 2],
        }
    }

    fn read(&self, tap: usize) -> (f32, f32) {
        let i = (self.write + self.mask + 1 - tap) & self.mask;
        (self.left[i], self.right[i])
    }

    /// `time` is the wanted delay in samples. A new time is reached by a
    /// 20 ms crossfade between taps: sliding one tap would detune the
    /// echoes for seconds, jumping it would click.
    pub(super) fn next(&mut self, input: f32, time: f32, feedback: f32) -> (f32, f32) {
        let want = (time as usize).clamp(1, self.mask);
        if self.tap == 0 {
            self.tap = want;
        } else if self.fade == 0.0 && want != self.tap {
            self.next_tap = want;
            self.fade = self.fade_inc;
        }
        let (mut l, mut r) = self.read(self.tap);
        if self.fade > 0.0 {
            let (l2, r2) = self.read(self.next_tap);
            l += (l2 - l) * self.fade;
            r += (r2 - r) * self.fade;
            self.fade += self.fade_inc;
            if self.fade >= 1.0 {
                self.tap = self.next_tap;
                self.fade = 0.0;
            }
        }
        // Damping the repeats keeps them behind the dry sound.
        self.damp[0] += (l - self.damp[0]) * 0.3;
        self.damp[1] += (r - self.damp[1]) * 0.3;
        self.left[self.write] = flush(input + feedback * self.damp[1]);
        self.right[self.write] = flush(feedback * self.damp[0]);
        self.write = (self.write + 1) & self.mask;
        (l, r)
    }

    pub(super) fn tidy(&mut self) {
        self.damp = self.damp.map(flush);
    }
}
