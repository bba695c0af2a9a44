//! A clock for built-in engines: slices are due at `start + n / rate`, and
//! each wake-up produces every slice that has come due, so a 200 kHz engine
//! costs one wake-up per millisecond, not one per slice. The wake-ups come
//! from one shared [`Pacer`] (a heap per core), not a timer per session.

mod pacer;

use std::{
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::{Control, EngineSide, Slice, SliceSink};

pub use pacer::{Pacer, Slot, Tick};

/// Something that makes slices at a fixed rate.
pub trait Generator: Send + 'static {
    /// Slices per second.
    fn rate_hz(&self) -> f64;
    /// Makes slice number `n` (from 0), stamped with media time `timestamp_us`.
    fn slice(&mut self, n: u64, timestamp_us: u64) -> Slice;
    /// Applies knobs from a `params` message.
    fn params(&mut self, _params: &Map<String, Value>) {}
}

/// Shortest sleep between batches.
const MIN_TICK: Duration = Duration::from_millis(1);
/// Longest backlog produced in one go after the process was descheduled;
/// older due slices are skipped (they would be stale on arrival anyway).
const MAX_CATCH_UP: Duration = Duration::from_millis(250);

/// How many slices are due `elapsed` after the start at `rate_hz`, the first
/// one at time zero.
pub fn due(elapsed: Duration, rate_hz: f64) -> u64 {
    (elapsed.as_secs_f64() * rate_hz).floor() as u64 + 1
}

/// One session's clock: what the pacer runs when the session is due.
struct Clock<G> {
    state: Mutex<State<G>>,
}

struct State<G> {
    gen: G,
    sink: Arc<dyn SliceSink>,
    rate: f64,
    period_us: f64,
    max_batch: u64,
    start: Instant,
    produced: u64,
    paused: bool,
    /// In the pacer's heap (so a resume never puts it there twice).
    scheduled: bool,
}

impl<G: Generator> State<G> {
    fn push_next(&mut self) {
        let ts = (self.produced as f64 * self.period_us) as u64;
        let slice = self.gen.slice(self.produced, ts);
        self.sink.push(slice);
        self.produced += 1;
    }
}

impl<G: Generator> Tick for Clock<G> {
    fn tick(&self, now: Instant) -> Option<Instant> {
        let Ok(mut s) = self.state.lock() else {
            return None;
        };
        if s.paused {
            s.scheduled = false;
            return None;
        }
        let target = due(now - s.start, s.rate);
        if target.saturating_sub(s.produced) > s.max_batch {
            s.produced = target - s.max_batch;
        }
        while s.produced < target {
            s.push_next();
        }
        let next_due = s.start + Duration::from_secs_f64(s.produced as f64 / s.rate);
        Some(next_due.max(now + MIN_TICK))
    }
}

