//! Which boot this is, and whether the wall clock is confirmed right: what the state needs
//! to decide whether a window stored before a power cut may stay open.
//!
//! A Raspberry Pi has no real-time clock. After a power cut, fake-hwclock or timesyncd's
//! saved clock restores a time that can be hours behind, so a window that ended last
//! night would read open again. The state records the kernel's boot id with every
//! change; at start, a window from an earlier boot stays open only if the clock is
//! confirmed synchronized.
//!
//! The synchronization signals we trust (`clock.rs`, docs/clock.md): systemd-timesyncd's
//! flag file `/run/systemd/timesync/synchronized` (created on the first successful NTP
//! sync of each boot, on tmpfs, so it never survives one), the flag our OpenWrt hotplug
//! script writes for BusyBox ntpd, and chrony's or ntpd's own answer (`chronyc
//! tracking`, `ntpq`). The flags are read on every check until one is there; the daemons
//! are asked at start and then every [`SYNC_PROBE_EVERY`] by a thread of their own until
//! one says yes (once per boot is enough: a clock synchronized once in this boot is
//! trusted from then on).
//! We do not ask the kernel (`adjtimex`): the shipped unit sets `ProtectClock=`, whose
//! system call filter blocks it. Without any of these a window from an earlier boot is
//! closed at start: that fails closed, and the resident opens it again.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use crate::system::clock::{self, SYNC_FLAGS};

/// How often chrony or ntpd is asked until one says the clock is synchronized: a code
/// from before a restart waits at most this long after the sync, and a Pi spends a few
/// milliseconds on each question.
pub const SYNC_PROBE_EVERY: Duration = Duration::from_secs(30);
/// Set once a flag file was seen or chrony or ntpd said the clock is synchronized: it
/// stays so for this boot (nothing removes a flag within one), so every call need not
/// look again (a `stat` per file, several times per call).
static SYNCED: AtomicBool = AtomicBool::new(false);

/// The kernel's random id of this boot, new at every boot.
pub const BOOT_ID_FILE: &str = "/proc/sys/kernel/random/boot_id";
/// The boot id, if set, instead of [`BOOT_ID_FILE`]: the shipped unit's `ProcSubset=pid`
/// hides `/proc/sys`, so it passes systemd's `%b` (this boot's id) here. The integration
/// tests set it to simulate a reboot.
pub const BOOT_ID_ENV: &str = "INTERCOM_BOOT_ID";
/// `clock_sync_flags` from the config, set once at start: the files whose existence says
/// the clock is synchronized in this boot, instead of [`SYNC_FLAGS`] (another NTP client
/// with a hook of its own; the tests, which must not depend on the host's clock).
/// (`clock.rs` also asks `timedatectl`, for `doctor`; at start we trust only the flags
/// and the daemons: no D-Bus to wait for.)
static CONFIGURED_FLAGS: OnceLock<Vec<PathBuf>> = OnceLock::new();

/// Uses the config's `clock_sync_flags` instead of the built-in flag files; only the
/// first call counts (the config is read once).
pub fn use_sync_flags(flags: Option<&[PathBuf]>) {
    if let Some(f) = flags {
        let _ = CONFIGURED_FLAGS.set(f.to_vec());
    }
}

/// Whether the clock is confirmed synchronized now (the flag appears once per boot).
pub fn clock_synced_now() -> bool {
    if SYNCED.load(Ordering::Relaxed) {
        return true;
    }
    let seen = match CONFIGURED_FLAGS.get() {
        Some(flags) => flags.iter().any(|f| f.exists()),
        None => SYNC_FLAGS.iter().any(|f| Path::new(f).exists()),
    };
    SYNCED.fetch_or(seen, Ordering::Relaxed);
    seen
}

/// Asks chrony and ntpd (bounded); remembers a yes.
fn ask_daemons() -> bool {
    let synced = clock::chrony() == Some(true) || clock::ntpd() == Some(true);
    if synced && !SYNCED.swap(true, Ordering::Relaxed) {
        log::info!("the NTP daemon says the clock is synchronized");
    }
    synced
}

/// Asks chrony and ntpd every [`SYNC_PROBE_EVERY`] until the clock is synchronized, on a
/// thread of its own, so no call and no other watcher waits for them.
pub fn watch_sync() -> std::io::Result<()> {
    if clock_synced_now() {
        return Ok(());
    }
    thread::Builder::new().name("clock-sync".into()).spawn(|| {
        while !clock_synced_now() && !ask_daemons() {
            thread::sleep(SYNC_PROBE_EVERY);
        }
    })?;
    Ok(())
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
        let id = std::env::var(BOOT_ID_ENV).ok().or_else(|| fs::read_to_string(BOOT_ID_FILE).ok());
        let id = id.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        if id.is_none() {
            log::warn!(
                "cannot read the boot id from {BOOT_ID_FILE} or ${BOOT_ID_ENV}: a window from before a restart will be closed unless the clock is synchronized"
            );
        }
        Boot { id, clock_synced: clock_synced_now() || ask_daemons() }
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
