//! Guest codes and a wall clock that steps: pure (times come in as arguments). The
//! window keeps `clock.rs`'s plain guard (a step back closes it); codes use this one,
//! with the same slack, which also bounds how long a step back pauses them.
//!
//! A code must never work because the clock went back (a Pi has no real-time clock): a
//! code that ended would read as valid again. So codes pause while the clock reads well
//! behind the latest time it read before. But a clock that glitched *forward* (+30 days
//! for a few seconds, then back) must not pause them for 30 days: the pause lasts at
//! most as long as the clock read ahead, measured on the monotonic clock, and never
//! longer than the step back. Then the clock is taken as it reads.
//!
//! - A step forward is a reading later than the last one plus the monotonic time since
//!   (plus [`STEP_SLACK`]); from then on the clock "reads ahead".
//! - A reading more than [`BACKWARD_SLACK`] behind the latest pauses codes for
//!   `min(time read ahead, size of the step back)`. A clock that was right all along and
//!   then steps back is paused until it has caught up (its "time ahead" is the whole
//!   run), as before; a short glitch forward costs only its own length.
//! - A reading from before this process (the history's newest record, at start) has no
//!   monotonic time: a clock behind it waits the whole step, until it has caught up.

use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::rules::clock::BACKWARD_SLACK;
use crate::util::time::{between, human};

/// How far a reading may run ahead of the last one plus the monotonic time since, before
/// it counts as a step forward: readings are whole seconds, and NTP slews are slow.
pub const STEP_SLACK: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct ClockSteps {
    /// The latest reading.
    latest: Timestamp,
    /// Since when the clock has read at `latest`'s level, if known (in this process).
    ahead_since: Option<Instant>,
    /// The last reading and when it was taken.
    last: (Timestamp, Instant),
    /// While the clock reads behind: until when codes pause.
    paused_until: Option<Instant>,
}

impl ClockSteps {
    pub fn new(now: Timestamp, mono: Instant) -> ClockSteps {
        ClockSteps { latest: now, ahead_since: Some(mono), last: (now, mono), paused_until: None }
    }

    /// A time the clock read before this process started (the newest history record).
    pub fn note_earlier_reading(&mut self, t: Timestamp) {
        if t > self.latest {
            self.latest = t;
            self.ahead_since = None;
        }
    }

    /// Whether codes may be judged by the reading `now` taken at `mono`.
    pub fn admit(&mut self, now: Timestamp, mono: Instant) -> bool {
        let (last_wall, last_mono) = self.last;
        let expected = last_wall + Duration::from_secs(mono.saturating_duration_since(last_mono).as_secs());
        self.last = (now, mono);
        if now + BACKWARD_SLACK < self.latest {
            let (latest, ahead_since) = (self.latest, self.ahead_since);
            let until = *self.paused_until.get_or_insert_with(|| {
                let step = Duration::from_secs(between(now, latest).as_secs());
                let ahead = ahead_since.map_or(step, |s| mono.saturating_duration_since(s));
                log::warn!(
                    "the clock stepped back {}: guest codes pause for {} (as long as it read ahead, at most the step)",
                    human(step),
                    human(ahead.min(step))
                );
                mono + ahead.min(step)
            });
            if mono < until {
                return false;
            }
            log::warn!("guest codes work again: the clock is taken as it reads now");
            self.latest = now;
            self.ahead_since = Some(mono);
            self.paused_until = None;
            return true;
        }
        self.paused_until = None;
        if now > self.latest && now > expected + STEP_SLACK {
            self.ahead_since = Some(mono);
        }
        self.latest = self.latest.max(now);
        true
    }

    /// Why codes pause now, if they do (as of the last reading).
    pub fn paused(&self, mono: Instant) -> Option<String> {
        let until = self.paused_until.filter(|u| mono < *u)?;
        let left = Duration::from_secs(until.saturating_duration_since(mono).as_secs() + 1);
        Some(format!(
            "the clock stepped back {}: guest codes pause for at most {} more (or until the clock catches up)",
            human(Duration::from_secs(between(self.last.0, self.latest).as_secs())),
            human(left)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// 1_800_000_000 plus `n` seconds.
    fn t(n: u64) -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap() + secs(n)
    }

    #[test]
    fn a_glitch_forward_pauses_codes_only_as_long_as_it_lasted() {
        let m = Instant::now();
        let mut c = ClockSteps::new(t(0), m);
        assert!(c.admit(t(60), m + secs(60)));
        assert!(c.admit(t(60 + 30 * DAY), m + secs(61)), "a step forward is believed");
        assert!(c.admit(t(65 + 30 * DAY), m + secs(66)));
        // Back after 5 s ahead: paused for those 5 s, not 30 days.
        assert!(!c.admit(t(67), m + secs(67)));
        assert!(
            c.paused(m + secs(67)).is_some_and(|p| p.contains("stepped back")),
            "{:?}",
            c.paused(m + secs(67))
        );
        assert!(!c.admit(t(70), m + secs(70)));
        assert!(c.admit(t(73), m + secs(73)), "resumed after the glitch's own length");
        assert_eq!(c.paused(m + secs(73)), None);
        assert!(c.admit(t(80), m + secs(80)), "and the clock is taken as it reads");
    }

    #[test]
    fn a_right_clock_that_steps_back_pauses_until_it_has_caught_up() {
        let m = Instant::now();
        let mut c = ClockSteps::new(t(0), m);
        assert!(c.admit(t(3 * DAY), m + secs(3 * DAY)));
        let back = t(3 * DAY - 7200); // two hours back after three days
        assert!(!c.admit(back, m + secs(3 * DAY + 1)));
        assert!(!c.admit(back + secs(7000), m + secs(3 * DAY + 7001)));
        assert!(c.admit(back + secs(7200), m + secs(3 * DAY + 7201)), "caught up");
    }

    #[test]
    fn a_reading_from_before_the_start_waits_the_whole_step() {
        let m = Instant::now();
        let mut c = ClockSteps::new(t(0), m);
        c.note_earlier_reading(t(3600));
        assert!(!c.admit(t(1), m + secs(1)));
        assert!(!c.admit(t(3000), m + secs(3000)));
        assert!(c.admit(t(3595), m + secs(3595)), "within the slack of the record's time");
    }

    #[test]
    fn small_steps_and_slews_change_nothing() {
        let m = Instant::now();
        let mut c = ClockSteps::new(t(0), m);
        assert!(c.admit(t(100), m + secs(100)));
        assert!(c.admit(t(100 - BACKWARD_SLACK.as_secs()), m + secs(101)));
        assert_eq!(c.paused(m + secs(101)), None);
    }
}
