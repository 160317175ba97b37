//! The open window: the state that outlives a restart (with the control token, `token.rs`).
//!
//! Invariants:
//! - Opening changes memory only after the new state is durably on disk (temp file,
//!   fsync, rename, fsync of the directory), so a power cut leaves the old or the new
//!   state, and an open that cannot be saved changes nothing and says why.
//! - Closing always works: memory first, then the disk, and if the closed state cannot be
//!   written (full disk), `state.json` is removed, which needs no space and also means
//!   closed (`versioned::Kept::revoke`). If even that fails (read-only disk), the disk
//!   watcher retries.
//! - Anything wrong with the file or the disk means "closed" (fail closed). A file we
//!   cannot read is moved aside under a new name and never deleted or overwritten. A disk
//!   we cannot write at start closes the window; the server still starts.
//! - A window from an earlier boot stays open at start only if the clock is confirmed
//!   synchronized (`boot.rs`); a clock that goes back closes the window (`rules/clock.rs`:
//!   the state file's last write counts as a reading before the first).
//! - The mutex is held across the (local, bounded) disk write so writes land in the order
//!   they were made; it is never held across network I/O.
//! - Every change is reported to the observer (the event log) under the same lock, so the
//!   history is in the order the changes happened. A window that ended is reported as
//!   expired exactly once: by `expire_ended`, or by whichever change replaces it first; a
//!   window closed or replaced in time is never "expired".
//!
//! On disk: `state_dir/state.json`, a versioned format of its own, kept apart from the
//! in-memory state so either can change without the other. Version 2 adds `boot_id`, the
//! kernel's boot id when the window was last written (see `boot.rs`). Version 1 files (no
//! boot id) are still read; their window counts as from an unknown boot. Version 3 adds
//! `once`: the window is for the next visitor only (see `Store::use_once`); older files
//! never are. An older intercom refuses a newer version and reads it as closed (fail
//! closed), moving the file aside.

use std::error::Error;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::record::WindowChange;
use crate::rules::clock::Clock;
pub use crate::rules::window::Status;
use crate::rules::window::{changes, status_at};
use crate::store::storage::{self, Health};
use crate::store::versioned::{self, Kept, Spec};
use crate::system::boot::Boot;
use crate::system::clock::TIMESYNC_FLAG;
use crate::util::time::{ceil, ceil_secs, floor, human};
use crate::util::{lock, lock_within};

pub const STATE_FILE: &str = "state.json";
const VERSION: u32 = 3;
pub static SPEC: Spec = Spec {
    name: STATE_FILE,
    part: "state",
    reads: 1..=VERSION,
    none: "the window stays closed and calls ring your phone",
    removable: true,
};

/// What the file says. A missing file says: closed, never changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// Whole seconds, rounded up; the window is open while now is before it.
    pub open_until: Option<Timestamp>,
    /// The last write, rounded up.
    pub updated_at: Option<Timestamp>,
    pub boot_id: Option<String>,
    /// The window ends at the first unlock.
    pub once: bool,
}

/// `state.json`, versions 1 to 3 (version 1 never has `boot_id`, only 3 has `once`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    /// RFC 3339 UTC, or null when closed.
    open_until: Option<Timestamp>,
    updated_at: Timestamp,
    updated_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boot_id: Option<String>,
    once: Option<bool>,
}

/// Reads `dir/state.json`; any doubt is an error (the caller fails closed).
pub fn load(dir: &Path) -> Result<Stored, Box<dyn Error>> {
    let Some(file) = versioned::read::<StateFile>(dir, &SPEC)? else { return Ok(Stored::default()) };
    if file.version < 3 && file.once.is_some() {
        return Err(format!("corrupt state file: `once` in a version {} file", file.version).into());
    }
    Ok(Stored {
        open_until: file.open_until.map(ceil),
        updated_at: Some(ceil(file.updated_at)),
        boot_id: file.boot_id,
        once: file.once.unwrap_or(false),
    })
}

/// Called under the state lock with each change and the time it happened: it must only
/// do bounded local work (append to a file, queue a notification), never network I/O.
pub type Observer = Box<dyn Fn(&WindowChange, Timestamp) + Send + Sync>;

/// What became of a call's claim on a one-shot window.
#[derive(Debug, PartialEq, Eq)]
pub enum OnceUse {
    /// This call is the next visitor: the window is closed on disk, open the door.
    Used,
    /// Another call took it, or it ended: answer as if closed.
    Gone,
    /// The state is stuck or cannot be written: answer as if closed (fail closed).
    Unavailable(String),
}

