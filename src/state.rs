//! The open window and the control token: the only state that outlives a restart.
//!
//! Invariants:
//! - Memory changes only after the new state is durably on disk (temp file, fsync,
//!   rename, fsync of the directory), so a power cut leaves the old or the new state.
//! - Anything wrong with the file means "closed" (fail closed). A file we cannot read is
//!   moved aside under a new name and never deleted or overwritten.
//! - The mutex is held across the (local, bounded) disk write so writes land in the order
//!   they were made; it is never held across network I/O.
//! - Every change is reported to the observer (the event log) under the same lock, after
//!   the state is on disk, so the history is in the order the changes happened. A window
//!   that ended is reported as expired exactly once: by `expire_ended`, or by whichever
//!   change replaces it first; a window closed or replaced in time is never "expired".

use std::error::Error;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::record::WindowChange;
use crate::{lock, rfc3339};

const STATE_FILE: &str = "state.json";
const TOKEN_FILE: &str = "control-token";
const STATE_VERSION: u32 = 1;
/// 256 bits: far beyond guessing, and still a short URL.
const TOKEN_BYTES: usize = 32;

/// The window as the API and the page show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub open_until: Option<SystemTime>,
    pub remaining_seconds: u64,
}

impl Status {
    pub fn is_open(&self) -> bool {
        self.open_until.is_some()
    }

    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "open": self.is_open(),
            "open_until": self.open_until.map(rfc3339),
            "remaining_seconds": self.remaining_seconds,
        })
    }
}

/// `state.json`, version 1. Kept apart from the in-memory type so the format can evolve.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFileV1 {
    version: u32,
    /// RFC 3339 UTC, or null when closed.
    open_until: Option<String>,
    updated_at: String,
    updated_by: String,
}

/// Called under the state lock with each change and the time it happened: it must only
/// do bounded local work (append to a file, queue a notification), never network I/O.
pub type Observer = Box<dyn Fn(&WindowChange, SystemTime) + Send + Sync>;

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

struct Inner {
    /// Unix seconds; the window is open while now is before it.
    open_until: Option<u64>,
    /// Set when a bad file could not be moved aside: writing would overwrite it.
    write_blocked: Option<String>,
    clock_warned: bool,
}

pub struct Store {
    dir: PathBuf,
    max_window: Duration,
    inner: Mutex<Inner>,
    observer: OnceLock<Observer>,
}

impl Store {
    /// Creates the state directory if needed and loads the window, failing closed.
    pub fn open(dir: &Path, max_window: Duration) -> Result<Store, Box<dyn Error>> {
        create_private_dir(dir)?;
        let (open_until, write_blocked) = match load(dir) {
            Ok(until) => (until, None),
            Err(e) => {
                log::error!("state file {}: {e}; the window is closed", dir.join(STATE_FILE).display());
                match move_aside(&dir.join(STATE_FILE)) {
                    Ok(to) => {
                        log::error!("the unreadable state file was kept as {}", to.display());
                        (None, None)
                    }
                    Err(e) => {
                        log::error!(
                            "cannot move the unreadable state file aside: {e}; refusing to change state"
                        );
                        (
                            None,
                            Some(format!("the state file is unreadable and could not be moved aside: {e}")),
                        )
                    }
                }
            }
        };
        Ok(Store {
            dir: dir.to_path_buf(),
            max_window,
            inner: Mutex::new(Inner { open_until, write_blocked, clock_warned: false }),
            observer: OnceLock::new(),
        })
    }

    /// Sets who hears about window changes; only the first call counts.
    pub fn set_observer(&self, observer: Observer) {
        let _ = self.observer.set(observer);
    }

