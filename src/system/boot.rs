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

use crate::system::clock::TIMESYNC_FLAG;

/// The kernel's random id of this boot, new at every boot.
pub const BOOT_ID_FILE: &str = "/proc/sys/kernel/random/boot_id";
/// The boot id, if set, instead of [`BOOT_ID_FILE`]: the shipped unit's `ProcSubset=pid`
/// hides `/proc/sys`, so it passes systemd's `%b` (this boot's id) here. The integration
/// tests set it to simulate a reboot.
pub const BOOT_ID_ENV: &str = "INTERCOM_BOOT_ID";
/// A test hook, not configuration: the integration tests point it at a file of their own
/// instead of [`TIMESYNC_FLAG`] to simulate a synchronized clock without root. Not
/// documented for users. (`clock.rs` also asks `timedatectl`, for `doctor`; at start we
/// trust only the flag: no process to spawn, no D-Bus to wait for.)
const TIME_SYNC_FLAG_ENV: &str = "INTERCOM_TEST_TIME_SYNC_FLAG";

/// Whether the clock is confirmed synchronized now (the flag appears once per boot).
pub fn clock_synced_now() -> bool {
    std::env::var_os(TIME_SYNC_FLAG_ENV).map_or(PathBuf::from(TIMESYNC_FLAG), PathBuf::from).exists()
}

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
        let given = std::env::var(BOOT_ID_ENV).ok();
        let id = given.or_else(|| fs::read_to_string(BOOT_ID_FILE).ok()).map(|s| s.trim().to_string());
        let id = id.filter(|s| !s.is_empty());
        if id.is_none() {
            log::warn!(
                "cannot read the boot id from {BOOT_ID_FILE} or ${BOOT_ID_ENV}: a window from before a restart will be closed unless the clock is synchronized"
            );
        }
        Boot { id, clock_synced: clock_synced_now() }
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
        if std::path::Path::new(BOOT_ID_FILE).exists() && std::env::var_os(BOOT_ID_ENV).is_none() {
            assert!(Boot::detect().id.is_some_and(|id| id.len() >= 32));
        }
    }
}
