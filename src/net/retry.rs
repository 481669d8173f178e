//! [`Retry`]: the one retry policy, for registry requests, commit statuses, S3 and the
//! compare-and-swap of an image layout's `index.json`.
//!
//! A policy is plain data with three numbers: attempts (the first included), the delay
//! before the first retry, and the cap. The wait before retry `n` (0-based) is
//! `base_delay * 2^n`, capped at `max_delay`, times a random factor in `[0.5, 1]` ("equal
//! jitter": never less than half the backoff, so clients that failed together spread out
//! without retrying at once). A server's `Retry-After` (seconds or an HTTP date) replaces
//! the backoff, unjittered; one asking for more than `max_delay` ends the retries at once,
//! since retrying sooner than asked only earns another refusal. Each use starts from a
//! named preset whose values are stated here ([`Retry::HTTP`], [`Retry::STATUS`],
//! [`Retry::INDEX_UPDATE`]) and checks a policy it is given once, with
//! [`Retry::validate`], when it is set up.
//!
//! A loop counts its tries with [`Attempts`]: after each failure, [`Attempts::failed`]
//! says how long to wait or why to stop ([`GiveUp`]). Which failures are worth retrying is
//! the caller's call, except for HTTP statuses, where [`retryable_status`] is shared.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How often and how long to retry; see the module docs for the formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries at most, the first included; 1 means never retry.
    pub attempts: u32,
    /// Pause before the first retry, before jitter; doubled for each further retry.
    pub base_delay: Duration,
    /// Longest pause: the backoff stops growing here, and a `Retry-After` beyond it ends
    /// the retries.
    pub max_delay: Duration,
}

impl Retry {
    /// Requests to a registry (and the default): 6 attempts, 200 ms doubling to at most
    /// 60 s. Five quick retries ride out a dropped connection or a registry restart (about
    /// 6 s of backoff in all); 60 s lets a rate limit's `Retry-After: 60` be honoured.
    pub const HTTP: Retry = Retry {
        attempts: 6,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(60),
    };

    /// Commit statuses on GitHub and GitLab: 5 attempts, 1 s doubling to at most 60 s.
    /// A status is one small request at a time, so its retries can afford to give a
    /// rate-limited API room.
    pub const STATUS: Retry = Retry {
        attempts: 5,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
    };

    /// Compare-and-swap of `index.json` in an image layout: 64 attempts, 5 ms doubling to
    /// at most 500 ms. A lost swap means another writer got in first, not that a server is
    /// struggling: retry soon and often.
    pub const INDEX_UPDATE: Retry = Retry {
        attempts: 64,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(500),
    };

    /// Checks the values: at least one attempt, and a cap no smaller than the first delay.
    pub fn validate(&self) -> Result<(), InvalidRetry> {
        if self.attempts == 0 {
            return Err(InvalidRetry("attempts must be at least 1 (1 means no retry)".into()));
        }
        if self.max_delay < self.base_delay {
            return Err(InvalidRetry(format!(
                "the longest delay ({}) is shorter than the first ({})",
                seconds(self.max_delay),
                seconds(self.base_delay)
            )));
        }
        Ok(())
    }

    /// The backoff before retry `retry` (0-based) without jitter: `base_delay * 2^retry`,
    /// capped at `max_delay`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The pause before retry `retry` (0-based): [`Retry::backoff`] times a random factor in
    /// `[0.5, 1]`.
    pub fn delay(&self, retry: u32) -> Duration {
        self.backoff(retry).mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    /// A fresh count of attempts under this policy, for one operation.
    pub fn start(&self) -> Attempts {
        Attempts { policy: *self, made: 0 }
    }
}

impl Default for Retry {
    /// [`Retry::HTTP`].
    fn default() -> Retry {
        Retry::HTTP
    }
}

/// A retry policy with impossible values; the message says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid retry policy: {0}")]
pub struct InvalidRetry(String);

/// The attempts one operation made so far under a [`Retry`] policy.
#[derive(Debug, Clone)]
pub struct Attempts {
    policy: Retry,
    made: u32,
}

impl Attempts {
    /// Attempts made (and counted by [`Attempts::failed`]) so far.
    pub fn made(&self) -> u32 {
        self.made
    }

