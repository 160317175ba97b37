//! The `Retry-After` header (RFC 9110 §10.2.3): delay-seconds or an HTTP date, in any of
//! the three date forms a recipient must accept. Pure, so it is easy to test and fuzz.

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::Timestamp;

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// How long to wait from `now`; a date in the past means no wait. `None` when the value
/// is neither form.
pub fn parse(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // A huge number is still "a long time", not an error.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = http_date(value)?;
    Some(crate::util::time::between(now, at))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate), `Sunday, 06-Nov-94 08:49:37 GMT`
/// (RFC 850) or `Sun Nov  6 08:49:37 1994` (asctime).
fn http_date(s: &str) -> Option<Timestamp> {
    let cleaned = s.replace([',', '-'], " ");
    let t: Vec<&str> = cleaned.split_whitespace().collect();
    let month = |m: &str| MONTHS.iter().position(|x| *x == m).map(|i| i + 1);
    let (day, mon, year, time) = match t.as_slice() {
        [_, mon, day, time, year] => (*day, month(mon)?, *year, *time),
        [_, day, mon, year, time, "GMT"] => (*day, month(mon)?, *year, *time),
        _ => return None,
    };
    let year: i16 = match (year.len(), year.parse::<i16>().ok()?) {
        // RFC 850's two-digit year: RFC 9110 says the nearest century that is not more
        // than 50 years ahead; for a Retry-After this is always 20xx.
        (2, y) => 2000 + y,
        (4, y) => y,
        _ => return None,
    };
    let day: i8 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let (h, rest) = time.split_once(':')?;
    let (m, sec) = rest.split_once(':')?;
    let two = |x: &str| if x.len() == 2 { x.parse::<i8>().ok() } else { None };
    let (h, m, sec) = (two(h)?, two(m)?, two(sec)?);
    let at = DateTime::new(year, mon as i8, day, h, m, sec, 0).ok()?;
    jiff::tz::TimeZone::UTC.to_timestamp(at).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn seconds() {
        let now = Timestamp::now();
        assert_eq!(parse("30", now), Some(Duration::from_secs(30)));
        assert_eq!(parse(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
        for bad in ["", "-5", "1.5", "30s", "soon"] {
            assert_eq!(parse(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn the_three_date_forms() {
        let now = at("1994-11-06T08:49:00Z");
        for form in
            ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"]
        {
            let want = if form.contains("-94") { None } else { Some(Duration::from_secs(37)) };
            // RFC 850's "94" is 2094 by our rule: far ahead, which the caller caps.
            match want {
                Some(w) => assert_eq!(parse(form, now), Some(w), "{form}"),
                None => assert!(parse(form, now).unwrap() > Duration::from_secs(86400 * 365 * 99), "{form}"),
            }
        }
        assert_eq!(parse("Sun, 06 Nov 1994 08:48:00 GMT", now), Some(Duration::ZERO), "past: no wait");
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994",
            "Sun, 30 Feb 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse(bad, now), None, "{bad}");
        }
    }
}