struct Inner {
    /// The window as memory has it; its `boot_id` is the boot the loaded window was written
    /// in (until `check_at_start` judged it), its `updated_at` is not kept up to date.
    window: Stored,
    /// The clock's steps back that this store has acted on.
    back_steps: u64,
    kept: Kept,
    clock_warned: bool,
}

pub struct Store {
    max_window: Duration,
    boot: Boot,
    health: Arc<Health>,
    clock: Arc<Clock>,
    inner: Mutex<Inner>,
    observer: OnceLock<Observer>,
}

impl Store {
    /// Creates the state directory if needed and loads the window, failing closed. Never
    /// fails: a disk we cannot use is reported to `health` and leaves the window closed.
    pub fn open(
        dir: &Path,
        max_window: Duration,
        boot: Boot,
        health: Arc<Health>,
        clock: Arc<Clock>,
    ) -> Store {
        let load = |dir: &Path| {
            storage::create_private_dir(dir)?;
            load(dir)
        };
        let (kept, stored) = Kept::open(dir, &SPEC, health.clone(), load);
        stored.updated_at.into_iter().for_each(|t| clock.saw_earlier(t));
        let inner = Inner { window: stored, back_steps: 0, kept, clock_warned: false };
        Store { max_window, boot, health, clock, inner: Mutex::new(inner), observer: OnceLock::new() }
    }

    /// Sets who hears about window changes; only the first call counts.
    pub fn set_observer(&self, observer: Observer) {
        let _ = self.observer.set(observer);
    }

    /// Judges the loaded window once the observer is set, so a close is recorded and
    /// notified: closed if it is from an earlier boot and the clock is not confirmed
    /// synchronized, if the clock went back since the last change or since the times the
    /// clock saw before the start, or if the disk cannot be written. Then writes the state
    /// with this boot's id, which also finds out whether the disk can be written.
    pub fn check_at_start(&self, now: Timestamp) {
        let mut inner = lock(&self.inner);
        if inner.window.open_until.is_some_and(|until| until > now)
            && !self.boot.trusts(inner.window.boot_id.as_deref())
        {
            log::warn!("closing the window: it was opened before the last restart or power cut, and the clock is not confirmed synchronized (no {TIMESYNC_FLAG}); it may be hours behind");
            return self.close_locked(&mut inner, now, "reboot");
        }
        if self.close_if_clock_went_back(&mut inner, now) {
            return;
        }
        let bytes = self.bytes(inner.window.open_until, inner.window.once, now, "start");
        if inner.kept.write(&bytes, SPEC.none).is_err() && inner.window.open_until.is_some() {
            // A window we could not close on disk later must not stay open.
            log::warn!("closing the window: the state disk cannot be written");
            self.close_locked(&mut inner, now, "disk");
        }
    }

    /// Ends a stored window whose time has come (or whose clock went back): memory and
    /// the state file say closed and the observer hears it once. Returns whether there
    /// was one to end.
    pub fn expire_ended(&self, now: Timestamp) -> bool {
        let mut inner = lock(&self.inner);
        if self.close_if_clock_went_back(&mut inner, now) {
            return true;
        }
        let ended = inner.window.open_until.is_some_and(|until| until <= now);
        if ended {
            self.close_locked(&mut inner, now, "expiry");
        }
        ended
    }

    /// The stored end of the window, even if it already passed or looks like a clock
    /// jump (for the expiry watcher, which must see a window that `status` calls closed).
    pub fn stored_until(&self) -> Option<Timestamp> {
        lock(&self.inner).window.open_until
    }

    pub fn status(&self, now: Timestamp) -> Status {
        self.status_of(&mut lock(&self.inner), now)
    }

    /// [`Store::status`] for a call: `None` if the lock is held longer than `wait` (a state
    /// write hangs on the disk), which the caller takes for closed.
    pub fn status_within(&self, now: Timestamp, wait: Duration) -> Option<Status> {
        let mut inner = lock_within(&self.inner, wait)?;
        Some(self.status_of(&mut inner, now))
    }

    fn status_of(&self, inner: &mut Inner, now: Timestamp) -> Status {
        self.close_if_clock_went_back(inner, now);
        self.status_locked(inner, now)
    }

