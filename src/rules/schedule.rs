//! Schedules: recurring windows in local time ("Mon–Fri 08:00–18:00, deliveries"), the
//! rules, pure: parsing what the API and the CLI send, and whether one is open at an
//! instant in a given time zone. The store (`store/schedules.rs`) keeps them on disk and
//! decides whether the clock may be trusted at all.
//!
//! A schedule is open from its start to its end on each of its days, as instants: the
//! local times are turned into instants with the usual ("compatible") rule, so a time
//! that does not exist on the spring-forward night (02:30 in New York or Berlin) means
//! the instant an hour later (03:30), and a time that happens twice on the fall-back
//! night (01:30 in New York) means its first occurrence. A range whose end is not after
//! its start runs past midnight into the next day; `24:00` ends at midnight.

use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::model::api::{NewScheduleRequest, ScheduleBody};

use crate::config::entrances::Entrance;
use crate::config::values::MINUTES_PER_DAY;
pub use crate::config::values::{format_clock, parse_clock};
use crate::rules::codes::check_label;

/// At most this many schedules: a household has a few (deliveries, cleaner, weekend),
/// and each is checked on every call.
pub const MAX_SCHEDULES: usize = 20;
/// Monday first; a day is written with its first three letters.
const DAY_NAMES: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// Days of the week, bit 0 Monday.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Days(u8);

impl Days {
    pub const ALL: Days = Days(0x7f);

    /// `mon-fri`, `sat,sun`, `mon,wed-fri`, `daily`, `weekdays`, `weekends`;
    /// case-insensitive; English three-letter names (full names accepted too).
    pub fn parse(s: &str) -> Result<Days, String> {
        let bad =
            || format!("days {:?}: use day names like mon-fri, sat,sun or daily", crate::util::loggable(s));
        let lower = s.trim().to_ascii_lowercase();
        let s = match lower.trim_end_matches('s') {
            "weekday" => "mon-fri",
            "weekend" => "sat,sun",
            _ => &lower,
        };
        if matches!(s, "daily" | "every day" | "all") {
            return Ok(Days::ALL);
        }
        let day = |name: &str| {
            let name = name.trim();
            DAY_NAMES.iter().position(|d| name.len() >= 3 && d.starts_with(name)).ok_or_else(bad)
        };
        let mut bits = 0u8;
        for part in s.split(',') {
            match part.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (day(from)?, day(to)?);
                    // mon-fri, or across the weekend: fri-mon.
                    for d in from..=from + (to + 7 - from) % 7 {
                        bits |= 1 << (d % 7);
                    }
                }
                None => bits |= 1 << day(part)?,
            }
        }
        Ok(Days(bits))
    }

    /// Monday is 0.
    pub fn contains(self, monday_zero: u8) -> bool {
        self.0 & (1 << monday_zero) != 0
    }
}

/// The canonical form: `daily`, or names with runs of three or more as ranges.
impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if *self == Days::ALL {
            return f.write_str("daily");
        }
        let name = |d: u8| &DAY_NAMES[usize::from(d)][..3];
        let mut parts = Vec::new();
        let mut d = 0;
        while d < 7 {
            // The run of days from `start`, up to the first day not in it.
            let start = d;
            while d < 7 && self.contains(d) {
                d += 1;
            }
            match d - start {
                0 => {}
                1 => parts.push(name(start).to_string()),
                2 => parts.extend([name(start).to_string(), name(start + 1).to_string()]),
                _ => parts.push(format!("{}-{}", name(start), name(d - 1))),
            }
            d += 1;
        }
        f.write_str(&parts.join(","))
    }
}

impl fmt::Debug for Days {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Days({self})")
    }
}

/// One recurring window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: String,
    pub label: String,
    pub days: Days,
    /// Minutes after local midnight.
    pub start: u16,
    /// Minutes after local midnight, up to 24:00; not after `start` means the next day.
    pub end: u16,
    pub paused: bool,
    /// Only calls from this entrance (`intercoms[].name`); `None`: every entrance.
    pub entrance: Option<String>,
}

/// What the API sends to make one.
#[derive(Debug, PartialEq, Eq)]
pub struct NewSchedule {
    pub label: String,
    pub days: Days,
    pub start: u16,
    pub end: u16,
    pub entrance: Option<String>,
}

