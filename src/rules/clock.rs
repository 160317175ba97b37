//! The one clock policy, for every rule that goes by the wall clock: the window, the
//! one-shot window, schedules, quiet hours and guest codes (their ends and the lockout).
//!
//! A Pi has no real-time clock and takes the time from NTP: after a power cut it comes
//! back hours behind, and a bad or spoofed NTP answer can move it hours either way. The
//! monotonic clock (`Instant`) never steps, so between two readings the wall clock must
//! move as far as it did; a reading more than [`SLACK`] off is a step. Failing closed:
//! - a step back closes an open window, whose passed end would read as still to come (the
//!   window store acts on each, [`Verdict::back_steps`]); a step forward only ends windows
//!   early, which is safe;
//! - after a step either way the clock is in doubt ([`Verdict::settled`] false) and
//!   schedules, quiet hours and guest codes wait: no schedule opens the door, everyone is
//!   rung, no code is offered or accepted;
//! - confirmed again: a step on a clock not yet confirmed in this boot (no sync signal at
//!   the reading before: fake-hwclock's saved time, then NTP's first answer) is explained
//!   once the sync signal holds. A step on a confirmed clock is not: the clock counts again
//!   once the sync signal holds and it has kept pace with the monotonic clock for
//!   [`SETTLE`].
//!
//! A time seen before this process started (the history's newest record, the state
//! file's last write) counts as the reading before the first: a first reading behind it
//! is a step back. The rule ([`Steps`]) is pure; [`Clock`] is the one shared instance
//! that feeds it the monotonic clock and the sync signal, so every reading is judged once
//! and all rules agree.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

use crate::util::lock;
use crate::util::time::{human, local};

/// How far a reading may be off the monotonic clock's progress before it is a step: a
/// request reads the wall clock before it waits for a store's lock (at most
/// `util::LOCK_WAIT`), so readings arrive a little late; a leap second moves the wall
/// clock by one, and NTP's slews move both clocks alike.
pub const SLACK: Duration = Duration::from_secs(10);
/// How long a clock that stepped while confirmed must keep pace with the monotonic clock
/// (the sync signal holding) before schedules, quiet hours and codes go by it again:
/// longer than the longest poll interval of systemd-timesyncd (2048 s) or of chrony and
/// ntpd by default (1024 s), so a single bad answer is undone by the next good one first.
pub const SETTLE: Duration = Duration::from_secs(45 * 60);

/// The step that put the clock in doubt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    /// The reading minus what the clock should have read: positive is forward.
    by: SignedDuration,
    /// What the clock should have read then.
    at: Timestamp,
    /// The clock was not confirmed before it: the sync signal explains it.
    explained: bool,
    /// When it happened: the clock has kept pace since.
    since: Instant,
}

/// The clock's readings so far. Pure: times and the sync signal come in as arguments.
#[derive(Debug, Default)]
pub struct Steps {
    /// A reading that later ones are measured from, kept until a step (so small errors of
    /// late readings never add up).
    anchor: Option<(Timestamp, Instant)>,
    /// The newest time seen before this process started.
    earlier: Option<Timestamp>,
    /// The sync signal held at the last reading.
    confirmed: bool,
    back_steps: u64,
    doubt: Option<Step>,
}

/// What a reading may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Steps back seen so far: the window closes when this grows.
    pub back_steps: u64,
    /// No step in doubt: schedules, quiet hours and guest codes may go by the clock.
    pub settled: bool,
    /// The sync signal holds.
    pub synced: bool,
}

impl Steps {
    /// Judges `now`, read at `mono` while the sync signal said `synced`.
    pub fn read(&mut self, now: Timestamp, mono: Instant, synced: bool) -> Verdict {
        let (expected, confirmed) = match self.anchor {
            Some((wall, at)) => (Some(wall + mono.saturating_duration_since(at)), self.confirmed),
            None => (self.earlier.filter(|e| now < *e), synced),
        };
        if let Some(at) = expected.filter(|e| now.duration_since(*e).unsigned_abs() > SLACK) {
            let by = now.duration_since(at);
            self.back_steps += u64::from(by.is_negative());
            self.doubt = Some(Step { by, at, explained: !confirmed, since: mono });
            self.anchor = None;
        }
        self.anchor = self.anchor.or(Some((now, mono)));
        if let Some(step) = self.doubt {
            if synced && (step.explained || mono.saturating_duration_since(step.since) >= SETTLE) {
                self.doubt = None;
            }
        }
        self.confirmed = synced;
        Verdict { back_steps: self.back_steps, settled: self.doubt.is_none(), synced }
    }

