//! The local time zone, for schedules: the system's, read once at start. `TZ` (an IANA
//! name such as `Europe/Berlin`, a POSIX string, or `:path`) first, then
//! `/etc/localtime`, both through `jiff`; then OpenWrt's `/etc/TZ`, which holds a POSIX
//! string (`CET-1CEST,M3.5.0,M10.5.0/3`) because OpenWrt ships no zoneinfo. Nothing of
//! these means UTC, said loudly: schedules then run in UTC.

use std::fs;

use jiff::tz::TimeZone;

/// OpenWrt keeps the zone as a POSIX TZ string here (`uci set system.@system[0].timezone`).
pub const OPENWRT_TZ_FILE: &str = "/etc/TZ";
/// A POSIX TZ string is a few dozen bytes; anything much longer is not one.
const MAX_POSIX_TZ_BYTES: usize = 256;

/// The zone and how it is named to the user (the page, `check-config`, the log).
#[derive(Debug, Clone)]
pub struct Local {
    pub tz: TimeZone,
    pub name: String,
}

impl Local {
    pub fn utc() -> Local {
        Local { tz: TimeZone::UTC, name: "UTC".into() }
    }
}

/// The system's zone; never fails (UTC, with a warning, if none can be found).
pub fn detect() -> Local {
    let system_error = match TimeZone::try_system() {
        Ok(tz) => {
            let name = tz
                .iana_name()
                .map(str::to_string)
                .or_else(|| std::env::var("TZ").ok().filter(|v| !v.is_empty()))
                .unwrap_or_else(|| "/etc/localtime".into());
            return Local { tz, name };
        }
        Err(e) => e,
    };
    match fs::read_to_string(OPENWRT_TZ_FILE) {
        Ok(text) => match posix(&text) {
            Ok(local) => return local,
            Err(e) => log::warn!("{OPENWRT_TZ_FILE}: {e}"),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("cannot read {OPENWRT_TZ_FILE}: {e}"),
    }
    log::warn!("no system time zone ({system_error}; no usable {OPENWRT_TZ_FILE}): schedules run in UTC");
    Local::utc()
}

/// A POSIX TZ string such as OpenWrt's `/etc/TZ`.
pub fn posix(text: &str) -> Result<Local, String> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_POSIX_TZ_BYTES {
        return Err("not a POSIX time zone string".into());
    }
    let tz = TimeZone::posix(text).map_err(|e| format!("not a POSIX time zone string: {e}"))?;
    Ok(Local { tz, name: text.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openwrt_strings_are_read() {
        let berlin = posix("CET-1CEST,M3.5.0,M10.5.0/3\n").unwrap();
        assert_eq!(berlin.name, "CET-1CEST,M3.5.0,M10.5.0/3");
        let summer: jiff::Timestamp = "2026-07-01T12:00:00Z".parse().unwrap();
        assert_eq!(summer.to_zoned(berlin.tz).hour(), 14);
        assert!(posix("").is_err() && posix("not a zone at all !").is_err());
        assert!(posix(&"A".repeat(300)).is_err());
    }
}