/// A new schedule from the API's request: every field present and within its bounds,
/// and an `entrance`, if given, one of the named `intercoms`.
pub fn from_request(r: &NewScheduleRequest, intercoms: &[Entrance]) -> Result<NewSchedule, String> {
    let field = |v: &Option<String>, name: &str| v.clone().ok_or(format!("{name} is missing"));
    let new = NewSchedule {
        label: check_label(&field(&r.label, "label")?)?,
        days: Days::parse(&field(&r.days, "days")?)?,
        start: parse_clock(&field(&r.from, "from")?, false)?,
        end: parse_clock(&field(&r.to, "to")?, true)?,
        entrance: r.entrance.clone(),
    };
    let names: Vec<&str> = intercoms.iter().filter_map(|i| i.name.as_deref()).collect();
    if let Some(e) = new.entrance.as_deref().filter(|e| !names.contains(e)) {
        return Err(format!(
            "entrance {:?} is not one of the intercoms' names ({})",
            crate::util::loggable(e),
            if names.is_empty() { "none configured".to_string() } else { names.join(", ") }
        ));
    }
    if new.start == new.end {
        return Err("from and to are the same time: the schedule would be empty or never end".into());
    }
    Ok(new)
}

impl Schedule {
    /// The API's view; `open_until` is set while it is open.
    pub fn body(&self, open_until: Option<Timestamp>) -> ScheduleBody {
        ScheduleBody {
            id: self.id.clone(),
            label: self.label.clone(),
            days: self.days.to_string(),
            from: format_clock(self.start),
            to: format_clock(self.end),
            paused: self.paused,
            open: open_until.is_some(),
            open_until,
            entrance: self.entrance.clone(),
        }
    }

    /// When this schedule, open at `now`, closes; `None` if it is not open (or paused).
    pub fn open_until(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        if self.paused {
            return None;
        }
        let today = now.to_zoned(tz.clone()).date();
        // An occurrence that began yesterday may run past midnight into today.
        for date in [today.yesterday().ok()?, today] {
            if !self.days.contains(date.weekday().to_monday_zero_offset() as u8) {
                continue;
            }
            let end_date = if self.end > self.start { date } else { date.tomorrow().ok()? };
            let start = instant(date, self.start, tz)?;
            let end = instant(end_date, self.end, tz)?;
            if start <= now && now < end {
                return Some(end);
            }
        }
        None
    }

    /// Whether it lets in a call from `entrance` (its name; `None` for the single form).
    pub fn applies_to(&self, entrance: Option<&str>) -> bool {
        self.entrance.is_none() || self.entrance.as_deref() == entrance
    }
}

/// The instant of local time `minutes` after midnight on `date`: a time in a gap moves
/// forward by the gap, a time that happens twice is its first occurrence.
fn instant(date: Date, minutes: u16, tz: &TimeZone) -> Option<Timestamp> {
    let (date, minutes) =
        if minutes >= MINUTES_PER_DAY { (date.tomorrow().ok()?, 0) } else { (date, minutes) };
    let time = Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).ok()?;
    tz.to_ambiguous_timestamp(DateTime::from_parts(date, time)).compatible().ok()
}