/// Runs `gen` on `pacer` until the session ends (the control channel
/// closes or says `End`). This task only waits for control messages; the
/// pacer produces the slices. While the session is detached nothing is
/// produced (nobody would hear it); on resume the clock picks up where it
/// paused, without a catch-up burst.
pub async fn run<G: Generator>(pacer: Pacer, gen: G, sink: Arc<dyn SliceSink>, side: EngineSide) {
    let (mut control, _failure) = side.split();
    let rate = gen.rate_hz();
    let clock = Arc::new(Clock {
        state: Mutex::new(State {
            gen,
            sink,
            rate,
            period_us: 1e6 / rate,
            max_batch: ((MAX_CATCH_UP.as_secs_f64() * rate).ceil() as u64).max(1),
            start: Instant::now(),
            produced: 0,
            paused: false,
            scheduled: true,
        }),
    });
    let slot = pacer.slot();
    let weak = || Arc::downgrade(&clock) as Weak<dyn Tick>;
    slot.schedule(weak(), Instant::now());
    while let Some(msg) = control.recv().await {
        let Ok(mut s) = clock.state.lock() else {
            return;
        };
        match msg {
            Control::Params(p) => s.gen.params(&p),
            // A client (re)attached: give it the next slice now rather
            // than at its slot — at most one ahead of the clock, so the
            // media is early, never doubled, and the pace is unchanged.
            Control::Keyframe if !s.paused => {
                if s.produced <= due(Instant::now() - s.start, s.rate) {
                    s.push_next();
                }
            }
            Control::Detached { .. } => s.paused = true,
            Control::Resumed if s.paused => {
                s.paused = false;
                // Slice `produced` is due now: the media time continues
                // from the pause instead of skipping the detached span.
                let at = Duration::from_secs_f64(s.produced.saturating_sub(1) as f64 / s.rate);
                s.start = Instant::now().checked_sub(at).unwrap_or(s.start);
                if !s.scheduled {
                    s.scheduled = true;
                    drop(s);
                    slot.schedule(weak(), Instant::now());
                }
            }
            Control::Keyframe | Control::Resumed | Control::Progress(_) => {}
            Control::End(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineSession;
    use seatkeeper_protocol::slice::Frame;
    use std::sync::Mutex;

    struct Count(Mutex<Vec<u64>>);

    impl SliceSink for Count {
        fn push(&self, slice: Slice) {
            self.0.lock().unwrap().push(slice.timestamp_us);
        }
    }

    struct Tick;

    impl Generator for Tick {
        fn rate_hz(&self) -> f64 {
            10.0
        }
        fn slice(&mut self, _n: u64, timestamp_us: u64) -> Slice {
            Slice {
                kind: 1,
                flags: 0,
                timestamp_us,
                frame: Frame::from_payload(b"x"),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_keyframe_request_brings_the_next_slice_forward_once() {
        let sink = Arc::new(Count(Mutex::new(Vec::new())));
        let (session, side) = EngineSession::pair(serde_json::Value::Null);
        tokio::spawn(run(Pacer::new(), Tick, sink.clone(), side));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(*sink.0.lock().unwrap(), [0, 100_000]);
        session.control(Control::Keyframe).unwrap();
        session.control(Control::Keyframe).unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        // One slice early (200 ms of media at 151 ms), not two.
        assert_eq!(*sink.0.lock().unwrap(), [0, 100_000, 200_000]);
        tokio::time::sleep(Duration::from_millis(140)).await; // t = 291 ms
        assert_eq!(sink.0.lock().unwrap().len(), 3, "the pace is unchanged");
        tokio::time::sleep(Duration::from_millis(20)).await; // t = 311 ms
        assert_eq!(sink.0.lock().unwrap().len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_produced_while_detached_and_the_clock_resumes_without_a_burst() {
        let sink = Arc::new(Count(Mutex::new(Vec::new())));
        let (session, side) = EngineSession::pair(serde_json::Value::Null);
        tokio::spawn(run(Pacer::new(), Tick, sink.clone(), side));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(sink.0.lock().unwrap().len(), 2);
        session
            .control(Control::Detached {
                resume_window_ms: 5_000,
            })
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(sink.0.lock().unwrap().len(), 2, "nothing while detached");
        session.control(Control::Resumed).unwrap();
        session.control(Control::Keyframe).unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        // The next slice at once, media time continuing from the pause.
        assert_eq!(*sink.0.lock().unwrap(), [0, 100_000, 200_000]);
        tokio::time::sleep(Duration::from_millis(250)).await;
        let n = sink.0.lock().unwrap().len();
        assert!(
            (4..=6).contains(&n),
            "the normal pace after resume, not a burst: {n}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_share_one_pacer_and_an_ended_one_is_forgotten() {
        let pacer = Pacer::new();
        let (a, b) = (
            Arc::new(Count(Mutex::new(Vec::new()))),
            Arc::new(Count(Mutex::new(Vec::new()))),
        );
        let (sa, side_a) = EngineSession::pair(serde_json::Value::Null);
        let (_sb, side_b) = EngineSession::pair(serde_json::Value::Null);
        let ta = tokio::spawn(run(pacer.clone(), Tick, a.clone(), side_a));
        tokio::spawn(run(pacer, Tick, b.clone(), side_b));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(a.0.lock().unwrap().len(), 3);
        assert_eq!(b.0.lock().unwrap().len(), 3);
        drop(sa);
        ta.await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            a.0.lock().unwrap().len(),
            3,
            "an ended session gets nothing"
        );
        assert_eq!(b.0.lock().unwrap().len(), 6, "the other one keeps its pace");
    }

    #[test]
    fn due_counts_the_first_slice_at_zero() {
        assert_eq!(due(Duration::ZERO, 10.0), 1);
        assert_eq!(due(Duration::from_millis(99), 10.0), 1);
        assert_eq!(due(Duration::from_millis(100), 10.0), 2);
        assert_eq!(due(Duration::from_secs(1), 200_000.0), 200_001);
    }
}
