//! The band: every instrument, the sidechain pump and the stereo mix.

use super::drums::{Hats, Kick, Snare};
use super::dsp::{advance, decay, flush, sine, Noise};
use super::score::{Bar, ARP, BASS, HATS, KICK, SNARE};
use super::tonal::{Bass, Echo, Pad, Pluck};

/// Mix levels, balanced on measured per-instrument RMS (kick loudest, then
/// bass, pad, snare, pluck, hats, echo) so the full groove sits around
/// -14 dBFS RMS before the volume knob.
const KICK_GAIN: f32 = 0.65;
const SNARE_GAIN: f32 = 1.1;
const HAT_GAIN: f32 = 0.24;
const BASS_GAIN: f32 = 0.85;
const PAD_GAIN: f32 = 0.07;
const PLUCK_GAIN: f32 = 0.2;
const ECHO_GAIN: f32 = 0.35;
/// How far the kick pushes the tonal parts down.
const DUCK_DEPTH: f32 = 0.45;

pub(super) struct Band {
    noise: Noise,
    kick: Kick,
    snare: Snare,
    hats: Hats,
    bass: Bass,
    pad: Pad,
    pluck: Pluck,
    echo: Echo,
    echo_time: f32,
    sidechain: f32,
    k_sidechain: f32,
    lfo: f32,
    lfo_inc: f32,
}

impl Band {
    /// `block` is the number of samples between `control` calls.
    pub(super) fn new(rate: f32, block: u32, seed: u64) -> Self {
        let block = block as f32;
        Self {
            noise: Noise::new(seed),
            kick: Kick::new(rate),
            snare: Snare::new(rate),
            hats: Hats::new(rate),
            bass: Bass::new(rate, block),
            pad: Pad::new(rate),
            pluck: Pluck::new(rate, block),
            // A dotted eighth at the slowest tempo (60 BPM) is 0.75 s.
            echo: Echo::new(rate, 0.8),
            echo_time: 0.0,
            sidechain: 0.0,
            k_sidechain: 1.0 - decay(0.004, rate),
            lfo: 0.0,
            lfo_inc: 0.05 * block / rate,
        }
    }

    /// Starts whatever `bar` plays on `step` at this `density`.
    pub(super) fn play(&mut self, bar: &Bar, step: usize, density: f32) {
        let on = |layer: u8| bar.layers & layer != 0;
        if step == 0 {
            self.pad.trigger(bar.chord);
        }
        if on(KICK) {
            if let Some(v) = bar.kick.hit(step, density) {
                self.kick.trigger(v);
            }
        }
        if on(SNARE) {
            self.snare.set_clap(bar.clap);
            if let Some(v) = bar.snare.hit(step, density) {
                self.snare.trigger(v);
            }
        }
        if on(HATS) {
            if let Some(v) = bar.hat.hit(step, density) {
                self.hats.closed(v);
            }
            if let Some(v) = bar.open_hat.hit(step, density) {
                self.hats.open(v);
            }
        }
        if on(BASS) {
            if let Some(v) = bar.bass.hit(step, density) {
                self.bass
                    .trigger(bar.bass_note[step], v, bar.bass_len[step]);
            }
        }
        if on(ARP) {
            if let Some(v) = bar.arp.hit(step, density) {
                self.pluck.trigger(bar.arp_note[step], v);
            }
        }
    }

    /// Control-rate update. `bright` (0..1) sweeps the low-pass cutoffs
    /// exponentially, which the ear hears as even; `step_inc` (steps per
    /// sample) sets the echo to three sixteenths.
    pub(super) fn control(&mut self, bright: f32, step_inc: f32) {
        advance(&mut self.lfo, self.lfo_inc);
        let drift = (0.3 * sine(self.lfo)).exp2();
        self.pad.control(160.0 * (5.3 * bright).exp2() * drift);
        self.bass.control(70.0 * (5.0 * bright).exp2());
        self.pluck.control(250.0 * (4.8 * bright).exp2());
        self.kick.tidy();
        self.snare.tidy();
        self.hats.tidy();
        self.echo.tidy();
        self.sidechain = flush(self.sidechain);
        self.echo_time = 3.0 / step_inc;
    }

    /// One stereo sample, before the master gain.
    pub(super) fn next(&mut self, step_inc: f32) -> (f32, f32) {
        let kick = KICK_GAIN * self.kick.next();
        let snare = SNARE_GAIN * self.snare.next(self.noise.sample());
        let (hl, hr) = self.hats.next(self.noise.sample());
        let bass = BASS_GAIN * self.bass.next(step_inc);
        let (pl, pr) = self.pad.next();
        let pluck = PLUCK_GAIN * self.pluck.next();
        let send = pluck + 0.3 * PAD_GAIN * (pl + pr);
        let (el, er) = self.echo.next(send, self.echo_time, 0.45);
        // Ducking the tonal parts under the kick gives the groove its pump.
        self.sidechain += (self.kick.level() - self.sidechain) * self.k_sidechain;
        let duck = 1.0 - DUCK_DEPTH * self.sidechain;
        let centre = kick + snare + duck * (bass + pluck);
        (
            centre + HAT_GAIN * hl + duck * (PAD_GAIN * pl + ECHO_GAIN * el),
            centre + HAT_GAIN * hr + duck * (PAD_GAIN * pr + ECHO_GAIN * er),
        )
    }
}
