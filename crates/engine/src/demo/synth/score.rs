//! The score: what plays in each bar, derived from `(seed, bar)` alone.
//! Being stateless, a seed change takes effect on the next step, and the
//! same seed always replays the same song.
//!
//! A song is a key and mode, a groove style per instrument, and chord
//! progressions; it runs in 64-bar cycles of eight 8-bar sections (intro,
//! build, groove, breakdown, return), redraws its patterns every 4 bars and
//! its progressions every cycle, and fills the last bar of each section.

use super::dsp::Rng;
use super::tonal::CHORD;

/// Sixteenth-note steps per bar.
pub(super) const STEPS: usize = 16;

pub(super) const KICK: u8 = 1;
pub(super) const SNARE: u8 = 2;
pub(super) const HATS: u8 = 4;
pub(super) const BASS: u8 = 8;
pub(super) const ARP: u8 = 16;
const ALL: u8 = KICK | SNARE | HATS | BASS | ARP;

/// Layers per 8-bar section; the pad always plays.
const ARRANGEMENT: [u8; 8] = [
    KICK | HATS,
    KICK | HATS | BASS | SNARE,
    ALL,
    ALL,
    HATS | ARP,
    HATS | BASS | SNARE | ARP,
    ALL,
    ALL,
];

/// A scale and progressions (scale degrees, one chord a bar, or two bars
/// in slow songs) that sound right in it.
struct Mode {
    scale: [i32; 7],
    progressions: &'static [[usize; 4]],
}

const AEOLIAN: Mode = Mode {
    scale: [0, 2, 3, 5, 7, 8, 10],
    progressions: &[
        [0, 5, 2, 6],
        [0, 3, 5, 4],
        [0, 5, 3, 6],
        [0, 6, 5, 6],
        [0, 2, 5, 6],
        [0, 3, 6, 2],
        [5, 6, 0, 0],
    ],
};
const DORIAN: Mode = Mode {
    scale: [0, 2, 3, 5, 7, 9, 10],
    progressions: &[
        [0, 3, 0, 3],
        [0, 3, 6, 0],
        [0, 2, 3, 0],
        [0, 6, 3, 4],
        [0, 1, 2, 3],
    ],
};
const IONIAN: Mode = Mode {
    scale: [0, 2, 4, 5, 7, 9, 11],
    progressions: &[
        [0, 4, 5, 3],
        [5, 3, 0, 4],
        [0, 5, 3, 4],
        [0, 3, 4, 3],
        [3, 4, 2, 5],
        [3, 0, 4, 5],
    ],
};
const MIXOLYDIAN: Mode = Mode {
    scale: [0, 2, 4, 5, 7, 9, 10],
    progressions: &[[0, 6, 3, 0], [0, 3, 6, 3], [0, 6, 4, 3], [6, 3, 0, 0]],
};
/// Minor modes appear more than once, to be drawn more often.
const MODES: [&Mode; 7] = [
    &AEOLIAN,
    &AEOLIAN,
    &AEOLIAN,
    &DORIAN,
    &DORIAN,
    &IONIAN,
    &MIXOLYDIAN,
];

const fn mask(steps: &[usize]) -> u16 {
    let mut m = 0;
    let mut i = 0;
    while i < steps.len() {
        m |= 1 << steps[i];
        i += 1;
    }
    m
}

const EIGHTHS_OFF: u16 = mask(&[2, 6, 10, 14]);
const QUARTERS: u16 = mask(&[0, 4, 8, 12]);
const ODD: u16 = 0xAAAA;
/// Kick (base, extras) per groove style; four-on-the-floor twice as likely.
const KICKS: [(u16, u16); 4] = [
    (QUARTERS, mask(&[7, 14, 15])),
    (QUARTERS, mask(&[3, 10, 11])),
    (mask(&[0, 6, 10]), mask(&[3, 8, 14, 15])),
    (mask(&[0, 7, 10]), mask(&[3, 8, 14])),
];
/// Bass (base, extras): off-beat house, rolling, syncopated.
const BASSES: [(u16, u16); 3] = [
    (EIGHTHS_OFF, mask(&[3, 7, 11, 13, 15])),
    (mask(&[0, 2, 3, 6, 8, 10, 11, 14]), mask(&[5, 13, 15])),
    (mask(&[0, 3, 6, 10, 12]), mask(&[7, 8, 14, 15])),
];
/// Arpeggio (base, extras): eighths, 3-3-3-3-2-2, sixteenths.
const ARPS: [(u16, u16); 3] = [
    (0x5555, ODD),
    (mask(&[0, 3, 6, 9, 12, 14]), mask(&[7, 15])),
    (0xFFFF, 0),
];

/// One instrument's hits for a bar: a step plays when the density knob is
/// at least its threshold, so density adds and removes hits at once and
/// always in the same order.
#[derive(Clone, Copy)]
pub(super) struct Lane {
    thr: [f32; STEPS],
    vel: [f32; STEPS],
}

const NEVER: f32 = 2.0;

impl Lane {
    const EMPTY: Lane = Lane {
        thr: [NEVER; STEPS],
        vel: [0.0; STEPS],
    };

    /// Steps in `base` always play; `extra` steps join between densities
    /// `from` and 1, in an order drawn from `rng`.
    fn new(rng: &mut Rng, base: u16, vel: f32) -> Self {
        let mut lane = Self::EMPTY;
        lane.add(rng, base, 0.0, vel);
        lane
    }

    fn add(&mut self, rng: &mut Rng, steps: u16, from: f32, vel: f32) {
        for i in (0..STEPS).filter(|i| steps & (1 << i) != 0) {
            self.thr[i] = if from > 0.0 {
                from + (1.0 - from) * rng.unit()
            } else {
                0.0
            };
            self.vel[i] = vel * (0.88 + 0.12 * rng.unit());
        }
    }

