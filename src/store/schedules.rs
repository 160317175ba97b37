//! Schedules on disk: `state_dir/schedules.json`, versioned, with the care of the other
//! state files (atomic write, a bad file moved aside and read as "no schedules").
//!
//! Invariants:
//! - What gives access (adding, resuming) changes memory only after the file is on disk;
//!   what takes it away (deleting, pausing) changes memory first and always works: if the
//!   disk refuses, the disk watcher writes it later and the page says so.
//! - A schedule opens the door only on a clock we trust: the clock is confirmed
//!   synchronized (`boot.rs`), or the schedules were last changed in this boot (the
//!   resident set them against this clock, which the page shows); and never while the
//!   clock is in doubt after a step (`rules/clock.rs`). After a power cut a Pi's clock can
//!   be hours off, and a schedule is an absolute time of day.
//! - The mutex is held across the (local, bounded) write; never across network I/O.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::rules::clock::Clock;
use crate::rules::schedule::{self, format_clock, parse_clock, Days, NewSchedule, Schedule};
use crate::store::storage::{self, Health};
use crate::store::versioned;
use crate::system::boot::Boot;
use crate::system::tz::Local;
use crate::util::lock;

pub const SCHEDULES_FILE: &str = "schedules.json";
const VERSION: u32 = 1;
/// The part of the service whose disk problems this module reports to [`Health`].
const PART: &str = "schedules";
/// Fresh draws before giving up on a unique id; only a broken random source needs more.
const MAX_DRAWS: usize = 100;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    version: u32,
    /// The boot in which the schedules were last changed by the resident.
    boot_id: Option<String>,
    schedules: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    label: String,
    days: String,
    from: String,
    to: String,
    paused: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entrance: Option<String>,
}

/// One schedule as the API shows it now.
pub struct Listed {
    pub schedule: Schedule,
    /// Set while it is open (and the clock is trusted).
    pub open_until: Option<Timestamp>,
}

#[derive(Debug)]
pub enum AddError {
    Full,
    /// The file is unreadable and could not be moved aside: writing would overwrite it.
    Blocked(String),
    Io(io::Error),
}

impl fmt::Display for AddError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            AddError::Full => {
                write!(f, "there are already {} schedules: delete one first", schedule::MAX_SCHEDULES)
            }
            AddError::Blocked(why) => write!(f, "the schedule was not saved: {why}"),
            AddError::Io(e) => write!(f, "the schedule was not saved: {e}"),
        }
    }
}

struct Inner {
    list: Vec<Schedule>,
    written_boot: Option<String>,
    stale: bool,
    blocked: Option<String>,
}

pub struct ScheduleStore {
    dir: PathBuf,
    local: Local,
    boot: Boot,
    clock: Arc<Clock>,
    health: Arc<Health>,
    inner: Mutex<Inner>,
}

impl ScheduleStore {
    /// Loads `dir/schedules.json` (the directory must exist), failing closed to none.
    pub fn open(
        dir: &Path,
        local: Local,
        boot: Boot,
        clock: Arc<Clock>,
        health: Arc<Health>,
    ) -> ScheduleStore {
        let mut inner = Inner { list: Vec::new(), written_boot: None, stale: false, blocked: None };
        match load(dir) {
            Ok((list, boot_id)) => {
                inner.list = list;
                inner.written_boot = boot_id;
            }
            Err(e) => {
                if let Err(why) = versioned::set_aside(dir, SCHEDULES_FILE, "schedules file", &e) {
                    health.fail(PART, format!("{why}: no schedule opens the door"));
                    inner.blocked = Some(why);
                }
            }
        }
        ScheduleStore { dir: dir.to_path_buf(), local, boot, clock, health, inner: Mutex::new(inner) }
    }

    pub fn time_zone(&self) -> &str {
        &self.local.name
    }

    /// `now` as local wall-clock time (`2026-12-01T14:05:00`), so the resident sees which
    /// clock the schedules follow.
    pub fn local_time(&self, now: Timestamp) -> Option<String> {
        Some(now.to_zoned(self.local.tz.clone()).strftime("%Y-%m-%dT%H:%M:%S").to_string())
    }

    /// The schedule that lets a call in now, and its end, among those that
    /// `applies` to it (its entrance); `None` if none is open, the clock is not trusted,
    /// or a write hangs past `wait` (then: forward).
    pub fn open_now(
        &self,
        now: Timestamp,
        wait: Duration,
        applies: impl Fn(&Schedule) -> bool,
    ) -> Option<(Schedule, Timestamp)> {
        let inner = crate::util::lock_within(&self.inner, wait)?;
        if !self.trusted(&inner, now) {
            return None;
        }
        let (s, until) = schedule::open_at(&inner.list, now, &self.local.tz, applies)?;
        Some((s.clone(), until))
    }

