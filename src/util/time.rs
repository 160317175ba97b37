//! Time, one way: a point in time is a `jiff::Timestamp` everywhere (memory, files, API
//! bodies through jiff's serde, which writes RFC 3339), a length is a `std::time::Duration`,
//! and the monotonic clock is `std::time::Instant`. What is stored or served is whole
//! seconds ("2027-01-15T08:00:00Z"): a time is rounded where it is made ([`floor`], or
//! [`ceil`] for an end, so it is never early). People read times through [`local`] and
//! lengths through [`human`]; scripts read the API's UTC.

use std::time::Duration;

use jiff::Timestamp;

/// `t` in whole seconds, rounded down: how a time is stored and served (before 1970,
/// which no clock here reads, toward the epoch).
pub fn floor(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// `t` in whole seconds, rounded up: for an end, so it is never early.
pub fn ceil(t: Timestamp) -> Timestamp {
    floor(t) + Duration::from_secs((t.subsec_nanosecond() > 0).into())
}

/// How long from `from` to `to`; zero if `to` is not later.
pub fn between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or_default()
}

/// A duration in whole seconds, rounded up.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A length as people write it: `1h 30m`, `2d 1h`, `45s` (days of 24 hours).
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [(s / 86_400, "d"), (s / 3600 % 24, "h"), (s / 60 % 60, "m"), (s % 60, "s")];
    let mut out: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, u)| format!("{n}{u}")).collect();
    if d.subsec_millis() > 0 || out.is_empty() {
        out.push(if d.subsec_millis() > 0 { format!("{}ms", d.subsec_millis()) } else { "0s".into() });
    }
    out.join(" ")
}

/// The units [`parse_human`] reads, in seconds (days and weeks of 24 hours).
const UNITS: [(&[&str], u64); 5] = [
    (&["w", "wk", "wks", "week", "weeks"], 7 * 86_400),
    (&["d", "day", "days"], 86_400),
    (&["h", "hr", "hrs", "hour", "hours"], 3600),
    (&["m", "min", "mins", "minute", "minutes"], 60),
    (&["s", "sec", "secs", "second", "seconds"], 1),
];

/// Reads a length as people type it, in any case: a number and its unit, spelled out or
/// not (`90m`, `2h`, `2 hours`, `1.5h`, `1d`, `1w`), several (`1h30m`, `1h 30m`), minutes
/// after hours without a unit (`1h30`), and a bare number as minutes (`90`, which the
/// config refuses before it gets here). Days and weeks are of 24 hours; `None` for
/// anything else (months and years have no fixed length).
pub fn parse_human(text: &str) -> Option<Duration> {
    let mut text = text.trim().to_ascii_lowercase();
    let head = text.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end();
    let unit = head.rsplit(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    if head.len() < text.len() && (head.is_empty() || unit.starts_with('h')) {
        text.push('m');
    }
    // Numbers, each with a unit, written by hand: jiff's parser of the same forms costs
    // 19 KiB of binary. Checked arithmetic: too large is `None`, never a panic.
    let mut rest = text.as_str();
    let (mut total, mut smaller_than) = ((!rest.is_empty()).then_some(Duration::ZERO)?, 0);
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (whole, fraction) = rest[..digits].split_once('.').unwrap_or((&rest[..digits], ""));
        let scale = 10u128.checked_pow(fraction.len() as u32)?;
        let fraction = if fraction.is_empty() { 0 } else { fraction.parse::<u128>().ok()? };
        let n = u128::from(whole.parse::<u64>().ok()?).checked_mul(scale)?.checked_add(fraction)?;
        rest = rest[digits..].trim_start();
        let letters = rest.find(|c: char| !c.is_ascii_lowercase()).unwrap_or(rest.len());
        // Each unit once, largest first ("1h 2h" and "30m 1h" are typos, not 3h or 90m).
        let i = UNITS.iter().position(|(names, _)| names.contains(&&rest[..letters]))?;
        let unit = (i >= smaller_than).then_some(UNITS[i].1)?;
        smaller_than = i + 1;
        let nanos = u64::try_from(n.checked_mul(u128::from(unit) * 1_000_000_000)? / scale).ok()?;
        total = total.checked_add(Duration::from_nanos(nanos))?;
        rest = rest[letters..].trim_start_matches([' ', ',']);
    }
    Some(total)
}