    /// Why schedules, quiet hours and guest codes wait, if they do, as of `mono`.
    pub fn why(&self, mono: Instant) -> Option<String> {
        let step = self.doubt?;
        // To the minute: a person reads "6h", not "6h 2s".
        let minutes = |d: Duration| human(Duration::from_secs(((d.as_secs() + 30) / 60).max(1) * 60));
        let until = if step.explained || !self.confirmed {
            "a time server confirms it".to_string()
        } else {
            let left = SETTLE.saturating_sub(mono.saturating_duration_since(step.since));
            format!("it is confirmed (in {} if it keeps steady time)", minutes(left))
        };
        let (size, way) =
            (minutes(step.by.unsigned_abs()), if step.by.is_negative() { "back" } else { "forward" });
        Some(format!(
            "the clock jumped {size} {way} at {}: schedules, quiet hours and guest codes wait until {until}",
            local(step.at)
        ))
    }
}

/// The one clock policy every store asks, shared: it reads the monotonic clock and the
/// sync signal beside each reading, and logs each step and each confirmation once.
pub struct Clock {
    steps: Mutex<Steps>,
    /// Whether the clock is confirmed synchronized now (`system/boot.rs`).
    synced: Box<dyn Fn() -> bool + Send + Sync>,
}

impl Clock {
    pub fn new(synced: Box<dyn Fn() -> bool + Send + Sync>) -> Clock {
        Clock { steps: Mutex::new(Steps::default()), synced }
    }

    /// A time seen before this process started; only the first reading is measured by it.
    pub fn saw_earlier(&self, t: Timestamp) {
        let mut steps = lock(&self.steps);
        steps.earlier = steps.earlier.max(Some(t));
    }

    /// Judges the reading `now` (see the module's rules).
    pub fn judge(&self, now: Timestamp) -> Verdict {
        // A file's existence, asked before the lock.
        let synced = (self.synced)();
        let mut steps = lock(&self.steps);
        let mono = Instant::now();
        let before = steps.doubt;
        let verdict = steps.read(now, mono, synced);
        if steps.doubt != before {
            match steps.why(mono) {
                Some(why) => log::warn!("{why}"),
                None => log::info!(
                    "the clock is confirmed again: schedules, quiet hours and guest codes go by it"
                ),
            }
        }
        verdict
    }

