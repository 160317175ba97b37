//! The guard against a clock that went back, one for every store that judges times (the
//! window, guest codes). A Pi has no real-time clock: after a power cut, or an NTP step,
//! the time can read earlier than a time already seen, and an end that has passed would
//! read as still to come. Each store keeps the newest time it has seen and asks this guard
//! before it trusts a reading; what it does about a step back is its own rule (the window
//! closes, codes wait). Whether a time saved in an earlier boot may be trusted is
//! `system/boot.rs`'s `Boot::trusts`.

use std::time::Duration;

use jiff::Timestamp;

/// A reading less than this behind the newest time seen is not a step back: request
/// threads read the clock before they take a store's lock, so under load their times
/// arrive slightly out of order, and NTP slews by fractions of a second. It lets an end
/// count at most this much later after a real step back.
pub const BACKWARD_SLACK: Duration = Duration::from_secs(10);

/// The newest time a store has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockGuard {
    latest: Timestamp,
}

impl ClockGuard {
    pub fn new(latest: Timestamp) -> ClockGuard {
        ClockGuard { latest }
    }

    pub fn latest(&self) -> Timestamp {
        self.latest
    }

    /// Raises the newest time seen by what another witness saw (the history's newest
    /// record, a file's last write), without judging a reading.
    pub fn saw(&mut self, t: Timestamp) {
        self.latest = self.latest.max(t);
    }

    /// Whether `now` reads behind the newest time seen (by more than the slack); if not,
    /// `now` counts as seen.
    pub fn is_behind(&mut self, now: Timestamp) -> bool {
        if now + BACKWARD_SLACK < self.latest {
            return true;
        }
        self.saw(now);
        false
    }

    /// Counts from `now` again, once the caller has acted on a step back.
    pub fn restart(&mut self, now: Timestamp) {
        self.latest = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn a_step_back_beyond_the_slack_is_seen_until_restarted() {
        let mut g = ClockGuard::new(at(1_000));
        assert!(!g.is_behind(at(1_000) - BACKWARD_SLACK), "within the slack");
        assert_eq!(g.latest(), at(1_000), "an earlier reading does not lower it");
        assert!(!g.is_behind(at(1_500)));
        assert!(g.is_behind(at(1_000)), "500 s back");
        assert!(g.is_behind(at(1_001)), "still behind until it catches up or restarts");
        g.saw(at(1_200));
        assert_eq!(g.latest(), at(1_500));
        g.restart(at(1_001));
        assert!(!g.is_behind(at(1_002)));
    }
}
