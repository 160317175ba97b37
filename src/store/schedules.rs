//! Schedules on disk: `state_dir/schedules.json`, versioned, with the care of the other
//! state files (atomic write, a bad file moved aside and read as "no schedules").
//!
//! Invariants:
//! - What gives access (adding, resuming) changes memory only after the file is on disk;
//!   what takes it away (deleting, pausing) changes memory first and always works
//!   (`versioned::Kept::revoke`: if the disk refuses, the file is set aside, so a restart
//!   finds no schedules, and the disk watcher writes memory's state later).
//! - A start on a disk that takes no writes pauses every schedule (in memory, written once
//!   the disk works): a pause or a delete that could not even be set aside (a read-only
//!   disk) must not come undone by a restart.
//! - A schedule opens the door only on a clock we trust: the clock is confirmed
//!   synchronized (`boot.rs`), or the schedules were last changed in this boot (the
//!   resident set them against this clock, which the page shows); and never while the
//!   clock is in doubt after a step (`rules/clock.rs`). After a power cut a Pi's clock can
//!   be hours off, and a schedule is an absolute time of day.
//! - The mutex is held across the (local, bounded) write; never across network I/O.

use std::error::Error;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::rules::clock::Clock;
use crate::rules::schedule::{self, format_clock, parse_clock, Days, NewSchedule, Schedule};
use crate::store::storage::{self, Health};
use crate::store::versioned::{self, draw, AddError, Kept, Spec};
use crate::system::boot::Boot;
use crate::system::tz::Local;
use crate::util::{lock, lock_within, loggable};

pub const SCHEDULES_FILE: &str = "schedules.json";
const VERSION: u32 = 1;
static SPEC: Spec = Spec {
    name: SCHEDULES_FILE,
    part: "schedules",
    reads: VERSION..=VERSION,
    none: "no schedule opens the door",
    removable: false,
};

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

/// A change of the schedules that did not reach the disk (nor memory).
fn unsaved(e: io::Error) -> AddError {
    AddError::Io(format!("the schedule was not saved: {e}"))
}

struct Inner {
    list: Vec<Schedule>,
    written_boot: Option<String>,
    kept: Kept,
}

pub struct ScheduleStore {
    local: Local,
    boot: Boot,
    clock: Arc<Clock>,
    inner: Mutex<Inner>,
}

impl ScheduleStore {
    /// Loads `dir/schedules.json` (the directory must exist), failing closed to none, and
    /// writes it again, which tells whether the disk takes writes (see the invariants).
    pub fn open(
        dir: &Path,
        local: Local,
        boot: Boot,
        clock: Arc<Clock>,
        health: Arc<Health>,
    ) -> ScheduleStore {
        let (mut kept, (mut list, written_boot)) = Kept::open(dir, &SPEC, health, load);
        let means = "every schedule is paused until you resume it";
        if !list.is_empty() && kept.write(&encode(&list, written_boot.as_deref()), means).is_err() {
            list.iter_mut().for_each(|s| s.paused = true);
        }
        let inner = Inner { list, written_boot, kept };
        ScheduleStore { local, boot, clock, inner: Mutex::new(inner) }
    }
    pub fn time_zone(&self) -> &str {
        &self.local.name
    }

    /// `now` as local wall-clock time (`2026-12-01T14:05:00`), so the resident sees which
    /// clock the schedules follow.
    pub fn local_time(&self, now: Timestamp) -> Option<String> {
        Some(self.local.tz.to_datetime(crate::util::time::floor(now)).to_string())
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
        let inner = lock_within(&self.inner, wait)?;
        if !self.trusted(&inner, now) {
            return None;
        }
        let (s, until) = schedule::open_at(&inner.list, now, &self.local.tz, applies)?;
        Some((s.clone(), until))
    }

    /// The local time of day (minutes after midnight) if the clock is trusted by the
    /// schedules' rule, for quiet hours; `None` otherwise or if a write hangs past `wait`.
    pub fn local_minute(&self, now: Timestamp, wait: Duration) -> Option<u16> {
        let inner = lock_within(&self.inner, wait)?;
        self.trusted(&inner, now).then(|| minute_of_day(now, &self.local))
    }

