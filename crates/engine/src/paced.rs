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
pub async fn run(mut gen: impl Generator, sink: Arc<dyn SliceSink>, side: EngineSide) {
    let (mut control, _failure) = side.split();
    let rate = gen.rate_hz();
    let period_us = 1e6 / rate;
    let start = Instant::now();
    let mut produced: u64 = 0;
    let max_batch = ((MAX_CATCH_UP.as_secs_f64() * rate).ceil() as u64).max(1);
    loop {
        let now = Instant::now();
        let target = due(now - start, rate);
        if target - produced > max_batch {
            produced = target - max_batch;
        }
        while produced < target {
            let ts = (produced as f64 * period_us) as u64;
            sink.push(gen.slice(produced, ts));
            produced += 1;
        }
        let next_due = start + Duration::from_secs_f64(produced as f64 / rate);
        let wake = next_due.max(now + MIN_TICK);
        tokio::select! {
            _ = sleep_until(wake) => {}
            msg = control.recv() => match msg {
                Some(Control::Params(p)) => gen.params(&p),
                Some(Control::Keyframe) => {}
                Some(Control::End(_)) | None => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_counts_the_first_slice_at_zero() {
        assert_eq!(due(Duration::ZERO, 10.0), 1);
        assert_eq!(due(Duration::from_millis(99), 10.0), 1);
        assert_eq!(due(Duration::from_millis(100), 10.0), 2);
        assert_eq!(due(Duration::from_secs(1), 200_000.0), 200_001);
    }
}