    fn status_locked(&self, inner: &mut Inner, now: Timestamp) -> Status {
        let checked = status_at(inner.window.open_until, inner.window.once, now, self.max_window);
        if checked.clock_jumped && !inner.clock_warned {
            log::warn!("the stored window ends more than max_window from now: the clock moved; treating the window as closed");
        }
        inner.clock_warned = checked.clock_jumped;
        Status { storage_problem: self.health.problem(), ..checked.status }
    }

    /// Opens (or extends, or shortens) the window to end `duration` from now, capped at
    /// `max_window`; with `once`, for the next visitor only (the first unlock ends it).
    /// Either replaces whatever window was open. `source` says who asked, for the log.
    /// If the state cannot be saved, nothing changes and the error says why, in words
    /// for the page.
    pub fn open_window(
        &self,
        duration: Duration,
        once: bool,
        now: Timestamp,
        source: &str,
    ) -> io::Result<Status> {
        let duration = duration.min(self.max_window);
        // From the current whole second, so a 5-minute window reports 300 s, not 301.
        let until = floor(now) + Duration::from_secs(ceil_secs(duration));
        let mut inner = lock(&self.inner);
        inner.back_steps = self.clock.judge(now).back_steps; // the new window replaces the old
        let bytes = self.bytes(Some(until), once, now, source);
        let unsaved = |e: io::Error| io::Error::new(e.kind(), format!("the window was not opened: {e}"));
        inner.kept.write(&bytes, "the window stays as it was").map_err(unsaved)?;
        let previous = inner.window.open_until.replace(until);
        inner.window.once = once;
        self.report(previous, Some(until), once, now, source);
        let only = if once { " for the next visitor only" } else { "" };
        log::info!("window opened{only} for {} until {until} by {source}", human(duration));
        Ok(self.status_locked(&mut inner, now))
    }

    /// Closes the window. Always works: see the module's invariants.
    pub fn close_window(&self, now: Timestamp, source: &str) -> Status {
        let mut inner = lock(&self.inner);
        inner.back_steps = self.clock.judge(now).back_steps;
        self.close_locked(&mut inner, now, source);
        log::info!("window closed by {source}");
        self.status_locked(&mut inner, now)
    }

    /// Ends a one-shot window for the call `call_sid` that it lets in: decided under the
    /// state lock (of two calls at once, one gets [`OnceUse::Used`]) and closed on disk
    /// before the caller may open the door. A lock held past `wait` or a close that
    /// cannot be written leaves the window as it was, and the call is forwarded.
    pub fn use_once(&self, now: Timestamp, wait: Duration, call_sid: Option<&str>) -> OnceUse {
        let Some(mut inner) = lock_within(&self.inner, wait) else {
            return OnceUse::Unavailable("the window state is locked by a write that hangs".into());
        };
        if !self.status_of(&mut inner, now).is_open() || !inner.window.once {
            return OnceUse::Gone;
        }
        let bytes = self.bytes(None, false, now, "the next visitor");
        if let Err(e) = inner.kept.write(&bytes, "the one-shot window stays, and its calls ring your phone") {
            return OnceUse::Unavailable(e.to_string());
        }
        inner.window.open_until = None;
        inner.window.once = false;
        if let Some(observer) = self.observer.get() {
            observer(&WindowChange::OnceUsed { call_sid: call_sid.map(str::to_string) }, now);
        }
        log::info!("the one-shot window let a visitor in and is closed");
        OnceUse::Used
    }

    /// Memory first, then the disk by whatever path works, then the observer.
    fn close_locked(&self, inner: &mut Inner, now: Timestamp, source: &str) {
        let previous = inner.window.open_until.take();
        inner.window.once = false;
        // A failure is on the page, and the window is closed in memory: closed all the same.
        let _ = inner.kept.revoke(&self.bytes(None, false, now, source));
        self.report(previous, None, false, now, source);
    }

    /// The file's bytes for a window ending at `until` (whole seconds), written at `now` by
    /// `source` in this boot.
    fn bytes(&self, until: Option<Timestamp>, once: bool, now: Timestamp, source: &str) -> Vec<u8> {
        versioned::encode(&StateFile {
            once: Some(once),
            version: VERSION,
            open_until: until,
            updated_at: floor(now),
            updated_by: source.to_string(),
            boot_id: self.boot.id.clone(),
        })
    }

    fn report(&self, was: Option<Timestamp>, new: Option<Timestamp>, once: bool, now: Timestamp, by: &str) {
        if let Some(observer) = self.observer.get() {
            for change in changes(was, new, once, now, by) {
                observer(&change, now);
            }
        }
    }

