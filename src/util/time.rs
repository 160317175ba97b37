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

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A length as people write it: `1h 30m`, `2d 1h`, `45s` (days of 24 hours).
pub fn human(d: Duration) -> String {
    static PRINTER: jiff::fmt::friendly::SpanPrinter = jiff::fmt::friendly::SpanPrinter::new();
    let (days, rest) = (d.as_secs() / DAY.as_secs(), Duration::from_secs(d.as_secs() % DAY.as_secs()));
    match (days, rest + Duration::from_nanos(d.subsec_nanos().into())) {
        (0, rest) => PRINTER.unsigned_duration_to_string(&rest),
        (days, rest) if rest.is_zero() => format!("{days}d"),
        (days, rest) => format!("{days}d {}", PRINTER.unsigned_duration_to_string(&rest)),
    }
}

/// Reads a length as people type it, in any case: a number and its unit, spelled out or
/// not (`90m`, `2h`, `2 hours`, `1.5h`, `1d`, `1w`), several (`1h30m`, `1h 30m`), minutes
/// after hours without a unit (`1h30`), and a bare number as minutes (`90`, which the
/// config refuses before it gets here). Days and weeks are of 24 hours; `None` for
/// anything else (months and years have no fixed length).
pub fn parse_human(text: &str) -> Option<Duration> {
    static PARSER: jiff::fmt::friendly::SpanParser = jiff::fmt::friendly::SpanParser::new();
    let mut text = text.trim().to_ascii_lowercase();
    let head = text.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end();
    let unit = head.rsplit(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    if head.len() < text.len() && (head.is_empty() || unit.starts_with('h')) {
        text.push('m');
    }
    let span = PARSER.parse_span(&text).ok()?;
    if span.is_negative() || span.get_years() != 0 || span.get_months() != 0 {
        return None;
    }
    let days = u32::try_from(i64::from(span.get_weeks()) * 7 + i64::from(span.get_days())).ok()?;
    let time = jiff::SignedDuration::try_from(span.weeks(0).days(0)).ok()?;
    DAY.checked_mul(days)?.checked_add(Duration::try_from(time).ok()?)
}

/// A time as a person reads it: local, to the minute, with the zone (`2026-12-06 14:03
/// CET`), from the system's time zone database (DST included). The one format the CLI
/// and `doctor` show.
pub fn local(t: Timestamp) -> String {
    local_in(t, &jiff::tz::TimeZone::system())
}

/// [`local`] in a given zone: the one the server's schedules follow.
pub fn local_in(t: Timestamp, tz: &jiff::tz::TimeZone) -> String {
    t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string()
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
        ] {
            assert_eq!(parse_human(text), Some(Duration::from_secs(secs)), "{text}");
        }
        for bad in ["1y", "1mo", "1d2", "1.5", "soon", "", "h30", "-5m", "2 hours ago"] {
            assert_eq!(parse_human(bad), None, "{bad}");
        }
    }

    #[test]
    fn local_times_show_the_zone_in_summer_and_winter() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(local_in(at("2026-12-01T22:00:05Z"), &berlin), "2026-12-01 23:00 CET");
        assert_eq!(local_in(at("2026-07-01T22:00:05Z"), &berlin), "2026-07-02 00:00 CEST");
        assert_eq!(local_in(at("2026-12-01T22:00:05Z"), &jiff::tz::TimeZone::UTC), "2026-12-01 22:00 UTC");
    }
}
