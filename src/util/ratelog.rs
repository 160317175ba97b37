//! Warnings that an attacker can repeat at will (refused signatures, 503s at the
//! connection cap, failed accepts) at a bounded rate, with a count of what was left out.
//! Unbounded, a flood of them makes journald rate-limit the whole service and drop the
//! lines that matter; here each kind costs at most a few lines per interval.
//!
//! [`Limiter`] is the counting part on its own, for other budgets (the webhook's bound on
//! refused signatures written to the history).

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::util::lock;

/// How often a repeated warning may be written: a few lines every 10 s per kind stays far
/// below journald's default budget (1,000 lines per 30 s per service) even with every
/// kind flooding at once, and still shows an attack while it happens.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Lines of one kind written per interval before the rest are only counted: enough to
/// show a few distinct callers' addresses, few enough to stay quiet under a flood.
pub const LOG_BURST: u32 = 5;

/// Admits at most `burst` events per `interval` and counts the rest.
pub struct Limiter {
    interval: Duration,
    burst: u32,
    started: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl Limiter {
    pub const fn new(interval: Duration, burst: u32) -> Limiter {
        Limiter { interval, burst, started: None, used: 0, suppressed: 0 }
    }

    /// `Some(n)`: this event may go ahead, and `n` events were refused since the last
    /// one that went ahead (to be reported with it). `None`: refused and counted.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        if self.started.map_or(true, |s| now.saturating_duration_since(s) >= self.interval) {
            self.started = Some(now);
            self.used = 0;
        }
        if self.used < self.burst {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// One kind of repeated log line, written at most [`LOG_BURST`] times per [`LOG_INTERVAL`].
/// Lines left out are counted and the count is appended to the next line written, so it
/// shows up as soon as the kind recurs after a quiet spell.
pub struct RateLog {
    limiter: Mutex<Limiter>,
}

impl RateLog {
    pub const fn new() -> RateLog {
        RateLog { limiter: Mutex::new(Limiter::new(LOG_INTERVAL, LOG_BURST)) }
    }

    pub fn warn(&self, args: fmt::Arguments) {
        self.log(log::Level::Warn, args);
    }

    pub fn error(&self, args: fmt::Arguments) {
        self.log(log::Level::Error, args);
    }

    fn log(&self, level: log::Level, args: fmt::Arguments) {
        // Decide under the lock, format and write outside it.
        let admitted = lock(&self.limiter).admit(Instant::now());
        match admitted {
            Some(0) => log::log!(level, "{args}"),
            Some(n) => log::log!(level, "{args} ({n} more like this were not logged)"),
            None => {}
        }
    }
}

impl Default for RateLog {
    fn default() -> RateLog {
        RateLog::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rest_is_counted_and_reported_with_the_next_line() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Duration::from_secs(10), 3);
        let passed: Vec<_> = (0..1000).filter_map(|_| l.admit(t0)).collect();
        assert_eq!(passed, vec![0, 0, 0], "three lines, nothing suppressed before them");
        assert_eq!(l.admit(t0 + Duration::from_secs(9)), None, "still the same interval");
        assert_eq!(l.admit(t0 + Duration::from_secs(10)), Some(998), "the count comes with the next line");
        assert_eq!(l.admit(t0 + Duration::from_secs(10)), Some(0), "and is reported once");
    }

    #[test]
    fn a_quiet_spell_reports_the_count_on_recurrence() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Duration::from_secs(1), 1);
        assert_eq!(l.admit(t0), Some(0));
        assert_eq!(l.admit(t0), None);
        assert_eq!(l.admit(t0 + Duration::from_secs(3600)), Some(1));
    }

    #[test]
    fn a_clock_that_does_not_advance_is_safe() {
        // Instant is monotonic, but an earlier `now` (threads racing to the lock) must
        // neither panic nor open a new interval.
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut l = Limiter::new(Duration::from_secs(10), 1);
        assert_eq!(l.admit(t0), Some(0));
        assert_eq!(l.admit(t0 - Duration::from_secs(1)), None);
    }
}
