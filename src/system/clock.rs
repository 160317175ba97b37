//! Whether the system clock is synchronized (NTP), as far as this machine can tell. A Pi
//! has no real-time clock: until NTP syncs after a boot, the time can be hours off.
//!
//! The signals, in order: systemd-timesyncd's flag file (it exists only while timesyncd
//! holds a synchronized clock), then `timedatectl show -p NTPSynchronized` (systemd's
//! view, whichever NTP client runs). Neither present means we cannot tell.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// systemd-timesyncd creates this file on its first synchronization after a boot.
pub const TIMESYNC_FLAG: &str = "/run/systemd/timesync/synchronized";
/// `timedatectl` asks systemd over D-Bus; a wedged bus must not hang the caller.
const TIMEDATECTL_TIMEOUT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(20);

/// `Some(true)` synchronized, `Some(false)` known not to be, `None` cannot tell.
pub fn synchronized() -> Option<bool> {
    if Path::new(TIMESYNC_FLAG).exists() {
        return Some(true);
    }
    let mut child = Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + TIMEDATECTL_TIMEOUT;
    while child.try_wait().ok()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(POLL);
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    match String::from_utf8_lossy(&out.stdout).trim() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}
