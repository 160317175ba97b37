//! Which boot this is, and whether the wall clock is confirmed right: what the state needs
//! to decide whether a window stored before a power cut may stay open.
//!
//! A Raspberry Pi has no real-time clock. After a power cut, fake-hwclock or timesyncd's
//! saved clock restores a time that can be hours behind, so a window that ended last
//! night would read open again. The state records the kernel's boot id with every
//! change; at start, a window from an earlier boot stays open only if the clock is
//! confirmed synchronized.
//!
//! The synchronization signal we trust is systemd-timesyncd's flag file
//! `/run/systemd/timesync/synchronized`: timesyncd creates it on the first successful
//! NTP sync of each boot (it lives on tmpfs, so it never survives one), and reading a
//! file needs no privilege. We do not ask the kernel (`adjtimex`): the shipped unit sets
//! `ProtectClock=`, whose system call filter blocks it. With another NTP client (chrony,
//! ntpd) the flag never appears and a window from an earlier boot is always closed at
//! start: that fails closed, and the resident opens it again.

use std::fs;
use std::path::PathBuf;

/// The kernel's random id of this boot, new at every boot.
pub const BOOT_ID_FILE: &str = "/proc/sys/kernel/random/boot_id";
/// Present once systemd-timesyncd has synchronized the clock in this boot.
pub const TIME_SYNC_FLAG: &str = "/run/systemd/timesync/synchronized";
/// Test hooks, not configuration: the integration tests point these at files of their
/// own to simulate a reboot and a synchronized clock without root. Not documented for
/// users; unset in production.
const BOOT_ID_FILE_ENV: &str = "INTERCOM_TEST_BOOT_ID_FILE";
const TIME_SYNC_FLAG_ENV: &str = "INTERCOM_TEST_TIME_SYNC_FLAG";

/// What the state knows about this boot, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// `None` when the kernel does not say (then every stored window counts as from
    /// another boot).
    pub id: Option<String>,
    /// The clock was confirmed synchronized at start.
    pub clock_synced: bool,
}

impl Boot {
    pub fn detect() -> Boot {
        let path = |env: &str, default: &str| PathBuf::from(std::env::var_os(env).unwrap_or(default.into()));
        let id_file = path(BOOT_ID_FILE_ENV, BOOT_ID_FILE);
        let id = match fs::read_to_string(&id_file) {
            Ok(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Ok(_) | Err(_) => {
                log::warn!(
                    "cannot read the boot id from {}: a window from before a restart will be closed unless the clock is synchronized",
                    id_file.display()
                );
                None
            }
        };
        let clock_synced = path(TIME_SYNC_FLAG_ENV, TIME_SYNC_FLAG).exists();
        Boot { id, clock_synced }
    }

    /// Whether a window stored in boot `stored` may stay open now.
    pub fn trusts(&self, stored: Option<&str>) -> bool {
        self.clock_synced || (self.id.is_some() && self.id.as_deref() == stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_from_another_or_unknown_boot_needs_a_synced_clock() {
        let boot = |id: Option<&str>, clock_synced| Boot { id: id.map(str::to_string), clock_synced };
        assert!(boot(Some("a"), false).trusts(Some("a")));
        assert!(!boot(Some("a"), false).trusts(Some("b")));
        assert!(!boot(Some("a"), false).trusts(None));
        assert!(!boot(None, false).trusts(None));
        assert!(boot(Some("a"), true).trusts(Some("b")));
        assert!(boot(None, true).trusts(None));
    }

    #[test]
    fn reads_this_machines_boot_id() {
        if std::path::Path::new(BOOT_ID_FILE).exists() {
            assert!(Boot::detect().id.is_some_and(|id| id.len() >= 32));
        }
    }
}