    /// Every schedule, in the order made, and whether the clock is trusted for them.
    pub fn list(&self, now: Timestamp) -> (Vec<Listed>, bool) {
        let inner = lock(&self.inner);
        let trusted = self.trusted(&inner, now);
        let open_until = |s: &Schedule| trusted.then(|| s.open_until(now, &self.local.tz)).flatten();
        let listed =
            inner.list.iter().map(|s| Listed { schedule: s.clone(), open_until: open_until(s) }).collect();
        (listed, trusted)
    }

    pub fn add(&self, new: &NewSchedule) -> Result<Schedule, AddError> {
        let mut inner = lock(&self.inner);
        if inner.list.len() >= schedule::MAX_SCHEDULES {
            let full = format!("there are already {} schedules: delete one first", schedule::MAX_SCHEDULES);
            return Err(AddError::Full(full));
        }
        let s = Schedule {
            id: draw(4, Some, |id| inner.list.iter().any(|s| s.id == id)).map_err(unsaved)?,
            label: new.label.clone(),
            days: new.days,
            start: new.start,
            end: new.end,
            paused: false,
            entrance: new.entrance.clone(),
        };
        let mut next = inner.list.clone();
        next.push(s.clone());
        self.write(&mut inner, next).map_err(unsaved)?;
        let (from, to) = (format_clock(s.start), format_clock(s.end));
        log::info!("schedule {} ({}) added: {} {from}-{to}", s.id, loggable(&s.label), s.days);
        Ok(s)
    }

