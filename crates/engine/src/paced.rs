//! A clock for built-in engines: slices are due at `start + n / rate`, and
//! each wake-up produces every slice that has come due, so a 200 kHz engine
//! costs one timer per millisecond, not one per slice.

use std::{sync::Arc, time::Duration};

use serde_json::{Map, Value};
use tokio::time::{sleep_until, Instant};

use crate::{Control, EngineSide, Slice, SliceSink};

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

/// Runs `gen` until the session ends (the control channel closes or says `End`).
/// While the session is detached nothing is produced (nobody would hear
/// it); on resume the clock picks up where it paused, without a catch-up burst.
pub async fn run(mut gen: impl Generator, sink: Arc<dyn SliceSink>, side: EngineSide) {
    let (mut control, _failure) = side.split();
    let rate = gen.rate_hz();
    let period_us = 1e6 / rate;
    let mut start = Instant::now();
    let mut produced: u64 = 0;
    let mut paused = false;
    let max_batch = ((MAX_CATCH_UP.as_secs_f64() * rate).ceil() as u64).max(1);
    loop {
        let now = Instant::now();
        let wake = if paused {
            None
        } else {
            let target = due(now - start, rate);
            if target.saturating_sub(produced) > max_batch {
                produced = target - max_batch;
            }
            while produced < target {
                let ts = (produced as f64 * period_us) as u64;
                sink.push(gen.slice(produced, ts));
                produced += 1;
            }
            let next_due = start + Duration::from_secs_f64(produced as f64 / rate);
            Some(next_due.max(now + MIN_TICK))
        };
        tokio::select! {
            _ = sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
            msg = control.recv() => match msg {
                Some(Control::Params(p)) => gen.params(&p),
                // A client (re)attached: give it the next slice now rather
                // than at its slot — at most one ahead of the clock, so the
                // media is early, never doubled, and the pace is unchanged.
                Some(Control::Keyframe) if !paused => {
                    if produced <= due(Instant::now() - start, rate) {
                        let ts = (produced as f64 * period_us) as u64;
                        sink.push(gen.slice(produced, ts));
                        produced += 1;
                    }
                }
                Some(Control::Detached { .. }) => paused = true,
                Some(Control::Resumed) if paused => {
                    paused = false;
                    // Slice `produced` is due now: the media time continues
                    // from the pause instead of skipping the detached span.
                    let at = Duration::from_secs_f64(produced.saturating_sub(1) as f64 / rate);
                    start = Instant::now().checked_sub(at).unwrap_or(start);
                }
                Some(Control::Keyframe | Control::Resumed | Control::Progress(_)) => {}
                Some(Control::End(_)) | None => return,
            },
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
        tokio::spawn(run(Tick, sink.clone(), side));
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
        tokio::spawn(run(Tick, sink.clone(), side));
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

    #[test]
    fn due_counts_the_first_slice_at_zero() {
        assert_eq!(due(Duration::ZERO, 10.0), 1);
        assert_eq!(due(Duration::from_millis(99), 10.0), 1);
        assert_eq!(due(Duration::from_millis(100), 10.0), 2);
        assert_eq!(due(Duration::from_secs(1), 200_000.0), 200_001);
    }
}
