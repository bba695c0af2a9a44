//! Reconnect pacing after a failed heartbeat.

use std::time::Duration;

/// Doubling delays from `base` up to `cap`, each scaled by a jitter factor
/// so a fleet that lost Redis together does not reconnect in lockstep.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(base: Duration, cap: Duration) -> Self {
        let base = base.min(cap);
        Self {
            base,
            cap,
            next: base,
        }
    }

    /// The next delay; `jitter` in `0.5..=1.0` scales it.
    pub(crate) fn next(&mut self, jitter: f64) -> Duration {
        let delay = self.next.mul_f64(jitter.clamp(0.5, 1.0));
        self.next = (self.next * 2).min(self.cap);
        delay
    }

    /// After a success the next failure starts from `base` again.
    pub(crate) fn reset(&mut self) {
        self.next = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(500));
        let seq: Vec<_> = (0..5).map(|_| b.next(1.0)).collect();
        assert_eq!(seq, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        assert_eq!(b.next(0.5), ms(250));
        b.reset();
        assert_eq!(b.next(7.0), ms(100));
    }
}