    /// Resumes (`paused: false`, written first) or pauses (memory first, always works)
    /// one schedule; `Ok(None)` if there is no such schedule.
    pub fn set_paused(&self, id: &str, paused: bool) -> Result<Option<Schedule>, AddError> {
        let mut inner = lock(&self.inner);
        let Some(i) = inner.list.iter().position(|s| s.id == id) else { return Ok(None) };
        let mut next = inner.list.clone();
        next[i].paused = paused;
        let changed = next[i].clone();
        if paused {
            self.take_away(&mut inner, next);
        } else {
            self.write(&mut inner, next).map_err(unsaved)?;
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

    /// Writes `next`, then makes it memory's.
    fn write(&self, inner: &mut Inner, next: Vec<Schedule>) -> io::Result<()> {
        inner.kept.write(&encode(&next, self.boot.id.as_deref()), "the change was not made")?;
        inner.list = next;
        inner.written_boot = self.boot.id.clone();
        Ok(())
    }

    /// Makes `next` memory's, then the disk's (see `Kept::revoke`).
    fn take_away(&self, inner: &mut Inner, next: Vec<Schedule>) {
        if inner.kept.revoke(&encode(&next, self.boot.id.as_deref())).is_ok() {
            inner.written_boot = self.boot.id.clone();
        }
        inner.list = next;
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
        let inner = &mut *lock(&self.inner);
        if inner.kept.retry(|| encode(&inner.list, self.boot.id.as_deref())) {
            inner.written_boot = self.boot.id.clone();
        }
    }
}

fn encode(list: &[Schedule], boot_id: Option<&str>) -> Vec<u8> {
    versioned::encode(&FileV1 {
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
    })
}

/// Any doubt is an error (the caller fails closed to no schedules).
fn load(dir: &Path) -> Result<(Vec<Schedule>, Option<String>), Box<dyn Error>> {
    let Some(file) = versioned::read::<FileV1>(dir, &SPEC)? else { return Ok((Vec::new(), None)) };
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
    Peek {
        open: schedule::open_at(&list, now, &local.tz, |s| s.applies_to(entrance))
            .map(|(s, until)| (s.label.clone(), until)),
        local_minute: Some(minute_of_day(now, local)),
    }
}

/// The local time of day at `now`, in minutes after midnight (for quiet hours).
fn minute_of_day(now: Timestamp, local: &Local) -> u16 {
    let zoned = now.to_zoned(local.tz.clone());
    zoned.hour() as u16 * 60 + zoned.minute() as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    use std::fs;
    use std::path::PathBuf;

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
        store_with(dir, b, synced, Health::new())
    }

    fn store_with(dir: &Path, b: Boot, synced: Arc<AtomicBool>, health: Arc<Health>) -> ScheduleStore {
        let clock = Arc::new(Clock::new(Box::new(move || synced.load(Ordering::SeqCst))));
        ScheduleStore::open(dir, Local::utc(), b, clock, health)
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
        let health = Health::new();
        let s = store_with(&dir, boot("a"), synced.clone(), health.clone());
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
        assert!(health.problem().unwrap().contains("cannot be saved"));
        fs::remove_dir_all(&obstruction).unwrap();
        storage::Retry::retry_disk(&s, noon);
        assert!(health.problem().is_none());
        assert!(store(&dir, boot("a"), synced).list(noon).0.is_empty(), "the delete reached the disk");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Files in `dir` whose names start with `prefix`.
    fn named(dir: &Path, prefix: &str) -> usize {
        let names = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap());
        names.filter(|n| n.starts_with(prefix)).count()
    }

    #[test]
    fn a_pause_or_a_delete_the_disk_refuses_is_not_undone_by_a_restart() {
        let dir = tempdir("revoke");
        let synced = Arc::new(AtomicBool::new(true));
        let noon = at("2026-12-01T12:00:00Z");
        let health = Health::new();
        let s = store_with(&dir, boot("a"), synced.clone(), health.clone());
        let paused = s.add(&new("daily", "08:00", "18:00")).unwrap();
        let deleted = s.add(&new("daily", "08:00", "18:00")).unwrap();
        let obstruction = dir.join(format!(".{SCHEDULES_FILE}.tmp"));
        fs::create_dir_all(obstruction.join("x")).unwrap();
        assert!(s.set_paused(&paused.id, true).unwrap().is_some());
        assert!(s.remove(&deleted.id));
        assert!(s.open_now_any(noon, WAIT).is_none(), "at once");
        assert!(health.problem().unwrap().contains("a restart finds none"), "{:?}", health.problem());

        // Killed now, the next start finds no schedules; the file is kept, not deleted.
        let restarted = store(&dir, boot("a"), synced.clone());
        assert!(restarted.list(noon).0.is_empty() && restarted.open_now_any(noon, WAIT).is_none());
        assert_eq!(named(&dir, "schedules.json.unsaved-"), 1);

        // Once the disk takes writes, memory's state replaces the renamed file.
        fs::remove_dir_all(&obstruction).unwrap();
        storage::Retry::retry_disk(&s, noon);
        assert!(health.problem().is_none());
        let listed = store(&dir, boot("a"), synced).list(noon).0;
        assert_eq!(listed.len(), 1);
        assert!(listed[0].schedule.id == paused.id && listed[0].schedule.paused);
        assert_eq!(named(&dir, "schedules.json.unsaved-"), 0, "it held nothing that is not saved now");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_start_on_a_disk_that_takes_no_writes_pauses_every_schedule() {
        let dir = tempdir("start-nowrite");
        let synced = Arc::new(AtomicBool::new(true));
        let noon = at("2026-12-01T12:00:00Z");
        let s = store(&dir, boot("a"), synced.clone());
        s.add(&new("daily", "08:00", "18:00")).unwrap();
        s.add(&new("sat", "10:00", "12:00")).unwrap();
        // A read-only disk: the pause before the restart may not have reached it.
        let obstruction = dir.join(format!(".{SCHEDULES_FILE}.tmp"));
        fs::create_dir_all(obstruction.join("x")).unwrap();
        let health = Health::new();
        let s = store_with(&dir, boot("a"), synced.clone(), health.clone());
        assert!(s.list(noon).0.iter().all(|l| l.schedule.paused) && s.open_now_any(noon, WAIT).is_none());
        assert!(health.problem().unwrap().contains("every schedule is paused"), "{:?}", health.problem());
        fs::remove_dir_all(&obstruction).unwrap();
        storage::Retry::retry_disk(&s, noon);
        assert!(health.problem().is_none());
        let again = store(&dir, boot("a"), synced).list(noon).0;
        assert!(again.len() == 2 && again.iter().all(|l| l.schedule.paused), "paused on disk too");
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
        assert!(matches!(s.add(&new("sun", "10:00", "11:00")), Err(AddError::Full(_))));
        fs::remove_dir_all(&dir).unwrap();
    }
}