    /// Why schedules, quiet hours and guest codes wait, if they do (as of the last reading).
    pub fn why(&self) -> Option<String> {
        lock(&self.steps).why(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// 1_800_000_000 plus `n` seconds.
    fn t(n: u64) -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap() + secs(n)
    }

    /// A confirmed clock that read `t(0)` at `m` and again a minute later.
    fn confirmed(m: Instant) -> Steps {
        let mut s = Steps::default();
        assert!(s.read(t(0), m, true).settled);
        assert!(s.read(t(60), m + secs(60), true).settled);
        s
    }

    #[test]
    fn late_readings_and_small_steps_within_the_slack_change_nothing() {
        let m = Instant::now();
        let mut s = confirmed(m);
        let v = s.read(t(100) - SLACK, m + secs(100), true);
        assert_eq!(v, Verdict { back_steps: 0, settled: true, synced: true });
        assert!(s.read(t(200) + SLACK, m + secs(200), true).settled);
        assert!(s.read(t(300), m + secs(300), true).settled, "measured from the anchor, not added up");
        assert_eq!(s.why(m + secs(300)), None);
    }

    #[test]
    fn a_step_forward_on_a_confirmed_clock_waits_until_it_kept_pace_for_the_settle_time() {
        let m = Instant::now();
        let mut s = confirmed(m);
        let six_hours = secs(6 * 3600);
        let v = s.read(t(120) + six_hours, m + secs(120), true);
        assert_eq!(v, Verdict { back_steps: 0, settled: false, synced: true }, "no window closes");
        let why = s.why(m + secs(120)).unwrap();
        assert!(why.starts_with("the clock jumped 6h forward at ") && why.contains("in 45m if"), "{why}");
        let later = |n: u64| (t(120 + n) + six_hours, m + secs(120 + n));
        let (wall, mono) = later(SETTLE.as_secs() - 1);
        assert!(!s.read(wall, mono, true).settled, "not yet");
        assert!(s.why(mono).unwrap().contains("in 1m if"), "{:?}", s.why(mono));
        let (wall, mono) = later(SETTLE.as_secs());
        assert!(s.read(wall, mono, true).settled, "kept pace for the settle time");
        assert_eq!(s.why(mono), None);
    }

    #[test]
    fn a_step_back_is_counted_once_and_a_further_step_restarts_the_settle_time() {
        let m = Instant::now();
        let mut s = confirmed(m);
        let v = s.read(t(60), m + secs(7260), true); // two hours behind
        assert_eq!(v, Verdict { back_steps: 1, settled: false, synced: true });
        assert!(s.why(m).unwrap().contains("jumped 2h back"), "{:?}", s.why(m));
        assert_eq!(s.read(t(120), m + secs(7320), true).back_steps, 1, "keeping pace is no new step");
        // A glitch forward and back again: each a step, and the settle time counts anew.
        assert_eq!(s.read(t(1000 + 86_400), m + secs(8200), true).back_steps, 1);
        assert_eq!(s.read(t(1001), m + secs(8201), true).back_steps, 2);
        let mut settled = |n: u64| s.read(t(1001 + n), m + secs(8201 + n), true).settled;
        assert!(!settled(SETTLE.as_secs() - 60));
        assert!(settled(SETTLE.as_secs()));
    }

    #[test]
    fn a_step_before_the_clock_was_confirmed_is_explained_by_the_sync_signal() {
        let m = Instant::now();
        let mut s = Steps::default();
        assert!(s.read(t(0), m, false).settled, "an unconfirmed clock is taken as it reads");
        // NTP's first answer moves fake-hwclock's time forward; the flag comes after.
        assert!(!s.read(t(9 * 3600), m + secs(5), false).settled);
        assert!(s.why(m + secs(5)).unwrap().ends_with("until a time server confirms it"));
        assert!(!s.read(t(9 * 3600 + 50), m + secs(55), false).settled, "waits for the signal");
        assert!(s.read(t(9 * 3600 + 60), m + secs(65), true).settled, "confirmed at once");
        // The flag and the step between two readings: explained too.
        let mut s = Steps::default();
        s.read(t(0), m, false);
        assert!(s.read(t(3600), m + secs(1), true).settled);
        // Once confirmed, a step is not explained by the signal that still holds.
        assert!(!s.read(t(9 * 3600), m + secs(2), true).settled);
    }

    #[test]
    fn a_first_reading_behind_a_time_seen_before_the_start_is_a_step_back() {
        let m = Instant::now();
        let saw = || Steps { earlier: Some(t(3600)), ..Steps::default() };
        assert_eq!(saw().read(t(0), m, true), Verdict { back_steps: 1, settled: false, synced: true });
        let mut s = saw();
        assert!(s.read(t(3600) - SLACK, m, true).settled, "within the slack");
        assert!(s.read(t(3600), m + secs(10), true).settled, "only the first reading is measured by it");
        // Not yet confirmed at start (a new boot): the sync signal explains it.
        let mut s = saw();
        assert!(!s.read(t(0), m, false).settled);
        assert!(s.read(t(1), m + secs(1), true).settled);
    }

    #[test]
    fn the_shared_clock_counts_a_step_once_for_every_store() {
        let clock = Clock::new(Box::new(|| true));
        let now = Timestamp::now();
        clock.saw_earlier(now - secs(60));
        clock.saw_earlier(now - secs(120));
        assert!(clock.judge(now).settled);
        let v = clock.judge(now - secs(3600));
        assert_eq!((v.back_steps, v.settled), (1, false));
        assert_eq!(clock.judge(now - secs(3600)).back_steps, 1, "another store's reading: the same step");
        assert!(clock.why().unwrap().contains("1h back"));
    }
}