    /// Counts a failed attempt and says what comes next: `Ok(pause)` before another
    /// attempt (`retry_after`, the server's wish, when given; else the jittered backoff),
    /// or why to stop.
    pub fn failed(&mut self, retry_after: Option<Duration>) -> Result<Duration, GiveUp> {
        self.made += 1;
        if self.made >= self.policy.attempts {
            return Err(GiveUp::Exhausted { attempts: self.made });
        }
        match retry_after {
            Some(asked) if asked > self.policy.max_delay => Err(GiveUp::TooLong {
                asked,
                limit: self.policy.max_delay,
            }),
            Some(asked) => Ok(asked),
            None => Ok(self.policy.delay(self.made - 1)),
        }
    }
}

/// Why [`Attempts::failed`] said to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// Every attempt the policy allows was made.
    Exhausted {
        /// Attempts made.
        attempts: u32,
    },
    /// The server asked (`Retry-After`) to wait longer than the policy's cap.
    TooLong {
        /// The wait the server asked for.
        asked: Duration,
        /// The policy's [`Retry::max_delay`].
        limit: Duration,
    },
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUp::Exhausted { attempts } => write!(f, "gave up after {attempts} attempt(s)"),
            GiveUp::TooLong { asked, limit } => write!(
                f,
                "the server asks to wait {}, more than the {} limit",
                seconds(*asked),
                seconds(*limit)
            ),
        }
    }
}

/// `3600 s`, `0.5 s`: a duration for messages.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// HTTP statuses worth retrying: 408 request timeout, 429 too many requests, and server
/// errors except 501 not implemented and 505 HTTP version not supported, which a retry
/// cannot fix.
pub fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
}

/// A `Retry-After` value as a wait from `now`: delay-seconds, or an HTTP date (a date in
/// the past means no wait). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Retry-After` header of an answer, parsed with [`parse_retry_after`] relative to now.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    parse_retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Retry = Retry {
        attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    };

    #[test]
    fn presets_are_valid() {
        for p in [Retry::HTTP, Retry::STATUS, Retry::INDEX_UPDATE, Retry::default(), QUICK] {
            p.validate().unwrap();
        }
        assert_eq!(Retry::default(), Retry::HTTP);
    }

    #[test]
    fn impossible_values_are_refused() {
        let none = Retry { attempts: 0, ..QUICK };
        assert!(none.validate().unwrap_err().to_string().contains("at least 1"));
        let upside_down = Retry {
            max_delay: Duration::from_millis(50),
            ..QUICK
        };
        let err = upside_down.validate().unwrap_err().to_string();
        assert!(err.contains("(0.05 s) is shorter than the first (0.1 s)"), "{err}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<u128> = (0..6).map(|n| QUICK.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(QUICK.backoff(u32::MAX), Duration::from_secs(1), "no overflow");
        let index: Vec<u128> = (0..9).map(|n| Retry::INDEX_UPDATE.backoff(n).as_millis()).collect();
        assert_eq!(index, [5, 10, 20, 40, 80, 160, 320, 500, 500]);
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_backoff() {
        for retry in 0..40 {
            let full = QUICK.backoff(retry);
            for _ in 0..50 {
                let d = QUICK.delay(retry);
                assert!(
                    d >= full / 2 && d <= full,
                    "retry {retry}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        let spread: std::collections::BTreeSet<Duration> = (0..50).map(|_| QUICK.delay(3)).collect();
        assert!(spread.len() > 1, "the delays are jittered");
    }

    #[test]
    fn attempts_count_to_the_limit() {
        let mut tries = QUICK.start();
        for retry in 0..3 {
            let wait = tries.failed(None).unwrap();
            let full = QUICK.backoff(retry);
            assert!(wait >= full / 2 && wait <= full, "{wait:?}");
        }
        assert_eq!(tries.failed(None), Err(GiveUp::Exhausted { attempts: 4 }));
        assert_eq!(tries.made(), 4);
        let once = Retry { attempts: 1, ..QUICK };
        assert_eq!(once.start().failed(None), Err(GiveUp::Exhausted { attempts: 1 }));
    }

    #[test]
    fn retry_after_wins_up_to_the_cap() {
        let mut tries = QUICK.start();
        assert_eq!(tries.failed(Some(Duration::ZERO)), Ok(Duration::ZERO));
        assert_eq!(tries.failed(Some(Duration::from_secs(1))), Ok(Duration::from_secs(1)));
        let too_long = tries.failed(Some(Duration::from_secs(3600))).unwrap_err();
        assert_eq!(
            too_long,
            GiveUp::TooLong {
                asked: Duration::from_secs(3600),
                limit: Duration::from_secs(1)
            }
        );
        assert_eq!(
            too_long.to_string(),
            "the server asks to wait 3600 s, more than the 1 s limit"
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        for bad in ["soon", "-1", "1.5", ""] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, reqwest::header::HeaderValue::from_static("12"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 416, 501, 505] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