    /// The local time of day (minutes after midnight) if the clock is trusted by the
    /// schedules' rule, for quiet hours; `None` otherwise or if a write hangs past `wait`.
    pub fn local_minute(&self, now: Timestamp, wait: Duration) -> Option<u16> {
        let inner = crate::util::lock_within(&self.inner, wait)?;
        if !self.trusted(&inner, now) {
            return None;
        }
        let zoned = now.to_zoned(self.local.tz.clone());
        Some(zoned.hour() as u16 * 60 + zoned.minute() as u16)
    }

    /// Every schedule, in the order made, and whether the clock is trusted for them.
    pub fn list(&self, now: Timestamp) -> (Vec<Listed>, bool) {
        let inner = lock(&self.inner);
        let trusted = self.trusted(&inner, now);
        let listed = inner
            .list
            .iter()
            .map(|s| Listed {
                schedule: s.clone(),
                open_until: trusted.then(|| s.open_until(now, &self.local.tz)).flatten(),
            })
            .collect();
        (listed, trusted)
    }

    pub fn add(&self, new: &NewSchedule) -> Result<Schedule, AddError> {
        let mut inner = lock(&self.inner);
        if let Some(why) = &inner.blocked {
            return Err(AddError::Blocked(why.clone()));
        }
        if inner.list.len() >= schedule::MAX_SCHEDULES {
            return Err(AddError::Full);
        }
        let s = Schedule {
            id: draw_id(|id| inner.list.iter().any(|s| s.id == id)).map_err(AddError::Io)?,
            label: new.label.clone(),
            days: new.days,
            start: new.start,
            end: new.end,
            paused: false,
            entrance: new.entrance.clone(),
        };
        let mut next = inner.list.clone();
        next.push(s.clone());
        self.write(&next).map_err(AddError::Io)?;
        self.saved(&mut inner, next);
        log::info!(
            "schedule {} ({}) added: {} {}-{}",
            s.id,
            crate::util::loggable(&s.label),
            s.days,
            format_clock(s.start),
            format_clock(s.end)
        );
        Ok(s)
    }

    /// Resumes (`paused: false`, written first) or pauses (memory first) one schedule;
    /// `Ok(None)` if there is no such schedule.
    pub fn set_paused(&self, id: &str, paused: bool) -> Result<Option<Schedule>, AddError> {
        let mut inner = lock(&self.inner);
        let Some(i) = inner.list.iter().position(|s| s.id == id) else {
            return Ok(None);
        };
        let mut next = inner.list.clone();
        next[i].paused = paused;
        let changed = next[i].clone();
        if paused {
            self.take_away(&mut inner, next);
        } else {
            if let Some(why) = &inner.blocked {
                return Err(AddError::Blocked(why.clone()));
            }
            self.write(&next).map_err(AddError::Io)?;
            self.saved(&mut inner, next);
        }
        log::info!("schedule {id} {}", if paused { "paused" } else { "resumed" });
        Ok(Some(changed))
    }

    /// Deletes one schedule (memory first: always works); whether there was one.
    pub fn remove(&self, id: &str) -> bool {
        let mut inner = lock(&self.inner);
        if !inner.list.iter().any(|s| s.id == id) {
            return false;
        }
        let next = inner.list.iter().filter(|s| s.id != id).cloned().collect();
        self.take_away(&mut inner, next);
        log::info!("schedule {id} deleted");
        true
    }

    fn take_away(&self, inner: &mut Inner, next: Vec<Schedule>) {
        if inner.blocked.is_some() {
            inner.list = next; // nothing on disk opens anything: the bad file reads as none
            return;
        }
        match self.write(&next) {
            Ok(()) => self.saved(inner, next),
            Err(e) => {
                inner.list = next;
                inner.stale = true;
                self.health.fail(
                    PART,
                    format!("the schedules cannot be saved ({e}): the change holds, and is written when the disk works again"),
                );
            }
        }
    }

    fn saved(&self, inner: &mut Inner, next: Vec<Schedule>) {
        inner.list = next;
        inner.written_boot = self.boot.id.clone();
        inner.stale = false;
        self.health.clear(PART);
    }

    fn write(&self, list: &[Schedule]) -> io::Result<()> {
        storage::write_atomically(&self.dir, SCHEDULES_FILE, &encode(list, self.boot.id.as_deref()), 0o600)
    }

    /// Whether a schedule may open the door at `now`: see the module's invariants.
    fn trusted(&self, inner: &Inner, now: Timestamp) -> bool {
        let verdict = self.clock.judge(now);
        let this_boot = self.boot.id.is_some() && inner.written_boot == self.boot.id;
        verdict.settled && (this_boot || verdict.synced)
    }
}

