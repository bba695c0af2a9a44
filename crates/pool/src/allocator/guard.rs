//! The allocator's gate: a bearer token compared in constant time, and a
//! per-client token bucket (one request per seat per claim TTL would
//! otherwise hold the whole fleet).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Most clients tracked at once; beyond it idle buckets are dropped first.
const MAX_CLIENTS: usize = 16_384;

/// Whether `given` equals `want`, in time independent of where they differ
/// (both are hashed first, so their lengths do not leak either).
pub(crate) fn token_matches(given: &str, want: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(want.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// `rate` claims a second per client IP, bursts up to `burst`.
pub(crate) struct RateLimit {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimit {
    /// `rate <= 0` disables the limit.
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `ip`'s bucket; `Err(retry_after)` when empty.
    pub(crate) fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&ip) {
            // Keep the map bounded: a full bucket carries no state worth
            // keeping, so forget those first, then everything.
            let refill = Duration::from_secs_f64(self.burst / self.rate);
            buckets.retain(|_, (_, at)| now.duration_since(*at) < refill);
            if buckets.len() >= MAX_CLIENTS {
                buckets.clear();
            }
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("", "s3cret"));
    }

    #[test]
    fn bucket_refills_at_the_rate() {
        let l = RateLimit::new(10.0, 2.0);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let t = Instant::now();
        assert!(l.take(ip, t).is_ok());
        assert!(l.take(ip, t).is_ok());
        let wait = l.take(ip, t).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(l.take(other, t).is_ok(), "buckets are per client");
        assert!(l.take(ip, t + Duration::from_millis(110)).is_ok());
        assert!(RateLimit::new(0.0, 1.0).take(ip, t).is_ok());
    }
}