/// The first of `schedules` open at `now` (the one that stays open longest), if any.
pub fn open_at<'a>(
    schedules: &'a [Schedule],
    now: Timestamp,
    tz: &TimeZone,
    applies: impl Fn(&Schedule) -> bool,
) -> Option<(&'a Schedule, Timestamp)> {
    schedules
        .iter()
        .filter(|s| applies(s))
        .filter_map(|s| s.open_until(now, tz).map(|until| (s, until)))
        .max_by_key(|(_, until)| *until)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(days: &str, from: &str, to: &str) -> Schedule {
        Schedule {
            id: "s1".into(),
            label: "test".into(),
            days: Days::parse(days).unwrap(),
            start: parse_clock(from, false).unwrap(),
            end: parse_clock(to, true).unwrap(),
            paused: false,
            entrance: None,
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// New York's rules as a POSIX string: no tzdata needed on the test machine.
    fn new_york() -> TimeZone {
        TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap()
    }

    #[test]
    fn days_parse_and_print() {
        for (given, canonical) in [
            ("mon-fri", "mon-fri"),
            ("Sat,Sun", "sat,sun"),
            ("daily", "daily"),
            ("mon-sun", "daily"),
            ("monday,wednesday", "mon,wed"),
            ("fri-mon", "mon,fri-sun"),
            ("tue-thu,sat", "tue-thu,sat"),
            ("Weekdays", "mon-fri"),
            ("weekends", "sat,sun"),
        ] {
            assert_eq!(Days::parse(given).unwrap().to_string(), canonical, "{given}");
        }
        for bad in ["", "mo", "funday", "mon-", "mon,,tue", "1-5"] {
            assert!(Days::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clocks_parse_with_bounds() {
        assert_eq!(parse_clock("08:00", false), Ok(480));
        assert_eq!(parse_clock("8:05", false), Ok(485));
        assert_eq!(parse_clock("23:59", false), Ok(1439));
        assert_eq!(parse_clock("24:00", true), Ok(1440));
        for bad in ["24:00", "25:00", "12:60", "12", "12:5", "-1:00", "ab:cd", "12:00:00", ""] {
            assert!(parse_clock(bad, false).is_err(), "{bad:?}");
        }
    }

    fn parse_new(body: &[u8]) -> Result<NewSchedule, String> {
        from_request(&crate::model::api::read_request(body)?, &[])
    }

    #[test]
    fn new_schedules_are_checked() {
        let ok = parse_new(br#"{"label": "deliveries", "days": "mon-fri", "from": "08:00", "to": "18:00"}"#);
        assert_eq!(ok.unwrap().start, 480);
        for bad in [
            r#"{"days": "mon-fri", "from": "08:00", "to": "18:00"}"#,
            r#"{"label": "x", "days": "mon-fri", "from": "08:00", "to": "08:00"}"#,
            r#"{"label": "x", "days": "mon-fri", "from": "00:00", "to": "24:00", "x": 1}"#,
            r#"{"label": "x", "days": 5, "from": "08:00", "to": "18:00"}"#,
            r#"{"label": "", "days": "mon", "from": "08:00", "to": "18:00"}"#,
            "[]",
        ] {
            assert!(parse_new(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse_new(br#"{"label": "x", "days": "daily", "from": "00:00", "to": "24:00"}"#).is_ok());
    }

    #[test]
    fn open_on_its_days_between_its_times() {
        let tz = TimeZone::UTC;
        let s = sched("mon-fri", "08:00", "18:00");
        // 2026-12-01 is a Tuesday.
        assert_eq!(s.open_until(at("2026-12-01T08:00:00Z"), &tz), Some(at("2026-12-01T18:00:00Z")));
        assert!(s.open_until(at("2026-12-01T07:59:59Z"), &tz).is_none());
        assert!(s.open_until(at("2026-12-01T18:00:00Z"), &tz).is_none());
        assert!(s.open_until(at("2026-12-05T12:00:00Z"), &tz).is_none(), "Saturday");
        let paused = Schedule { paused: true, ..s };
        assert!(paused.open_until(at("2026-12-01T12:00:00Z"), &tz).is_none());
    }

    #[test]
    fn a_range_past_midnight_belongs_to_the_day_it_starts() {
        let tz = TimeZone::UTC;
        let s = sched("fri", "22:00", "02:00");
        // 2026-12-04 is a Friday.
        assert_eq!(s.open_until(at("2026-12-05T01:00:00Z"), &tz), Some(at("2026-12-05T02:00:00Z")));
        assert!(s.open_until(at("2026-12-04T01:00:00Z"), &tz).is_none(), "Friday early: Thursday's");
        let whole = sched("sat", "00:00", "24:00");
        assert_eq!(whole.open_until(at("2026-12-05T23:59:00Z"), &tz), Some(at("2026-12-06T00:00:00Z")));
    }

    #[test]
    fn local_time_follows_the_zone() {
        let tz = new_york();
        let s = sched("daily", "08:00", "18:00");
        // 08:00 in New York in December is 13:00 UTC; in July 12:00 UTC.
        assert!(s.open_until(at("2026-12-01T12:59:00Z"), &tz).is_none());
        assert_eq!(s.open_until(at("2026-12-01T13:00:00Z"), &tz), Some(at("2026-12-01T23:00:00Z")));
        assert_eq!(s.open_until(at("2026-07-01T12:00:00Z"), &tz), Some(at("2026-07-01T22:00:00Z")));
    }

    /// 2026-03-08, New York: 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:30 never happens.
    #[test]
    fn the_0230_that_does_not_exist() {
        let tz = new_york();
        let starts = sched("sun", "02:30", "05:00");
        // 02:30 means 03:30 EDT = 07:30 UTC: not open at 03:00 EDT, open at 03:30 EDT.
        assert!(starts.open_until(at("2026-03-08T07:00:00Z"), &tz).is_none());
        assert_eq!(starts.open_until(at("2026-03-08T07:30:00Z"), &tz), Some(at("2026-03-08T09:00:00Z")));
        let ends = sched("sun", "01:00", "02:30");
        // From 01:00 EST (06:00 UTC) to 03:30 EDT (07:30 UTC): the 90 minutes asked for.
        assert_eq!(ends.open_until(at("2026-03-08T06:00:00Z"), &tz), Some(at("2026-03-08T07:30:00Z")));
        assert!(ends.open_until(at("2026-03-08T07:30:00Z"), &tz).is_none());
        // The next Sunday is an ordinary day again.
        assert_eq!(starts.open_until(at("2026-03-15T06:30:00Z"), &tz), Some(at("2026-03-15T09:00:00Z")));
    }

    /// 2026-11-01, New York: 02:00 EDT falls back to 01:00 EST; 01:30 happens at 05:30
    /// and again at 06:30 UTC.
    #[test]
    fn the_0130_that_happens_twice() {
        let tz = new_york();
        let ends = sched("sun", "00:00", "01:30");
        // Ends at the first 01:30 (EDT, 05:30 UTC) and does not open again at the second.
        assert_eq!(ends.open_until(at("2026-11-01T05:00:00Z"), &tz), Some(at("2026-11-01T05:30:00Z")));
        assert!(ends.open_until(at("2026-11-01T05:30:00Z"), &tz).is_none());
        assert!(ends.open_until(at("2026-11-01T06:15:00Z"), &tz).is_none(), "the second 01:15");
        let starts = sched("sun", "01:30", "03:00");
        // Opens at the first 01:30 and stays open through the repeated hour.
        assert!(starts.open_until(at("2026-11-01T05:29:00Z"), &tz).is_none());
        assert_eq!(starts.open_until(at("2026-11-01T05:30:00Z"), &tz), Some(at("2026-11-01T08:00:00Z")));
        assert!(starts.open_until(at("2026-11-01T06:10:00Z"), &tz).is_some(), "the second 01:10");
    }

    /// The same with the system's real zoneinfo (tzdata, installed by cross/deps.sh):
    /// Berlin springs forward on 2026-03-29 at 02:00 CET (01:00 UTC) and falls back on
    /// 2026-10-25 at 03:00 CEST (01:00 UTC).
    #[test]
    fn berlin_from_the_system_zoneinfo() {
        let tz = jiff::tz::db().get("Europe/Berlin").expect("tzdata (cross/deps.sh installs it)");
        let gap = sched("sun", "02:30", "04:00");
        // 02:30 does not exist: 03:30 CEST = 01:30 UTC.
        assert!(gap.open_until(at("2026-03-29T01:29:00Z"), &tz).is_none());
        assert_eq!(gap.open_until(at("2026-03-29T01:30:00Z"), &tz), Some(at("2026-03-29T02:00:00Z")));
        let fold = sched("sun", "02:30", "05:00");
        // 02:30 happens at 00:30 UTC (CEST) and 01:30 UTC (CET): it opens at the first.
        assert!(fold.open_until(at("2026-10-25T00:29:00Z"), &tz).is_none());
        assert_eq!(fold.open_until(at("2026-10-25T00:30:00Z"), &tz), Some(at("2026-10-25T04:00:00Z")));
    }

    #[test]
    fn the_longest_open_schedule_wins() {
        let tz = TimeZone::UTC;
        let list = [sched("daily", "08:00", "10:00"), sched("daily", "09:00", "12:00")];
        let (s, until) = open_at(&list, at("2026-12-01T09:30:00Z"), &tz, |_| true).unwrap();
        assert_eq!((s.start, until), (540, at("2026-12-01T12:00:00Z")));
        assert!(open_at(&list, at("2026-12-01T13:00:00Z"), &tz, |_| true).is_none());
        let gate = Schedule { entrance: Some("gate".into()), ..sched("daily", "08:00", "10:00") };
        assert!(gate.applies_to(Some("gate")) && !gate.applies_to(Some("door")) && !gate.applies_to(None));
        assert!(sched("daily", "08:00", "10:00").applies_to(Some("door")));
    }
}