    pub(super) fn hit(&self, step: usize, density: f32) -> Option<f32> {
        (density >= self.thr[step]).then_some(self.vel[step])
    }
}

/// Everything one bar plays.
pub(super) struct Bar {
    pub(super) layers: u8,
    pub(super) clap: bool,
    pub(super) chord: [f32; CHORD],
    pub(super) kick: Lane,
    pub(super) snare: Lane,
    pub(super) hat: Lane,
    pub(super) open_hat: Lane,
    pub(super) bass: Lane,
    pub(super) bass_note: [f32; STEPS],
    pub(super) bass_len: [f32; STEPS],
    pub(super) arp: Lane,
    pub(super) arp_note: [f32; STEPS],
}

/// Streams of the seed, one per kind of decision.
const SONG: u64 = 1 << 56;
const CYCLE: u64 = 2 << 56;
const PHRASE: u64 = 3 << 56;

pub(super) fn plan(seed: u64, bar: u64) -> Bar {
    let mut song = Rng::new(seed, SONG);
    let tonic = song.below(12) as i32;
    let mode = MODES[song.below(MODES.len())];
    let slow_harmony = song.chance(0.3);
    let color = if song.chance(0.5) { 6 } else { 8 };
    let clap = song.chance(0.5);
    let (kick_base, kick_extra) = KICKS[song.below(KICKS.len())];
    let (bass_base, bass_extra) = BASSES[song.below(BASSES.len())];
    let (arp_base, arp_extra) = ARPS[song.below(ARPS.len())];
    let open_offbeats = song.chance(0.35);

    let (cycle, section, in_section) = (bar / 64, (bar / 8 % 8) as usize, bar % 8);
    let mut layers = ARRANGEMENT[section];
    if cycle > 0 && section == 0 {
        // Only the very first intro is sparse; later ones keep the groove.
        layers |= BASS | ARP;
    }

    let mut c = Rng::new(seed, CYCLE | cycle);
    let progs = mode.progressions;
    let a = c.below(progs.len());
    let b = (a + 1 + c.below(progs.len() - 1)) % progs.len();
    let prog = progs[if matches!(section, 3 | 4 | 7) { b } else { a }];
    let root = prog[(if slow_harmony { bar / 2 } else { bar } % 4) as usize];
    let pitch = |degree: usize, low: i32| {
        let pc = tonic + mode.scale[degree % 7];
        (low + (pc - low).rem_euclid(12)) as f32
    };
    // Triad in one octave, the seventh or ninth above it: open, not a cluster.
    let mut chord: [f32; CHORD] =
        [(0, 55), (2, 55), (4, 55), (color, 64)].map(|(d, low)| pitch(root + d, low));
    chord.sort_by(f32::total_cmp);

    let mut r = Rng::new(seed, PHRASE | (bar / 4));
    let mut kick = Lane::new(&mut r, kick_base, 0.95);
    kick.add(&mut r, kick_extra, 0.35, 0.6);
    let mut snare = Lane::new(&mut r, mask(&[4, 12]), 0.8);
    snare.add(&mut r, mask(&[2, 7, 9, 11, 14, 15]), 0.4, 0.22);
    if in_section == 7 {
        let from = if section == 5 { 8 } else { 12 };
        // A rising roll into the next section, around the backbeat.
        for i in from..STEPS {
            if snare.thr[i] == 0.0 {
                continue;
            }
            snare.thr[i] = 0.05;
            snare.vel[i] = 0.3 + 0.5 * (i - from) as f32 / (STEPS - from) as f32;
        }
    }
    let (mut hat, mut open_hat) = (Lane::EMPTY, Lane::EMPTY);
    if open_offbeats {
        open_hat.add(&mut r, EIGHTHS_OFF, 0.0, 0.5);
    } else {
        hat.add(&mut r, EIGHTHS_OFF, 0.0, 0.8);
        open_hat.add(&mut r, mask(&[14]), 0.45, 0.5);
    }
    hat.add(&mut r, QUARTERS, 0.1, 0.45);
    hat.add(&mut r, ODD, 0.35, 0.35);

    let bass_root = pitch(root, 33);
    let third = pitch(root + 2, 33);
    let fifth = pitch(root + 4, 33);
    let mut bass = Lane::new(&mut r, bass_base, 0.85);
    bass.add(&mut r, bass_extra, 0.3, 0.7);
    let long = if bass_base == EIGHTHS_OFF { 1.5 } else { 0.8 };
    let bass_note = std::array::from_fn(|i| match (i, r.unit()) {
        (0, _) => bass_root,
        (_, x) if x < 0.65 => bass_root,
        (_, x) if x < 0.8 => bass_root + 12.0,
        (_, x) if x < 0.92 => fifth,
        _ => third,
    });
    let bass_len = std::array::from_fn(|_| long * (0.6 + 0.4 * r.unit()));

    let mut arp = Lane::new(&mut r, arp_base, 0.7);
    arp.add(&mut r, arp_extra, 0.3, 0.5);
    let shape = r.below(3);
    let arp_note = std::array::from_fn(|i| {
        let idx = match shape {
            0 => i % CHORD,
            1 => [0, 1, 2, 3, 2, 1][i % 6],
            _ => r.below(CHORD),
        };
        // An occasional octave jump, but not into whistle range.
        let lift = if r.chance(0.15) && chord[idx] < 62.0 {
            24.0
        } else {
            12.0
        };
        chord[idx] + lift
    });

    Bar {
        layers,
        clap,
        chord,
        kick,
        snare,
        hat,
        open_hat,
        bass,
        bass_note,
        bass_len,
        arp,
        arp_note,
    }
}
