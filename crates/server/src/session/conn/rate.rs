//! The client message-rate limit: a token bucket that is told the time, so
//! it can be tested without a clock.

use std::time::Instant;

/// A token bucket: `rate` per second, bursts up to one second's worth.
#[derive(Debug)]
pub(crate) struct RateLimit {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// A full bucket at `now`.
    pub(crate) fn new(rate: u32, now: Instant) -> Self {
        Self {
            rate: rate as f64,
            tokens: rate as f64,
            at: now,
        }
    }

    /// Takes one token at `now`; false when the bucket is empty. A `now`
    /// before the last one adds nothing.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_of_one_seconds_worth_then_the_rate() {
        let t0 = Instant::now();
        let mut b = RateLimit::new(10, t0);
        assert_eq!((0..15).filter(|_| b.take(t0)).count(), 10);
        // 100 ms at 10/s is one more token, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.take(t1));
        assert!(!b.take(t1));
        // A long pause refills to the burst, never past it.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..15).filter(|_| b.take(t2)).count(), 10);
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut b = RateLimit::new(2, t0);
        assert!(b.take(t0) && b.take(t0));
        assert!(!b.take(t0 - Duration::from_secs(5)));
        // …and the earlier instant does not count as a new start.
        assert!(!b.take(t0));
        assert!(b.take(t0 + Duration::from_millis(500)));
    }
}
