//! The per-token request rate limit: a token bucket per token id, in the process. One
//! client's burst (a county system's runaway loop) is answered with 429 and `Retry-After`
//! before it reaches the database, so it cannot take the connections the others need.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::StatusCode;
use uuid::Uuid;

use super::problem::Problem;

#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    /// One bucket per authenticated token (never per presented string: only tokens that
    /// authenticated get here, so the map is bounded by the token table).
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_second` requests a second on average, up to `burst` at once. Zero turns the limit
    /// off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the token's bucket, or refuses with 429 and the seconds until
    /// one is available.
    pub fn admit(&self, token: Uuid) -> Result<(), Problem> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("not poisoned");
        let bucket = buckets.entry(token).or_insert(Bucket { tokens: self.burst, at: now });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait_s = ((1.0 - bucket.tokens) / self.per_second).ceil().max(1.0) as u32;
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "this token sends more than {} requests a second (bursts of {}); retry after {wait_s} s",
                self.per_second, self.burst
            ),
        );
        p.retry_after = Some(wait_s);
        Err(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_token() {
        let limiter = RateLimiter::new(1, 3);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..3 {
            limiter.admit(a).unwrap();
        }
        let refused = limiter.admit(a).unwrap_err();
        assert_eq!((refused.status, refused.code.as_str()), (429, "rate_limited"));
        assert_eq!(refused.retry_after, Some(1));
        limiter.admit(b).expect("another token has its own bucket");
        RateLimiter::new(0, 0).admit(a).expect("zero turns the limit off");
    }
}
