//! Time as the stores and the API keep it: Unix seconds in memory, RFC 3339 UTC in whole
//! seconds in files and answers. The one pair of converters each way, so no module
//! rounds or reads a time its own way. And time as people read it: the CLI and `doctor`
//! show the local time with its zone, from the system's time zone database (DST
//! included); scripts read the API's UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole seconds since the epoch (a clock before 1970 reads as 0).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Whole seconds since the epoch, rounded up: for an end, so it is never early.
pub fn unix_secs_ceil(t: SystemTime) -> u64 {
    ceil_secs(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

pub fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A duration in whole seconds, rounded up.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A time as RFC 3339 UTC in whole seconds, as the files, the API and the history write it.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// [`rfc3339`] of Unix seconds.
pub fn rfc3339_unix(secs: u64) -> String {
    rfc3339(from_unix(secs))
}

/// Reads an RFC 3339 time; the error quotes it.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339(s).map_err(|e| format!("bad time {:?}: {e}", crate::util::loggable(s)))
}

/// An RFC 3339 time from the API in local time with its zone (`2026-12-01 23:00:05 CET`);
/// text that is not one is shown as it came.
pub fn local_rfc3339(text: &str) -> String {
    match text.parse::<jiff::Timestamp>() {
        Ok(ts) => format_in(ts, &jiff::tz::TimeZone::system()),
        Err(_) => crate::util::loggable(text),
    }
}

fn format_in(ts: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    ts.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways() {
        let t = from_unix(1_800_000_000);
        assert_eq!(rfc3339(t), "2027-01-15T08:00:00Z");
        assert_eq!(parse_rfc3339("2027-01-15T08:00:00Z"), Ok(t));
        assert_eq!(unix_secs(t + Duration::from_millis(1)), 1_800_000_000);
        assert_eq!(unix_secs_ceil(t + Duration::from_millis(1)), 1_800_000_001);
        assert_eq!(rfc3339_unix(0), "1970-01-01T00:00:00Z");
        assert!(parse_rfc3339("yesterday").unwrap_err().contains("yesterday"));
    }

    #[test]
    fn local_times_show_the_zone_in_summer_and_winter() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let winter: jiff::Timestamp = "2026-12-01T22:00:05Z".parse().unwrap();
        assert_eq!(format_in(winter, &berlin), "2026-12-01 23:00:05 CET");
        let summer: jiff::Timestamp = "2026-07-01T22:00:05Z".parse().unwrap();
        assert_eq!(format_in(summer, &berlin), "2026-07-02 00:00:05 CEST");
        assert_eq!(format_in(winter, &jiff::tz::TimeZone::UTC), "2026-12-01 22:00:05 UTC");
        assert_eq!(local_rfc3339("not a time\n"), "not a time");
    }
}
