//! When and how long to wait before trying a request again.
//!
//! 429, 5xx and network errors are retried with exponential backoff and full jitter; a
//! `Retry-After` (seconds or HTTP date) is honoured as the least wait. The official Durable
//! Streams producers retry none of these; a backfill that runs
//! unattended must.

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` obeyed; a server asking for more is waited on for this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt, per request.
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 8,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based): uniform in [0, min(cap, base * 2^retry)],
    /// and never less than what the server asked for.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.cap);
        let jittered = exp.mul_f64(fastrand::f64());
        match retry_after {
            Some(ra) => jittered.max(ra.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }
}

/// Reads a `Retry-After` value: delay-seconds, or an HTTP date (as RFC 9110 defines `Retry-After`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether a status is worth retrying: 429 (too many requests), 408, and every 5xx.
pub fn is_transient_status(status: u16) -> bool {
    status == 429 || status == 408 || (500..600).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for _ in 0..200 {
            assert!(p.delay(0, None) <= Duration::from_millis(100));
            assert!(p.delay(3, None) <= Duration::from_millis(800));
            assert!(p.delay(40, None) <= Duration::from_secs(1));
            assert!(p.delay(0, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
            assert!(p.delay(0, Some(Duration::from_secs(9999))) <= MAX_RETRY_AFTER);
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(10));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(10))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(10));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn transient_statuses() {
        assert!(is_transient_status(429));
        assert!(is_transient_status(503));
        assert!(!is_transient_status(409));
        assert!(!is_transient_status(413));
    }
}
