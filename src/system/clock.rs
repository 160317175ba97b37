//! Whether the system clock is synchronized (NTP), as far as this machine can tell. A Pi
//! has no real-time clock: until NTP syncs after a boot, the time can be hours off.
//!
//! The signals, cheapest first (docs/clock.md says which daemon gives which):
//! - flag files on tmpfs, created on the first synchronization of a boot and gone at the
//!   next: systemd-timesyncd's [`TIMESYNC_FLAG`], and [`OPENWRT_NTP_FLAG`], which the
//!   hotplug script we ship for OpenWrt's BusyBox ntpd writes when ntpd reports a
//!   stratum (configs/openwrt/intercom.ntp-hotplug);
//! - chrony: `chronyc -n tracking` says `Leap status : Normal` (or a leap second)
//!   once chronyd is synchronized, `Not synchronised` before;
//! - ntpd (classic or NTPsec): `ntpq -c "rv 0 leap"` says `leap=00` (or `leap_none`,
//!   or a pending leap second) once synchronized, `leap=11` / `leap_alarm` before;
//! - `timedatectl show -p NTPSynchronized` (systemd's view, whichever client runs).
//!
//! Each command runs with a deadline, so a wedged daemon or D-Bus cannot hang the caller.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// systemd-timesyncd creates this file on its first synchronization after a boot.
pub const TIMESYNC_FLAG: &str = "/run/systemd/timesync/synchronized";
/// Our OpenWrt hotplug script creates this when BusyBox ntpd reports a stratum below 16
/// (synchronized); `/var/run` is tmpfs there, so it never survives a boot.
pub const OPENWRT_NTP_FLAG: &str = "/var/run/intercom-ntp-synchronized";
/// One query of a local daemon: they answer in milliseconds; a wedged one must not hang us.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(20);

/// The flag files that say "synchronized in this boot".
pub const SYNC_FLAGS: [&str; 2] = [TIMESYNC_FLAG, OPENWRT_NTP_FLAG];

/// `Some(true)` synchronized, `Some(false)` known not to be, `None` cannot tell.
pub fn synchronized() -> Option<bool> {
    if SYNC_FLAGS.iter().any(|f| Path::new(f).exists()) {
        return Some(true);
    }
    let timedatectl = run_bounded("timedatectl", &["show", "-p", "NTPSynchronized", "--value"]);
    let systemd = timedatectl.and_then(|o| match o.trim() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    });
    // Any yes is a yes; otherwise any no is a no.
    [chrony(), ntpd(), systemd].into_iter().flatten().max()
}

/// What chrony says of the clock (`None`: not installed, or no answer).
pub fn chrony() -> Option<bool> {
    run_bounded("chronyc", &["-n", "tracking"]).and_then(|o| chrony_synced(&o))
}

/// What ntpd says of the clock (`None`: not installed, or no answer).
pub fn ntpd() -> Option<bool> {
    run_bounded("ntpq", &["-c", "rv 0 leap"]).and_then(|o| ntpq_synced(&o))
}

/// `chronyc tracking`'s `Leap status` line.
pub fn chrony_synced(output: &str) -> Option<bool> {
    let line = output.lines().find(|l| l.trim_start().starts_with("Leap status"))?;
    match line.split_once(':')?.1.trim() {
        "Normal" | "Insert second" | "Delete second" => Some(true),
        "Not synchronised" => Some(false),
        _ => None,
    }
}

/// `ntpq -c "rv 0 leap"`: `leap=00` (or its name) when synchronized, `11` when not.
pub fn ntpq_synced(output: &str) -> Option<bool> {
    let value =
        output.split(|c: char| c == ',' || c.is_whitespace()).find_map(|w| w.strip_prefix("leap="))?;
    match value {
        "00" | "01" | "10" | "leap_none" | "leap_add_sec" | "leap_del_sec" => Some(true),
        "11" | "leap_alarm" => Some(false),
        _ => None,
    }
}

/// Runs a command with [`COMMAND_TIMEOUT`]; its stdout if it ran and succeeded.
fn run_bounded(program: &str, args: &[&str]) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    while child.try_wait().ok()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(POLL);
    }
    let out = child.wait_with_output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `chronyc -n tracking` from chrony 4.3, synchronized and not.
    #[test]
    fn chrony_tracking() {
        let synced = "Reference ID    : C0A80101 (192.168.1.1)\nStratum         : 3\nRef time (UTC)  : Tue Dec 01 02:00:00 2026\nSystem time     : 0.000012 seconds fast of NTP time\nLeap status     : Normal\n";
        assert_eq!(chrony_synced(synced), Some(true));
        let not = "Reference ID    : 00000000 ()\nStratum         : 0\nRef time (UTC)  : Thu Jan 01 00:00:00 1970\nLeap status     : Not synchronised\n";
        assert_eq!(chrony_synced(not), Some(false));
        assert_eq!(chrony_synced("506 Cannot talk to daemon\n"), None);
    }

    /// `ntpq -c "rv 0 leap"` from ntp 4.2.8 and NTPsec.
    #[test]
    fn ntpq_leap() {
        assert_eq!(ntpq_synced("leap=00\n"), Some(true));
        assert_eq!(ntpq_synced("associd=0 status=0615 leap_none, sync_ntp,\nleap=leap_none\n"), Some(true));
        assert_eq!(ntpq_synced("leap=11\n"), Some(false));
        assert_eq!(ntpq_synced("leap=leap_alarm\n"), Some(false));
        assert_eq!(ntpq_synced("ntpq: read: Connection refused\n"), None);
    }
}
