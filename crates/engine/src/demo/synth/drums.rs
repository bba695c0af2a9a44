//! Drum voices. Each has `trigger`, a per-sample `next`, and a control-rate
//! `tidy` that retires it once inaudible, so idle voices cost nothing and
//! their tails never decay into subnormal floats.

use super::dsp::{advance, decay, sine, Svf};

/// Envelope level treated as silence (-80 dB).
pub(super) const SILENT: f32 = 1e-4;

/// Sine with a falling pitch: the classic electronic kick.
pub(super) struct Kick {
    inv_rate: f32,
    phase: f32,
    pitch: f32,
    amp: f32,
    declick: f32,
    last: f32,
    k_pitch: f32,
    k_amp: f32,
    k_declick: f32,
}

impl Kick {
    pub(super) fn new(rate: f32) -> Self {
        Self {
            inv_rate: 1.0 / rate,
            phase: 0.0,
            pitch: 0.0,
            amp: 0.0,
            declick: 0.0,
            last: 0.0,
            k_pitch: decay(0.03, rate),
            k_amp: decay(0.2, rate),
            k_declick: decay(0.001, rate),
        }
    }

    pub(super) fn trigger(&mut self, vel: f32) {
        // Restarting at phase 0 would step away from the previous tail's
        // value; carry that value over and fade it out within a millisecond.
        self.declick = self.last;
        self.phase = 0.0;
        self.pitch = 1.0;
        self.amp = vel;
    }

    /// Current envelope, which also drives the sidechain ducking.
    pub(super) fn level(&self) -> f32 {
        self.amp
    }

    pub(super) fn next(&mut self) -> f32 {
        if self.amp == 0.0 && self.declick == 0.0 {
            return 0.0;
        }
        advance(&mut self.phase, (46.0 + 120.0 * self.pitch) * self.inv_rate);
        let y = sine(self.phase) * self.amp + self.declick;
        self.pitch *= self.k_pitch;
        self.amp *= self.k_amp;
        self.declick *= self.k_declick;
        self.last = y;
        y
    }

    pub(super) fn tidy(&mut self) {
        if self.amp < SILENT {
            self.amp = 0.0;
        }
        if self.declick.abs() < SILENT {
            self.declick = 0.0;
        }
        if self.amp == 0.0 && self.declick == 0.0 {
            self.last = 0.0;
        }
    }
}

/// Snare (tone plus band-passed noise) or clap (noise in quick bursts).
pub(super) struct Snare {
    rate: f32,
    clap: bool,
    vel: f32,
    t: u32,
    burst_len: u32,
    burst_end: u32,
    tone_phase: f32,
    tone: f32,
    noise: f32,
    k_tone: f32,
    k_burst: f32,
    k_tail: f32,
    filter: Svf,
}

impl Snare {
    pub(super) fn new(rate: f32) -> Self {
        let mut s = Self {
            rate,
            clap: true,
            vel: 0.0,
            t: 0,
            burst_len: (rate * 0.011) as u32,
            burst_end: 0,
            tone_phase: 0.0,
            tone: 0.0,
            noise: 0.0,
            k_tone: decay(0.05, rate),
            k_burst: decay(0.004, rate),
            k_tail: 1.0,
            filter: Svf::default(),
        };
        s.set_clap(false);
        s
    }

    pub(super) fn set_clap(&mut self, clap: bool) {
        if clap == self.clap {
            return;
        }
        self.clap = clap;
        let (hz, q, tail) = if clap {
            (1_200.0, 1.2, 0.12)
        } else {
            (2_400.0, 0.5, 0.09)
        };
        self.filter.tune(hz, q, self.rate);
        self.k_tail = decay(tail, self.rate);
    }

    pub(super) fn trigger(&mut self, vel: f32) {
        self.vel = vel;
        self.t = 0;
        // A clap is three short bursts before the tail starts.
        self.burst_end = if self.clap { 3 * self.burst_len } else { 0 };
        self.tone = if self.clap { 0.0 } else { vel * 0.45 };
    }

    pub(super) fn next(&mut self, noise: f32) -> f32 {
        if self.noise == 0.0 && self.tone == 0.0 && self.t > self.burst_end {
            return 0.0;
        }
        if self.t < self.burst_end {
            if (0..3).any(|i| self.t == i * self.burst_len) {
                self.noise = self.vel;
            }
            self.noise *= self.k_burst;
        } else {
            if self.t == self.burst_end {
                self.noise = self.vel;
            }
            self.noise *= self.k_tail;
        }
        self.t = self.t.saturating_add(1);
        advance(&mut self.tone_phase, 190.0 / self.rate);
        let body = sine(self.tone_phase) * self.tone;
        self.tone *= self.k_tone;
        body + self.filter.run(noise).1 * self.noise * 0.9
    }

    pub(super) fn tidy(&mut self) {
        if self.t > self.burst_end {
            if self.noise < SILENT {
                self.noise = 0.0;
            }
            if self.tone < SILENT {
                self.tone = 0.0;
            }
        }
        self.filter.tidy();
    }
}

/// Closed and open hats from one high-passed noise source; a closed hit
/// chokes a ringing open one, as on a real hi-hat.
pub(super) struct Hats {
    closed: f32,
    open: f32,
    choked: bool,
    k_closed: f32,
    k_open: f32,
    k_choke: f32,
    filter: Svf,
}

impl Hats {
    pub(super) fn new(rate: f32) -> Self {
        Self {
            closed: 0.0,
            open: 0.0,
            choked: false,
            k_closed: decay(0.022, rate),
            k_open: decay(0.16, rate),
            k_choke: decay(0.006, rate),
            filter: Svf::new(7_500.0, 0.9, rate),
        }
    }

    pub(super) fn closed(&mut self, vel: f32) {
        self.closed = vel;
        self.choked = true;
    }

    pub(super) fn open(&mut self, vel: f32) {
        self.open = vel;
        self.choked = false;
    }

    /// Closed hats lean right, open hats left, for a little width.
    pub(super) fn next(&mut self, noise: f32) -> (f32, f32) {
        if self.closed == 0.0 && self.open == 0.0 {
            return (0.0, 0.0);
        }
        let h = self.filter.run(noise).2;
        let (c, o) = (self.closed, self.open);
        self.closed *= self.k_closed;
        self.open *= if self.choked {
            self.k_choke
        } else {
            self.k_open
        };
        (h * (0.75 * c + o), h * (c + 0.75 * o))
    }

    pub(super) fn tidy(&mut self) {
        if self.closed < SILENT {
            self.closed = 0.0;
        }
        if self.open < SILENT {
            self.open = 0.0;
        }
        if self.closed == 0.0 && self.open == 0.0 {
            self.filter.reset();
        }
    }
}