/// A time as a person reads it: local, to the minute, with the zone (`2026-12-06 14:03
/// CET`), from the system's time zone database (DST included). The one format the CLI
/// and `doctor` show.
pub fn local(t: Timestamp) -> String {
    local_in(t, &jiff::tz::TimeZone::system())
}

/// [`local`] in a given zone: the one the server's schedules follow.
pub fn local_in(t: Timestamp, tz: &jiff::tz::TimeZone) -> String {
    format!("{} {}", minute(tz.to_datetime(t)), tz.to_offset_info(t).abbreviation())
}

/// A wall-clock time to the minute: `2026-12-06 14:03` (jiff's strftime would cost 24
/// KiB of binary for this and `%Z`).
fn minute(d: jiff::civil::DateTime) -> String {
    format!("{:04}-{:02}-{:02} {:02}:{:02}", d.year(), d.month(), d.day(), d.hour(), d.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn rounds_to_whole_seconds_each_way() {
        let t = at("2027-01-15T08:00:00Z");
        let later = t + Duration::from_millis(1);
        assert_eq!(floor(later).to_string(), "2027-01-15T08:00:00Z");
        assert_eq!(ceil(later).to_string(), "2027-01-15T08:00:01Z");
        assert_eq!(ceil(t), t);
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2027-01-15T08:00:00Z\"");
        assert_eq!(between(t, later), Duration::from_millis(1));
        assert_eq!(between(later, t), Duration::ZERO);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn lengths_read_and_print_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(human(Duration::from_secs(43_200)), "12h");
        assert_eq!(human(Duration::from_secs(90_061)), "1d 1h 1m 1s");
        assert_eq!(human(Duration::from_millis(999)), "999ms");
        for (text, secs) in [
            ("90m", 5400),
            ("90", 5400),
            ("2H", 7200),
            ("1h30", 5400),
            ("1H30M", 5400),
            ("1 h 30", 5400),
            ("1.5h", 5400),
            ("2 hours", 7200),
            ("1 hour 30 minutes", 5400),
            ("1d", 86_400),
            ("1w", 604_800),
            ("1 hour, 30 minutes", 5400),
        ] {
            assert_eq!(parse_human(text), Some(Duration::from_secs(secs)), "{text}");
        }
        assert_eq!(human(Duration::ZERO), "0s");
        for bad in [
            "1y",
            "1mo",
            "1d2",
            "1.5",
            "soon",
            "",
            "h30",
            "-5m",
            "2 hours ago",
            "1h 2h",
            "30m 1h",
            ".5h",
            "1.5.5h",
            "99999999999999999999w",
            "1.000000000000000000000000000000000000001h",
        ] {
            assert_eq!(parse_human(bad), None, "{bad}");
        }
    }

    #[test]
    fn local_times_show_the_zone_in_summer_and_winter() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(local_in(at("2026-12-01T22:00:05Z"), &berlin), "2026-12-01 23:00 CET");
        assert_eq!(local_in(at("2026-07-01T22:00:05Z"), &berlin), "2026-07-02 00:00 CEST");
        assert_eq!(local_in(at("2026-12-01T22:00:05Z"), &jiff::tz::TimeZone::UTC), "2026-12-01 22:00 UTC");
        // The wall clock to the second, as the schedules' list shows it.
        let d = berlin.to_datetime(floor(at("2026-12-01T22:00:05.5Z")));
        assert_eq!((d.to_string(), minute(d)), ("2026-12-01T23:00:05".into(), "2026-12-01 23:00".into()));
    }
}
