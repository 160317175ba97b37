//! Times for people: the CLI and `doctor` show the local time with its zone, from the
//! system's time zone database (DST included). The API, the state and the history keep
//! RFC 3339 UTC, which scripts read.

use std::time::SystemTime;

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// `2026-12-01 23:00:05 CET`, in the system's time zone.
pub fn local(t: SystemTime) -> String {
    match Timestamp::try_from(t) {
        Ok(ts) => format_in(ts, &TimeZone::system()),
        Err(_) => crate::rfc3339(t),
    }
}

/// An RFC 3339 time from the API in local time; text that is not one is shown as it came.
pub fn local_rfc3339(text: &str) -> String {
    match text.parse::<Timestamp>() {
        Ok(ts) => format_in(ts, &TimeZone::system()),
        Err(_) => crate::loggable(text),
    }
}

fn format_in(ts: Timestamp, tz: &TimeZone) -> String {
    ts.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_zone_and_its_offset_in_summer_and_winter() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let winter: Timestamp = "2026-12-01T22:00:05Z".parse().unwrap();
        assert_eq!(format_in(winter, &berlin), "2026-12-01 23:00:05 CET");
        let summer: Timestamp = "2026-07-01T22:00:05Z".parse().unwrap();
        assert_eq!(format_in(summer, &berlin), "2026-07-02 00:00:05 CEST");
        assert_eq!(format_in(winter, &TimeZone::UTC), "2026-12-01 22:00:05 UTC");
        assert_eq!(local_rfc3339("not a time\n"), "not a time");
    }
}
