//! In-memory token buckets that slow down password guessing and mass registration.
//!
//! Each key (a client address or an account) has a bucket of `limit` attempts that
//! refills evenly over `window`. The buckets live in this process only; several
//! replicas each keep their own, which multiplies the limit by the replica count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before full ones are forgotten, so a flood of addresses cannot grow
/// memory without bound.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// Takes one attempt from `key`'s bucket; when it is empty, returns how many whole
    /// seconds until the next attempt is allowed.
    pub fn check(&self, key: &str, limit: u32, window: Duration) -> Result<(), u64> {
        self.check_at(key, limit, window, Instant::now())
    }

    fn check_at(&self, key: &str, limit: u32, window: Duration, now: Instant) -> Result<(), u64> {
        let capacity = f64::from(limit.max(1));
        let per_second = capacity / window.as_secs_f64();
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, bucket| refilled(bucket, capacity, per_second, now) < capacity);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        bucket.tokens = refilled(bucket, capacity, per_second, now);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / per_second;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

fn refilled(bucket: &Bucket, capacity: f64, per_second: f64, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * per_second).min(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_limit_then_rejects() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.check_at("ip", 3, minute, start).is_ok());
        }
        assert_eq!(limiter.check_at("ip", 3, minute, start), Err(20));
        assert!(limiter.check_at("other", 3, minute, start).is_ok());
    }

    #[test]
    fn bucket_refills_over_window() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        assert!(limiter.check_at("ip", 1, minute, start).is_ok());
        assert!(
            limiter
                .check_at("ip", 1, minute, start + Duration::from_secs(30))
                .is_err()
        );
        assert!(
            limiter
                .check_at("ip", 1, minute, start + Duration::from_secs(61))
                .is_ok()
        );
    }
}