    /// Closes an open window if the clock went back since this store last asked the one
    /// policy (another store's reading may have seen the step first); whether it did.
    fn close_if_clock_went_back(&self, inner: &mut Inner, now: Timestamp) -> bool {
        let seen = std::mem::replace(&mut inner.back_steps, self.clock.judge(now).back_steps);
        let close = inner.back_steps > seen && inner.window.open_until.is_some();
        if close {
            log::warn!("the clock went back: the open window is closed");
            self.close_locked(inner, now, "clock");
        }
        close
    }
}

impl storage::Retry for Store {
    /// Writes memory's state (normally closed) once the disk takes it again.
    fn retry_disk(&self, now: Timestamp) {
        let inner = &mut *lock(&self.inner);
        inner.kept.retry(|| self.bytes(inner.window.open_until, inner.window.once, now, "the disk watcher"));
    }
}

/// The window as the state file says, read-only (for `simulate`); errors mean closed.
pub fn peek(dir: &Path, max_window: Duration, now: Timestamp) -> Result<Status, Box<dyn Error>> {
    let stored = load(dir)?;
    Ok(status_at(stored.open_until, stored.once, now, max_window).status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    const HOUR: Duration = Duration::from_secs(3600);

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("intercom-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    const THIS_BOOT: &str = "this-boot";

    fn new_store(dir: &Path, max_window: Duration) -> Store {
        store_in_boot(dir, max_window, Boot { id: Some(THIS_BOOT.into()), clock_synced: false })
    }

    fn store_in_boot(dir: &Path, max_window: Duration, boot: Boot) -> Store {
        Store::open(dir, max_window, boot, Health::new(), Arc::new(Clock::new(Box::new(|| false))))
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn open_persists_and_expires_at_the_second() {
        let dir = tempdir("expire");
        let store = new_store(&dir, 12 * HOUR);
        let now = at(1_000_000);
        let s = store.open_window(Duration::from_secs(90), false, now, "test").unwrap();
        assert_eq!(s.remaining_seconds, 90);
        let again = new_store(&dir, 12 * HOUR);
        assert_eq!(again.status(at(1_000_089)).remaining_seconds, 1);
        assert!(again.status(at(1_000_089) + Duration::from_millis(999)).is_open());
        assert!(!again.status(at(1_000_090)).is_open());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn durations_are_capped_and_reopening_replaces() {
        let dir = tempdir("cap");
        let store = new_store(&dir, HOUR);
        assert_eq!(store.open_window(5 * HOUR, false, at(0), "t").unwrap().remaining_seconds, 3600);
        assert_eq!(
            store.open_window(Duration::from_secs(60), false, at(10), "t").unwrap().remaining_seconds,
            60
        );
        assert!(!store.close_window(at(11), "t").is_open());
        assert!(!new_store(&dir, HOUR).status(at(12)).is_open());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn observer_hears_each_change_once_in_order() {
        let dir = tempdir("observer");
        let store = new_store(&dir, 12 * HOUR);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        store.set_observer(Box::new(move |c, _| keep.lock().unwrap().push(c.clone())));
        let take = || std::mem::take(&mut *seen.lock().unwrap());
        let minute = Duration::from_secs(60);
        let opened = |until, source: &str| WindowChange::Opened {
            until: at(until),
            duration: minute,
            source: source.into(),
            once: false,
        };

        store.open_window(minute, false, at(1000), "a").unwrap();
        store.close_window(at(1010), "b");
        store.close_window(at(1011), "b"); // already closed: no change
        assert_eq!(take(), [opened(1060, "a"), WindowChange::Closed { source: "b".into() }]);

        store.open_window(minute, false, at(2000), "c").unwrap();
        assert!(!store.expire_ended(at(2059)));
        assert!(store.expire_ended(at(2060)));
        assert!(!store.expire_ended(at(2061)));
        assert!(!new_store(&dir, 12 * HOUR).expire_ended(at(2062)), "expired on disk");
        assert_eq!(take(), [opened(2060, "c"), WindowChange::Expired { until: at(2060) }]);

        // Replaced in time: no expiry. Ended unnoticed, then reopened: expired, then opened.
        store.open_window(minute, false, at(3000), "d").unwrap();
        store.open_window(minute, false, at(3030), "d").unwrap();
        store.open_window(minute, false, at(3100), "e").unwrap();
        store.close_window(at(3200), "f");
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
            let store = new_store(&dir, HOUR);
            assert!(!store.status(Timestamp::now()).is_open());
            let kept: Vec<_> =
                fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            let aside = kept.iter().find(|n| n.starts_with("state.json.bad-")).expect("moved aside");
            assert_eq!(fs::read_to_string(dir.join(aside)).unwrap(), *bad);
            assert!(store.open_window(HOUR, false, Timestamp::now(), "t").unwrap().is_open());
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    fn recorder(store: &Store) -> Arc<Mutex<Vec<WindowChange>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        store.set_observer(Box::new(move |c, _| keep.lock().unwrap().push(c.clone())));
        seen
    }

    fn closed_by(source: &str) -> WindowChange {
        WindowChange::Closed { source: source.into() }
    }

    #[test]
    fn a_window_from_an_earlier_boot_closes_unless_the_clock_is_synced() {
        let dir = tempdir("reboot");
        let now = Timestamp::now();
        new_store(&dir, HOUR).open_window(HOUR, false, now, "t").unwrap();
        let boot = |id: &str, clock_synced| Boot { id: Some(id.into()), clock_synced };
        let reopen = |b: Boot| {
            let s = store_in_boot(&dir, HOUR, b);
            let seen = recorder(&s);
            s.check_at_start(now + Duration::from_secs(5));
            let open = s.status(now + Duration::from_secs(5)).is_open();
            let seen = seen.lock().unwrap().clone();
            (open, seen)
        };
        assert_eq!(reopen(boot(THIS_BOOT, false)), (true, vec![]), "same boot: a restart keeps it");
        assert_eq!(reopen(boot("next-boot", true)), (true, vec![]), "synced clock: kept");
        // Kept in "next-boot", so the file now names that boot.
        assert_eq!(reopen(boot("third-boot", false)), (false, vec![closed_by("reboot")]));
        assert_eq!(reopen(boot("third-boot", true)), (false, vec![]), "stays closed on disk");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_one_shot_window_from_an_earlier_boot_closes_like_any_other() {
        let dir = tempdir("oncereboot");
        let now = Timestamp::now();
        new_store(&dir, HOUR).open_window(HOUR, true, now, "t").unwrap();
        let other = store_in_boot(&dir, HOUR, Boot { id: Some("other-boot".into()), clock_synced: false });
        other.check_at_start(now);
        let status = other.status(now);
        assert!(!status.is_open() && !status.once, "{status:?}");
        assert_eq!(other.use_once(now, Duration::from_secs(1), None), OnceUse::Gone);
        let again = store_in_boot(&dir, HOUR, Boot { id: Some("other-boot".into()), clock_synced: true });
        assert!(!again.status(now).once, "closed on disk, once cleared");
        // And a clock that goes back ends it too.
        let s = new_store(&dir, 12 * HOUR);
        s.open_window(HOUR, true, at(100_000), "t").unwrap();
        assert_eq!(s.use_once(at(90_000), Duration::from_secs(1), None), OnceUse::Gone);
        assert!(!s.status(at(100_001)).is_open());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_clock_that_goes_back_closes_the_window() {
        let dir = tempdir("clockback");
        let store = new_store(&dir, 12 * HOUR);
        let seen = recorder(&store);
        store.open_window(HOUR, false, at(100_000), "t").unwrap();
        assert!(
            store.status(at(100_000) - crate::rules::clock::SLACK / 2).is_open(),
            "threads' times out of order"
        );
        assert!(!store.status(at(100_000 - 3600)).is_open());
        assert!(!new_store(&dir, 12 * HOUR).status(at(100_000 - 3600)).is_open(), "closed on disk");
        // From there on the clock counts from the new time: a new window works.
        assert!(store.open_window(HOUR, false, at(96_500), "t").unwrap().is_open());
        assert!(store.status(at(96_501)).is_open());
        let changes = seen.lock().unwrap().clone();
        assert_eq!(changes[1], closed_by("clock"), "{changes:?}");

        // At start: the history's newest record is later than now.
        let s = new_store(&dir, 12 * HOUR);
        let seen = recorder(&s);
        s.clock.saw_earlier(at(99_000));
        s.check_at_start(at(96_502));
        assert!(!s.status(at(96_502)).is_open());
        assert_eq!(*seen.lock().unwrap(), [closed_by("clock")]);

        // And the expiry watcher notices without any request.
        let s = new_store(&dir, 12 * HOUR);
        s.open_window(HOUR, false, at(200_000), "t").unwrap();
        assert!(s.expire_ended(at(190_000)));
        assert!(s.stored_until().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A directory where the temp file goes makes every write fail, as a full or broken
    /// disk would, without mounting anything (the integration tests use real tmpfs).
    fn obstruct_writes(dir: &Path) -> PathBuf {
        let tmp = dir.join(format!(".{STATE_FILE}.tmp"));
        fs::create_dir_all(tmp.join("x")).unwrap();
        tmp
    }

    #[test]
    fn closing_works_when_the_state_cannot_be_written_and_opening_changes_nothing() {
        let dir = tempdir("nowrite");
        let store = new_store(&dir, HOUR);
        let seen = recorder(&store);
        store.open_window(HOUR, false, at(1000), "t").unwrap();
        let obstruction = obstruct_writes(&dir);

        let err = store.open_window(Duration::from_secs(60), false, at(1001), "t").unwrap_err();
        assert!(
            err.to_string().contains("not opened") && err.to_string().contains(".state.json.tmp"),
            "{err}"
        );
        assert_eq!(store.status(at(1001)).remaining_seconds, 3599, "nothing changed");

        let closed = store.close_window(at(1002), "t");
        assert!(!closed.is_open());
        assert!(closed.storage_problem.unwrap().contains("removed"));
        assert!(!dir.join(STATE_FILE).exists(), "a missing file means closed");
        assert!(!new_store(&dir, HOUR).status(at(1003)).is_open());
        assert_eq!(seen.lock().unwrap().last(), Some(&closed_by("t")));

        fs::remove_dir_all(&obstruction).unwrap();
        storage::Retry::retry_disk(&store, at(1004));
        assert_eq!(store.status(at(1004)).storage_problem, None);
        assert!(dir.join(STATE_FILE).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_start_on_a_disk_that_takes_no_writes_closes_the_window() {
        let dir = tempdir("startnowrite");
        let now = Timestamp::now();
        new_store(&dir, HOUR).open_window(HOUR, false, now, "t").unwrap();
        let obstruction = obstruct_writes(&dir);
        let store = new_store(&dir, HOUR);
        let seen = recorder(&store);
        store.check_at_start(now);
        let status = store.status(now);
        assert!(!status.is_open() && status.storage_problem.is_some());
        assert_eq!(*seen.lock().unwrap(), [closed_by("disk")]);
        assert!(store.open_window(HOUR, false, now, "t").is_err());
        fs::remove_dir_all(&obstruction).unwrap();
        assert!(store.open_window(HOUR, false, now, "t").unwrap().storage_problem.is_none(), "works again");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_state_dir_that_cannot_be_made_leaves_a_closed_window() {
        let dir = tempdir("nodir");
        fs::create_dir_all(dir.parent().unwrap()).unwrap();
        fs::write(&dir, "a file where the directory should be").unwrap();
        let store = new_store(&dir.join("state"), HOUR);
        store.check_at_start(Timestamp::now());
        let status = store.status(Timestamp::now());
        assert!(!status.is_open() && status.storage_problem.unwrap().contains("state directory"));
        assert!(store.open_window(HOUR, false, Timestamp::now(), "t").is_err());
        fs::remove_file(&dir).unwrap();
        storage::Retry::retry_disk(&store, Timestamp::now());
        assert!(store.status(Timestamp::now()).storage_problem.is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_one_shot_window_lets_one_visitor_in_and_survives_a_restart() {
        let dir = tempdir("once");
        let store = new_store(&dir, 12 * HOUR);
        let seen = recorder(&store);
        let wait = Duration::from_secs(1);
        assert_eq!(store.use_once(at(1000), wait, Some("CA0")), OnceUse::Gone, "closed");
        let status = store.open_window(HOUR, true, at(1000), "t").unwrap();
        assert!(status.is_open() && status.once);
        let again = new_store(&dir, 12 * HOUR);
        assert!(again.status(at(1001)).once, "once is on disk");
        assert_eq!(store.use_once(at(1001), wait, Some("CA1")), OnceUse::Used);
        assert_eq!(store.use_once(at(1002), wait, Some("CA2")), OnceUse::Gone, "the second one forwards");
        assert!(!store.status(at(1002)).is_open());
        assert!(!new_store(&dir, 12 * HOUR).status(at(1003)).is_open(), "closed on disk");
        let changes = seen.lock().unwrap().clone();
        assert_eq!(changes[1], WindowChange::OnceUsed { call_sid: Some("CA1".into()) }, "{changes:?}");
        assert_eq!(changes.len(), 2);

        // An ordinary window is not used up, and replaces a one-shot one.
        store.open_window(HOUR, true, at(2000), "t").unwrap();
        assert!(!store.open_window(HOUR, false, at(2001), "t").unwrap().once);
        assert_eq!(store.use_once(at(2002), wait, None), OnceUse::Gone);
        assert!(store.status(at(2002)).is_open());
        // A one-shot window that nobody used ends like any other.
        store.open_window(Duration::from_secs(60), true, at(3000), "t").unwrap();
        assert!(store.expire_ended(at(3060)));
        assert_eq!(store.use_once(at(3061), wait, None), OnceUse::Gone);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn two_calls_at_once_use_a_one_shot_window_once() {
        let dir = tempdir("oncerace");
        let store = Arc::new(new_store(&dir, 12 * HOUR));
        for round in 0..20i64 {
            let now = at(10_000 + round * 10);
            store.open_window(HOUR, true, now, "t").unwrap();
            let barrier = Arc::new(std::sync::Barrier::new(4));
            let used: Vec<OnceUse> = (0..4)
                .map(|_| {
                    let (store, barrier) = (store.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        store.use_once(now, Duration::from_secs(5), None)
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            assert_eq!(used.iter().filter(|u| **u == OnceUse::Used).count(), 1, "{used:?}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_one_shot_window_whose_end_cannot_be_written_opens_nothing() {
        let dir = tempdir("oncenowrite");
        let store = new_store(&dir, 12 * HOUR);
        store.open_window(HOUR, true, at(1000), "t").unwrap();
        let obstruction = obstruct_writes(&dir);
        let used = store.use_once(at(1001), Duration::from_secs(1), None);
        assert!(matches!(used, OnceUse::Unavailable(_)), "{used:?}");
        assert!(store.status(at(1001)).storage_problem.is_some());
        fs::remove_dir_all(&obstruction).unwrap();
        assert_eq!(store.use_once(at(1002), Duration::from_secs(1), None), OnceUse::Used, "the disk is back");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn round_trips_and_reads_version_1() {
        let dir = std::env::temp_dir().join(format!("intercom-statefile-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let at = |secs| Timestamp::from_second(secs).unwrap();
        let now = at(1_000);
        let encode = |until, once, now, by, id: Option<&str>| {
            let boot = Boot { id: id.map(str::to_string), clock_synced: false };
            store_in_boot(&dir, HOUR, boot).bytes(until, once, now, by)
        };
        fs::write(dir.join(STATE_FILE), encode(Some(at(4_600)), false, now, "t", Some("boot-a"))).unwrap();
        let want = Stored {
            open_until: Some(at(4_600)),
            updated_at: Some(at(1_000)),
            boot_id: Some("boot-a".into()),
            once: false,
        };
        assert_eq!(load(&dir).unwrap(), want);
        fs::write(dir.join(STATE_FILE), encode(Some(at(4_600)), true, now, "t", None)).unwrap();
        assert!(load(&dir).unwrap().once);
        let v2 = r#"{"version": 2, "open_until": "1970-01-01T01:16:40Z", "updated_at": "1970-01-01T00:16:40Z", "updated_by": "x", "boot_id": "b"}"#;
        fs::write(dir.join(STATE_FILE), v2).unwrap();
        let want = Stored { once: false, boot_id: Some("b".into()), ..want };
        assert_eq!(load(&dir).unwrap(), want, "version 2 is still read: never once");
        let v2_once = v2.replace("\"boot_id\"", "\"once\": true, \"boot_id\"");
        fs::write(dir.join(STATE_FILE), v2_once).unwrap();
        assert!(load(&dir).is_err(), "a version 2 file knows no `once`");
        let v1 =
            r#"{"version": 1, "open_until": null, "updated_at": "1970-01-01T00:16:40Z", "updated_by": "x"}"#;
        fs::write(dir.join(STATE_FILE), v1).unwrap();
        assert_eq!(load(&dir).unwrap(), Stored { updated_at: Some(at(1_000)), ..Stored::default() });
        fs::write(dir.join(STATE_FILE), r#"{"version": 4}"#).unwrap();
        assert!(load(&dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