impl storage::Retry for ScheduleStore {
    fn retry_disk(&self, _now: Timestamp) {
        let mut inner = lock(&self.inner);
        if inner.blocked.is_some() || !inner.stale {
            return;
        }
        let list = inner.list.clone();
        if let Err(e) = self.write(&list) {
            return log::debug!("schedules still not saved: {e}");
        }
        inner.stale = false;
        inner.written_boot = self.boot.id.clone();
        self.health.clear(PART);
    }
}

fn encode(list: &[Schedule], boot_id: Option<&str>) -> Vec<u8> {
    let file = FileV1 {
        version: VERSION,
        boot_id: boot_id.map(str::to_string),
        schedules: list
            .iter()
            .map(|s| Entry {
                id: s.id.clone(),
                label: s.label.clone(),
                days: s.days.to_string(),
                from: format_clock(s.start),
                to: format_clock(s.end),
                paused: s.paused,
                entrance: s.entrance.clone(),
            })
            .collect(),
    };
    // Serializing plain strings cannot fail; an empty file would read as corrupt (none).
    versioned::encode(&file).unwrap_or_default()
}

/// Any doubt is an error (the caller fails closed to no schedules).
fn load(dir: &Path) -> Result<(Vec<Schedule>, Option<String>), Box<dyn Error>> {
    let read = versioned::read::<FileV1>(dir, SCHEDULES_FILE, "schedules file", VERSION..=VERSION)?;
    let Some(file) = read else {
        return Ok((Vec::new(), None));
    };
    if file.schedules.len() > schedule::MAX_SCHEDULES {
        return Err(format!("more than {} schedules", schedule::MAX_SCHEDULES).into());
    }
    let list = file
        .schedules
        .into_iter()
        .map(|e| {
            Ok(Schedule {
                label: crate::rules::codes::check_label(&e.label)?,
                days: Days::parse(&e.days)?,
                start: parse_clock(&e.from, false)?,
                end: parse_clock(&e.to, true)?,
                id: e.id,
                paused: e.paused,
                entrance: e.entrance,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((list, file.boot_id))
}

fn draw_id(taken: impl Fn(&str) -> bool) -> io::Result<String> {
    for _ in 0..MAX_DRAWS {
        let id = crate::util::random_hex(4)?;
        if !taken(&id) {
            return Ok(id);
        }
    }
    Err(io::Error::other("could not draw a fresh id"))
}

/// What `simulate` needs, read-only from the file with the server's clock rule: the
/// schedule open now, and the local time of day for quiet hours (both `None` on a clock
/// the server would not trust).
pub struct Peek {
    pub open: Option<(String, Timestamp)>,
    pub local_minute: Option<u16>,
}

pub fn peek(
    dir: &Path,
    local: &Local,
    boot: &Boot,
    synced: bool,
    now: Timestamp,
    entrance: Option<&str>,
) -> Peek {
    let none = Peek { open: None, local_minute: None };
    let Ok((list, written)) = load(dir) else { return none };
    let this_boot = boot.id.is_some() && written == boot.id;
    if !this_boot && !synced {
        return none;
    }
    let zoned = now.to_zoned(local.tz.clone());
    Peek {
        open: schedule::open_at(&list, now, &local.tz, |s| s.applies_to(entrance))
            .map(|(s, until)| (s.label.clone(), until)),
        local_minute: Some(zoned.hour() as u16 * 60 + zoned.minute() as u16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    use std::fs;

    impl ScheduleStore {
        fn open_now_any(&self, now: Timestamp, wait: Duration) -> Option<(String, Timestamp)> {
            self.open_now(now, wait, |_| true).map(|(s, until)| (s.label, until))
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("intercom-schedules-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn boot(id: &str) -> Boot {
        Boot { id: Some(id.into()), clock_synced: false }
    }

    /// A store with a clock of its own, synchronized while `synced` says so.
    fn store(dir: &Path, b: Boot, synced: Arc<AtomicBool>) -> ScheduleStore {
        let clock = Arc::new(Clock::new(Box::new(move || synced.load(Ordering::SeqCst))));
        ScheduleStore::open(dir, Local::utc(), b, clock, Health::new())
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn new(days: &str, from: &str, to: &str) -> NewSchedule {
        let body = format!(r#"{{"label": "deliveries", "days": "{days}", "from": "{from}", "to": "{to}"}}"#);
        schedule::from_request(&crate::model::api::read_request(body.as_bytes()).unwrap(), &[]).unwrap()
    }

    const WAIT: Duration = Duration::from_secs(1);

    #[test]
    fn a_reboot_with_an_untrusted_clock_opens_nothing_until_it_is_synchronized() {
        let dir = tempdir("reboot");
        let synced = Arc::new(AtomicBool::new(false));
        let noon = at("2026-12-01T12:00:00Z");
        let s = store(&dir, boot("a"), synced.clone());
        s.add(&new("daily", "08:00", "18:00")).unwrap();
        assert_eq!(s.open_now_any(noon, WAIT).unwrap().0, "deliveries", "made in this boot");
        assert!(s.open_now_any(at("2026-12-01T19:00:00Z"), WAIT).is_none());

        let after = store(&dir, boot("b"), synced.clone());
        assert!(after.open_now_any(noon, WAIT).is_none(), "another boot, clock not synchronized");
        assert!(!after.list(noon).1);
        synced.store(true, Ordering::SeqCst);
        assert!(after.open_now_any(noon, WAIT).is_some(), "synchronized now");

        // A clock that goes back stops schedules even when synchronized.
        assert!(after.open_now_any(at("2026-12-01T11:00:00Z"), WAIT).is_none());

        // And one that jumps forward into a schedule's hours opens nothing either.
        let fresh = store(&dir, boot("b"), synced);
        assert!(fresh.open_now_any(at("2026-12-01T06:00:00Z"), WAIT).is_none(), "before its hours");
        assert!(fresh.open_now_any(at("2026-12-01T09:00:00Z"), WAIT).is_none(), "a step forward");
        assert!(!fresh.list(at("2026-12-01T09:00:05Z")).1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn changes_persist_pause_and_delete_work_on_a_broken_disk() {
        let dir = tempdir("persist");
        let synced = Arc::new(AtomicBool::new(true));
        let noon = at("2026-12-01T12:00:00Z");
        let s = store(&dir, boot("a"), synced.clone());
        let made = s.add(&new("mon-fri", "08:00", "18:00")).unwrap();
        assert!(s.set_paused(&made.id, true).unwrap().unwrap().paused);
        assert!(s.open_now_any(noon, WAIT).is_none());
        let again = store(&dir, boot("a"), synced.clone());
        assert!(again.list(noon).0[0].schedule.paused, "paused on disk");
        s.set_paused(&made.id, false).unwrap();
        assert!(s.open_now_any(noon, WAIT).is_some());

        // A directory where the temp file goes makes every write fail.
        let obstruction = dir.join(format!(".{SCHEDULES_FILE}.tmp"));
        fs::create_dir_all(obstruction.join("x")).unwrap();
        assert!(matches!(s.add(&new("sat", "10:00", "12:00")), Err(AddError::Io(_))));
        assert_eq!(s.list(noon).0.len(), 1, "a refused add changes nothing");
        assert!(s.set_paused(&made.id, true).unwrap().is_some());
        assert!(s.open_now_any(noon, WAIT).is_none(), "paused in memory although not on disk");
        assert!(s.set_paused(&made.id, false).is_err(), "resuming needs the disk");
        assert!(s.remove(&made.id));
        assert!(s.health.problem().unwrap().contains("cannot be saved"));
        fs::remove_dir_all(&obstruction).unwrap();
        storage::Retry::retry_disk(&s, noon);
        assert!(s.health.problem().is_none());
        assert!(store(&dir, boot("a"), synced).list(noon).0.is_empty(), "the delete reached the disk");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_opens_nothing() {
        let dir = tempdir("corrupt");
        let synced = Arc::new(AtomicBool::new(true));
        let noon = at("2026-12-01T12:00:00Z");
        for bad in [
            "{not json",
            r#"{"version": 2, "boot_id": null, "schedules": []}"#,
            r#"{"version": 1, "boot_id": null, "schedules": [{"id": "a", "label": "x", "days": "noday", "from": "08:00", "to": "18:00", "paused": false}]}"#,
        ] {
            fs::write(dir.join(SCHEDULES_FILE), bad).unwrap();
            let s = store(&dir, boot("a"), synced.clone());
            assert!(s.list(noon).0.is_empty() && s.open_now_any(noon, WAIT).is_none(), "{bad}");
            assert!(!dir.join(SCHEDULES_FILE).exists());
            let kept = fs::read_dir(&dir)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(SCHEDULES_FILE));
            assert!(kept.count() >= 1, "moved aside, not deleted");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn at_most_max_schedules() {
        let dir = tempdir("full");
        let s = store(&dir, boot("a"), Arc::new(AtomicBool::new(true)));
        for _ in 0..schedule::MAX_SCHEDULES {
            s.add(&new("sun", "10:00", "11:00")).unwrap();
        }
        assert!(matches!(s.add(&new("sun", "10:00", "11:00")), Err(AddError::Full)));
        fs::remove_dir_all(&dir).unwrap();
    }
}