    /// Ends a stored window whose time has come: the state file says closed and the
    /// observer hears `Expired` once. Returns whether there was one to end.
    pub fn expire_ended(&self, now: SystemTime) -> io::Result<bool> {
        let mut inner = lock(&self.inner);
        match inner.open_until {
            Some(until) if UNIX_EPOCH + Duration::from_secs(until) <= now => {
                self.change_locked(&mut inner, None, now, "expiry")?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The stored end of the window, even if it already passed or looks like a clock
    /// jump (for the expiry watcher, which must see a window that `status` calls closed).
    pub fn stored_until(&self) -> Option<SystemTime> {
        lock(&self.inner).open_until.map(|s| UNIX_EPOCH + Duration::from_secs(s))
    }

    pub fn status(&self, now: SystemTime) -> Status {
        let mut inner = lock(&self.inner);
        let status = status_at(inner.open_until, now, self.max_window);
        if status.clock_jumped && !inner.clock_warned {
            log::warn!("the stored window ends more than max_window from now: the clock moved; treating the window as closed");
        }
        inner.clock_warned = status.clock_jumped;
        status.status
    }

    /// Opens (or extends, or shortens) the window to end `duration` from now, capped at
    /// `max_window`. `source` says who asked, for the log.
    pub fn open_window(&self, duration: Duration, now: SystemTime, source: &str) -> io::Result<Status> {
        let duration = duration.min(self.max_window);
        // From the current whole second, so a 5-minute window reports 300 s, not 301.
        let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let until = now_secs + ceil_secs(duration);
        self.change(Some(until), now, source)?;
        log::info!(
            "window opened for {} until {} by {source}",
            humantime::format_duration(duration),
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(until))
        );
        Ok(self.status(now))
    }

    pub fn close_window(&self, now: SystemTime, source: &str) -> io::Result<Status> {
        self.change(None, now, source)?;
        log::info!("window closed by {source}");
        Ok(self.status(now))
    }

    fn change(&self, open_until: Option<u64>, now: SystemTime, source: &str) -> io::Result<()> {
        self.change_locked(&mut lock(&self.inner), open_until, now, source)
    }

    fn change_locked(
        &self,
        inner: &mut Inner,
        open_until: Option<u64>,
        now: SystemTime,
        source: &str,
    ) -> io::Result<()> {
        if let Some(why) = &inner.write_blocked {
            return Err(io::Error::other(why.clone()));
        }
        let file = StateFileV1 {
            version: STATE_VERSION,
            open_until: open_until.map(|s| rfc3339(UNIX_EPOCH + Duration::from_secs(s))),
            updated_at: rfc3339(now),
            updated_by: source.to_string(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_atomically(&self.dir, STATE_FILE, &bytes, 0o600)?;
        let previous = inner.open_until;
        inner.open_until = open_until;
        if let Some(observer) = self.observer.get() {
            for change in changes(previous, open_until, now, source) {
                observer(&change, now);
            }
        }
        Ok(())
    }

    /// The token from `control-token`, created with fresh randomness on first start.
    pub fn load_or_create_token(&self) -> Result<Secret, Box<dyn Error>> {
        let path = self.dir.join(TOKEN_FILE);
        match read_token(&self.dir) {
            Ok(Some(t)) => {
                let mode = fs::metadata(&path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    log::warn!("{} was readable by others; setting its mode to 0600", path.display());
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
                }
                return Ok(t);
            }
            Ok(None) => {}
            Err(e) => {
                let to = move_aside(&path)?;
                log::error!("{}: {e}; kept it as {} and made a new token", path.display(), to.display());
            }
        }
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the control token: {e}"))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        write_atomically(&self.dir, TOKEN_FILE, format!("{token}\n").as_bytes(), 0o600)?;
        log::info!("generated a new control token in {}", path.display());
        Ok(Secret::new(token))
    }
}

/// Reads the token file without creating it (for the CLI). `Ok(None)`: no file yet.
pub fn read_token(dir: &Path) -> Result<Option<Secret>, Box<dyn Error>> {
    let path = dir.join(TOKEN_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display()).into()),
    };
    let token = text.trim();
    crate::config::check_token(token).map_err(|m| format!("the token file {m}"))?;
    Ok(Some(Secret::new(token.to_string())))
}

/// The window as the state file says, read-only (for `simulate`); errors mean closed.
pub fn peek(dir: &Path, max_window: Duration, now: SystemTime) -> Result<Status, Box<dyn Error>> {
    Ok(status_at(load(dir)?, now, max_window).status)
}

/// What a write of `new` over `previous` means: a window that already ended expired (even
/// if nobody noticed yet), then the new one opened, or the running one was closed.
fn changes(previous: Option<u64>, new: Option<u64>, now: SystemTime, source: &str) -> Vec<WindowChange> {
    let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
    let mut out = Vec::new();
    let running = match previous {
        Some(p) if at(p) <= now => {
            out.push(WindowChange::Expired { until: at(p) });
            false
        }
        Some(_) => true,
        None => false,
    };
    match new {
        Some(until) => out.push(WindowChange::Opened {
            until: at(until),
            duration: Duration::from_secs(until.saturating_sub(now_secs)),
            source: source.to_string(),
        }),
        None if running => out.push(WindowChange::Closed { source: source.to_string() }),
        None => {}
    }
    out
}

struct Checked {
    status: Status,
    clock_jumped: bool,
}

fn status_at(open_until: Option<u64>, now: SystemTime, max_window: Duration) -> Checked {
    let closed = Status { open_until: None, remaining_seconds: 0 };
    let Some(until) = open_until.map(|s| UNIX_EPOCH + Duration::from_secs(s)) else {
        return Checked { status: closed, clock_jumped: false };
    };
    match until.duration_since(now) {
        Ok(left) if left.is_zero() => Checked { status: closed, clock_jumped: false },
        // One second of slack: `until` was rounded up to a whole second.
        Ok(left) if left > max_window + Duration::from_secs(1) => {
            Checked { status: closed, clock_jumped: true }
        }
        Ok(left) => Checked {
            status: Status { open_until: Some(until), remaining_seconds: ceil_secs(left) },
            clock_jumped: false,
        },
        Err(_) => Checked { status: closed, clock_jumped: false },
    }
}

fn load(dir: &Path) -> Result<Option<u64>, Box<dyn Error>> {
    let path = dir.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let v: VersionOnly = serde_json::from_slice(&bytes).map_err(|e| format!("not a state file: {e}"))?;
    if v.version != STATE_VERSION {
        return Err(format!("unsupported state file version {}", v.version).into());
    }
    let file: StateFileV1 = serde_json::from_slice(&bytes).map_err(|e| format!("corrupt state file: {e}"))?;
    file.open_until
        .map(|s| {
            humantime::parse_rfc3339(&s)
                .map(unix_secs_ceil)
                .map_err(|e| format!("bad open_until {s:?}: {e}").into())
        })
        .transpose()
}

/// Renames `path` to `path.bad-<unix time>[-n]`; a hard link first, so nothing is ever
/// overwritten (link fails if the target exists), then the old name is removed.
pub(crate) fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    for n in 0..100 {
        let suffix = if n == 0 { format!("bad-{stamp}") } else { format!("bad-{stamp}-{n}") };
        let mut to = path.as_os_str().to_owned();
        to.push(format!(".{suffix}"));
        let to = PathBuf::from(to);
        match fs::hard_link(path, &to) {
            Ok(()) => {
                fs::remove_file(path)?;
                sync_dir(path.parent().unwrap_or(Path::new(".")))?;
                return Ok(to);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("too many files already moved aside"))
}

/// Temp file in the same directory, fsync, rename over the target, fsync the directory.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    if !dir.is_dir() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    Ok(())
}

fn unix_secs_ceil(t: SystemTime) -> u64 {
    ceil_secs(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

use std::os::unix::fs::DirBuilderExt;

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("intercom-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn open_persists_and_expires_at_the_second() {
        let dir = tempdir("expire");
        let store = Store::open(&dir, 12 * HOUR).unwrap();
        let now = at(1_000_000);
        let s = store.open_window(Duration::from_secs(90), now, "test").unwrap();
        assert_eq!(s.remaining_seconds, 90);
        let again = Store::open(&dir, 12 * HOUR).unwrap();
        assert_eq!(again.status(at(1_000_089)).remaining_seconds, 1);
        assert!(again.status(at(1_000_089) + Duration::from_millis(999)).is_open());
        assert!(!again.status(at(1_000_090)).is_open());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn durations_are_capped_and_reopening_replaces() {
        let dir = tempdir("cap");
        let store = Store::open(&dir, HOUR).unwrap();
        assert_eq!(store.open_window(5 * HOUR, at(0), "t").unwrap().remaining_seconds, 3600);
        assert_eq!(store.open_window(Duration::from_secs(60), at(10), "t").unwrap().remaining_seconds, 60);
        assert!(!store.close_window(at(11), "t").unwrap().is_open());
        assert!(!Store::open(&dir, HOUR).unwrap().status(at(12)).is_open());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn observer_hears_each_change_once_in_order() {
        use std::sync::Arc;
        let dir = tempdir("observer");
        let store = Store::open(&dir, 12 * HOUR).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        store.set_observer(Box::new(move |c, _| keep.lock().unwrap().push(c.clone())));
        let take = || std::mem::take(&mut *seen.lock().unwrap());
        let minute = Duration::from_secs(60);
        let opened = |until, source: &str| WindowChange::Opened {
            until: at(until),
            duration: minute,
            source: source.into(),
        };

        store.open_window(minute, at(1000), "a").unwrap();
        store.close_window(at(1010), "b").unwrap();
        store.close_window(at(1011), "b").unwrap(); // already closed: no change
        assert_eq!(take(), [opened(1060, "a"), WindowChange::Closed { source: "b".into() }]);

        store.open_window(minute, at(2000), "c").unwrap();
        assert!(!store.expire_ended(at(2059)).unwrap());
        assert!(store.expire_ended(at(2060)).unwrap());
        assert!(!store.expire_ended(at(2061)).unwrap());
        assert!(!Store::open(&dir, 12 * HOUR).unwrap().expire_ended(at(2062)).unwrap(), "expired on disk");
        assert_eq!(take(), [opened(2060, "c"), WindowChange::Expired { until: at(2060) }]);

        // Replaced in time: no expiry. Ended unnoticed, then reopened: expired, then opened.
        store.open_window(minute, at(3000), "d").unwrap();
        store.open_window(minute, at(3030), "d").unwrap();
        store.open_window(minute, at(3100), "e").unwrap();
        store.close_window(at(3200), "f").unwrap();
        assert_eq!(
            take(),
            [
                opened(3060, "d"),
                opened(3090, "d"),
                WindowChange::Expired { until: at(3090) },
                opened(3160, "e"),
                WindowChange::Expired { until: at(3160) },
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn clock_jump_reads_as_closed() {
        let c = status_at(Some(100 * 3600), at(0), 12 * HOUR);
        assert!(c.clock_jumped && !c.status.is_open());
        assert!(status_at(Some(12 * 3600), at(0), 12 * HOUR).status.is_open());
    }

    #[test]
    fn corrupt_files_are_moved_aside_and_read_as_closed() {
        for (i, bad) in [
            "{not json",
            r#"{"version": 2, "open_until": null}"#,
            r#"{"version": 1, "open_until": "tomorrow", "updated_at": "", "updated_by": ""}"#,
            "",
        ]
        .iter()
        .enumerate()
        {
            let dir = tempdir(&format!("corrupt{i}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(STATE_FILE), bad).unwrap();
            let store = Store::open(&dir, HOUR).unwrap();
            assert!(!store.status(SystemTime::now()).is_open());
            let kept: Vec<_> =
                fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            let aside = kept.iter().find(|n| n.starts_with("state.json.bad-")).expect("moved aside");
            assert_eq!(fs::read_to_string(dir.join(aside)).unwrap(), *bad);
            assert!(store.open_window(HOUR, SystemTime::now(), "t").unwrap().is_open());
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn token_is_created_once_private_and_url_safe() {
        let dir = tempdir("token");
        let store = Store::open(&dir, HOUR).unwrap();
        let t = store.load_or_create_token().unwrap();
        assert!(t.expose().len() >= 43 && crate::config::check_token(t.expose()).is_ok());
        let mode = fs::metadata(dir.join(TOKEN_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(store.load_or_create_token().unwrap(), t);
        assert_eq!(read_token(&dir).unwrap().unwrap(), t);
        fs::remove_dir_all(&dir).unwrap();
    }
}
