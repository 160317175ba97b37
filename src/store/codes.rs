//! Guest codes on disk: `state_dir/codes.json`, with the care of the window's state file.
//!
//! Invariants:
//! - What gives access (adding a code, the use that opens the door) changes memory only
//!   after the new file is durably on disk (`storage::write_atomically`: temp file, fsync,
//!   rename, fsync of the directory): a use is counted on disk before the door opens, so
//!   kill -9 or a power cut cannot give a use back.
//! - What takes access away changes memory first: a wrong code counts even if the disk
//!   refuses it, so a full disk never lifts a lockout; deleting a code always works
//!   (`versioned::Kept::revoke`: if the disk refuses, the file is set aside, so a restart
//!   finds no codes, and the disk watcher writes memory's state later).
//! - A file we cannot read means no codes (the door fails closed to "forward"); it is
//!   moved aside, never deleted or overwritten.
//! - The mutex is held across the (local, bounded) write, so two calls cannot both use
//!   the last use of a code; never across network I/O.
//! - The digits never reach a log line: only ids and labels are logged.
//! - A code must never work because the clock went back (a Pi has no real-time clock):
//!   a code written in an earlier boot works only once the clock is confirmed
//!   synchronized (`boot.rs`), and no code works while the clock is in doubt after a step
//!   (`rules/clock.rs`).
//! - A call (by `CallSid`) spends at most one use and counts as at most one wrong code,
//!   however often its request comes (Twilio's retries, a replay), across restarts too:
//!   the calls that used a code or entered a wrong one are kept in the file with it.
//!
//! On disk: `state_dir/codes.json`, a versioned format of its own, kept apart from the
//! in-memory types (`rules/codes.rs`) so either can change without the other. Version 2
//! added the boot each code was written in; version 1 files are still read (their codes
//! count as from an earlier boot, so they wait for a synchronized clock). Version 3 added
//! the recent calls that used a code or entered a wrong one, so a repeated request of a
//! call (Twilio's retry, a replay) is never counted twice.

use std::collections::HashMap;
use std::error::Error;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::rules::clock::Clock;
use crate::rules::codes::{self, Attempt, Code, Lockout, NewCode, MAX_FAILURES};
use crate::store::storage::{self, Health};
use crate::store::versioned::{self, draw, AddError, Kept, Spec};
use crate::system::boot::Boot;
use crate::util::time::{between, floor};
use crate::util::{lock, lock_within, loggable, LOCK_WAIT};

const CODES_FILE: &str = "codes.json";
const VERSION: u32 = 3;
static SPEC: Spec = Spec {
    name: CODES_FILE,
    part: "guest codes",
    reads: 1..=VERSION,
    none: "no code works",
    removable: false,
};
/// Calls remembered in the file: far more than the lockout lets through in a day
/// (5 wrong codes per 15 minutes) plus every use of every code, and a few KiB at most.
const MAX_CALLS: usize = 200;
/// How long a call is remembered: a replay of a captured request a day later is as
/// harmless as a new wrong code (which the lockout bounds), and Twilio retries within
/// minutes.
const CALL_MEMORY: Duration = Duration::from_secs(24 * 60 * 60);
/// A `CallSid` is 34 characters; anything much longer is not Twilio's and is not kept.
const MAX_CALL_SID_CHARS: usize = 64;

/// `codes.json`, versions 1 to 3. Kept apart from the in-memory type so the format can evolve.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodesFile {
    version: u32,
    codes: Vec<CodeV2>,
    /// Recent wrong codes (RFC 3339 UTC, as every time in the file).
    failures: Vec<Timestamp>,
    locked_until: Option<Timestamp>,
    /// Recent calls that used a code or entered a wrong one (version 3).
    #[serde(default)]
    calls: Vec<SeenCall>,
}

/// A call the store has counted, so a repeat of it is not counted again: in memory as in
/// the file, where it is nothing but this record of the store's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeenCall {
    call_sid: String,
    /// Whole seconds.
    time: Timestamp,
    /// The label of the code it used; `None`: it entered a wrong code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    used: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeV2 {
    id: String,
    code: String,
    label: String,
    valid_until: Timestamp,
    uses_left: u32,
    /// The kernel's boot id when the code was last confirmed by a trusted clock.
    boot_id: Option<String>,
}

/// What the file holds: the codes, the lockout, and the boot each code was stored in.
#[derive(Debug, Default)]
struct Loaded {
    codes: Vec<Code>,
    lockout: Lockout,
    boots: HashMap<String, Option<String>>,
    calls: Vec<SeenCall>,
}

/// What a keypad entry led to, for the call's answer and its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tried {
    Empty,
    NotAccepted,
    /// A right code; its use is on disk. Carries the label (never the digits).
    Right {
        label: String,
    },
    /// A wrong code; `locked` when it was the one that locked codes.
    Wrong {
        locked: bool,
    },
}

struct Inner {
    codes: Vec<Code>,
    lockout: Lockout,
    /// Codes (by id) from an earlier boot, with the boot they were stored in, that wait
    /// for a synchronized clock: until then the time they are judged by may be wrong.
    untrusted: HashMap<String, Option<String>>,
    /// Calls already counted, oldest first.
    calls: Vec<SeenCall>,
    kept: Kept,
}

pub struct CodeStore {
    boot: Boot,
    clock: Arc<Clock>,
    inner: Mutex<Inner>,
}

impl CodeStore {
    /// Why stored codes do not work at `now`, if they do not (none stored: nothing to say).
    fn paused_because(&self, inner: &mut Inner, now: Timestamp) -> Option<String> {
        if !inner.codes.iter().any(|c| !c.is_spent(now)) {
            return None;
        }
        self.trusted(inner, now); // which forgets the boots once the clock is synced
        let waiting = inner.codes.iter().filter(|c| inner.untrusted.contains_key(&c.id)).count();
        pause_reason(&inner.lockout, self.clock.why(), waiting, now)
    }

    /// The codes that may be judged by `now`: none while the clock is in doubt, and codes
    /// from an earlier boot only once the clock is synced.
    fn trusted(&self, inner: &mut Inner, now: Timestamp) -> Vec<Code> {
        let verdict = self.clock.judge(now);
        if !verdict.settled {
            return Vec::new();
        }
        if !inner.untrusted.is_empty() && verdict.synced {
            log::info!("the clock is synchronized: guest codes from before the restart work again");
            inner.untrusted.clear();
        }
        inner.codes.iter().filter(|c| !inner.untrusted.contains_key(&c.id)).cloned().collect()
    }

    /// Loads the codes from `dir` (which must exist), failing closed to "no codes".
    pub fn open(dir: &Path, boot: Boot, now: Timestamp, clock: Arc<Clock>, health: Arc<Health>) -> CodeStore {
        let (kept, Loaded { codes, mut lockout, boots, calls }) = Kept::open(dir, &SPEC, health, load);
        lockout.settle(floor(now));
        let untrusted: HashMap<_, _> =
            boots.into_iter().filter(|(_, b)| !boot.trusts(b.as_deref())).collect();
        if !untrusted.is_empty() {
            let n = untrusted.len();
            log::warn!("{n} guest code(s) from before a restart wait for a synchronized clock: the clock may be wrong after a power cut");
        }
        let inner = Inner { codes, lockout, untrusted, calls, kept };
        CodeStore { boot, clock, inner: Mutex::new(inner) }
    }

    /// The active codes, soonest end first.
    pub fn active(&self, now: Timestamp) -> Vec<Code> {
        let now = floor(now);
        let mut active: Vec<Code> =
            lock(&self.inner).codes.iter().filter(|c| c.is_active(now)).cloned().collect();
        active.sort_by_key(|c| c.valid_until);
        active
    }

    /// Whether a call with the window in this state is offered the keypad prompt. Not if
    /// a write of the codes hangs on the disk past [`crate::util::LOCK_WAIT`]: then the call is
    /// forwarded.
    pub fn offer(&self, window_open: bool, now: Timestamp) -> bool {
        let Some(mut inner) = lock_within(&self.inner, LOCK_WAIT) else { return false };
        let trusted = self.trusted(&mut inner, floor(now));
        codes::offer(window_open, &trusted, &inner.lockout, floor(now))
    }

    /// Whether stored codes are paused now (see [`CodeStore::why_paused`]); `None` while a
    /// write of the codes hangs on the disk past [`crate::util::LOCK_WAIT`] (the caller
    /// looks again later).
    pub fn paused(&self, now: Timestamp) -> Option<bool> {
        let mut inner = lock_within(&self.inner, LOCK_WAIT)?;
        Some(self.paused_because(&mut inner, floor(now)).is_some())
    }

    /// Why stored codes do not work now, if they do not (the API, the page and the log
    /// say it): a lock after wrong codes, a clock in doubt after a step, or codes from
    /// before a restart that wait for a synchronized clock.
    pub fn why_paused(&self, now: Timestamp) -> Option<String> {
        let held = "the guest codes are held by a write that hangs (the disk?): calls are forwarded";
        let Some(mut inner) = lock_within(&self.inner, LOCK_WAIT) else { return Some(held.into()) };
        self.paused_because(&mut inner, floor(now))
    }

    pub fn add(&self, new: &NewCode, now: Timestamp) -> Result<Code, AddError> {
        let now = floor(now);
        let mut inner = lock(&self.inner);
        let mut next = inner.codes.clone();
        next.retain(|c| !c.is_spent(now));
        if next.len() >= codes::MAX_ACTIVE {
            let full = format!("{} codes are active already; delete one first", codes::MAX_ACTIVE);
            return Err(AddError::Full(full));
        }
        let unsaved = |e| AddError::Io(format!("could not save the codes: {e}"));
        let digits_taken = |d: &str| next.iter().any(|c| c.digits == d);
        let code = Code {
            id: draw(4, Some, |id| next.iter().any(|c| c.id == id)).map_err(unsaved)?,
            digits: draw(codes::DIGITS_RANDOM_BYTES, codes::digits_from, digits_taken).map_err(unsaved)?,
            label: new.label.clone(),
            valid_until: now + Duration::from_secs(new.minutes * 60),
            uses_left: new.uses,
        };
        next.push(code.clone());
        let calls = inner.calls.clone();
        self.save(&mut inner, next, calls, now).map_err(unsaved)?;
        let (id, label) = (&code.id, loggable(&code.label));
        log::info!("guest code {id} ({label}) added: {} use(s) until {}", code.uses_left, code.valid_until);
        Ok(code)
    }

    /// Deletes a code by id (memory first: always works, see the invariants); `false` if
    /// there is no such code left to use. A code that only a backward clock makes inactive
    /// is deleted too: it would work again later.
    pub fn remove(&self, id: &str, now: Timestamp) -> bool {
        let now = floor(now);
        let mut inner = lock(&self.inner);
        let Some(found) = inner.codes.iter().find(|c| c.id == id && !c.is_spent(now)).cloned() else {
            return false;
        };
        inner.codes.retain(|c| c.id != id);
        let bytes = self.memory(&mut inner, now);
        // A failure is on the page, and the code is gone from memory: deleted all the same.
        let _ = inner.kept.revoke(&bytes);
        log::info!("guest code {} ({}) deleted", found.id, loggable(&found.label));
        true
    }

    /// Checks keypad digits. A right code's use is on disk before this returns `Right`;
    /// if that write fails, the error says so and the caller must not open the door.
    /// A call (`call_sid`) already counted gets what it got then, and nothing changes:
    /// `Right` again without a second use (the use is on disk; only the answer was
    /// lost, or it is a replay, whose answer opens nothing without the live call), or
    /// `Wrong` that does not count again.
    pub fn try_code(&self, digits: &str, call_sid: Option<&str>, now: Timestamp) -> io::Result<Tried> {
        let now = floor(now);
        let mut inner = lock_within(&self.inner, LOCK_WAIT).ok_or_else(|| {
            io::Error::new(io::ErrorKind::TimedOut, "the guest codes are locked by a write that hangs")
        })?;
        let call_sid = call_sid.filter(|s| !s.is_empty() && s.chars().count() <= MAX_CALL_SID_CHARS);
        if let Some(seen) = call_sid.and_then(|sid| inner.calls.iter().find(|c| c.call_sid == sid)) {
            log::info!("a repeated request of call {}: counted once already", loggable(&seen.call_sid));
            return Ok(match &seen.used {
                Some(label) => Tried::Right { label: label.clone() },
                None => Tried::Wrong { locked: false },
            });
        }
        let seen = |used| call_sid.map(|sid| SeenCall { call_sid: sid.into(), time: now, used });
        inner.lockout.settle(now);
        let trusted = self.trusted(&mut inner, now);
        match codes::attempt(&trusted, &inner.lockout, digits, now) {
            Attempt::Empty => Ok(Tried::Empty),
            Attempt::NotAccepted => Ok(Tried::NotAccepted),
            Attempt::Right(t) => {
                let mut next = inner.codes.clone();
                let Some(i) = next.iter().position(|c| c.id == trusted[t].id) else {
                    return Ok(Tried::NotAccepted);
                };
                next[i].uses_left -= 1;
                let (id, label, left) = (next[i].id.clone(), next[i].label.clone(), next[i].uses_left);
                let mut calls = inner.calls.clone();
                calls.extend(seen(Some(label.clone())));
                self.save(&mut inner, next, calls, now)?;
                log::info!("guest code {id} ({}) used; {left} use(s) left", loggable(&label));
                Ok(Tried::Right { label })
            }
            Attempt::Wrong => {
                // Counted in memory even if the write fails, and so is the call.
                let locked = inner.lockout.fail(now);
                inner.calls.extend(seen(None));
                let bytes = self.memory(&mut inner, now);
                // A failure is on the page; the wrong code counts in memory until a restart.
                let _ = inner.kept.write(&bytes, "a wrong code counts until a restart");
                if locked {
                    log::warn!("{MAX_FAILURES} wrong guest codes: codes locked until {}", now + codes::LOCK);
                }
                Ok(Tried::Wrong { locked })
            }
        }
    }

    /// Writes `codes` and `calls` (pruned) with memory's lockout, then makes them memory's;
    /// if that fails, memory stays as it was.
    fn save(
        &self,
        inner: &mut Inner,
        mut codes: Vec<Code>,
        mut calls: Vec<SeenCall>,
        now: Timestamp,
    ) -> io::Result<()> {
        prune(&mut codes, &mut calls, now);
        inner.kept.write(&self.encode(inner, &codes, &calls), "nothing changed")?;
        inner.codes = codes;
        inner.calls = calls;
        Ok(())
    }

    /// Memory's state (pruned) as the file's bytes, after a change made in memory first.
    fn memory(&self, inner: &mut Inner, now: Timestamp) -> Vec<u8> {
        prune(&mut inner.codes, &mut inner.calls, now);
        self.encode(inner, &inner.codes, &inner.calls)
    }

    /// The file's bytes for `codes` and `calls` with memory's lockout; a code keeps the
    /// boot it was stored in while it waits for a synchronized clock.
    fn encode(&self, inner: &Inner, codes: &[Code], calls: &[SeenCall]) -> Vec<u8> {
        let boot_of = |id: &str| inner.untrusted.get(id).cloned().unwrap_or_else(|| self.boot.id.clone());
        let file = CodesFile {
            version: VERSION,
            codes: codes
                .iter()
                .map(|c| CodeV2 {
                    id: c.id.clone(),
                    code: c.digits.clone(),
                    label: c.label.clone(),
                    valid_until: c.valid_until,
                    uses_left: c.uses_left,
                    boot_id: boot_of(&c.id),
                })
                .collect(),
            failures: inner.lockout.failures.clone(),
            locked_until: inner.lockout.locked_until,
            calls: calls.to_vec(),
        };
        versioned::encode(&file)
    }
}

impl storage::Retry for CodeStore {
    fn retry_disk(&self, now: Timestamp) {
        let mut inner = lock(&self.inner);
        if inner.kept.stale || inner.kept.blocked.is_some() {
            let bytes = self.memory(&mut inner, floor(now));
            inner.kept.retry(|| bytes);
        }
    }
}

/// Drops spent codes, and keeps the newest [`MAX_CALLS`] calls of the last
/// [`CALL_MEMORY`]. A time ahead of `now` (the clock went back) is kept: forgetting early
/// would let a repeat count.
fn prune(codes: &mut Vec<Code>, calls: &mut Vec<SeenCall>, now: Timestamp) {
    codes.retain(|c| !c.is_spent(now));
    calls.retain(|c| c.time + CALL_MEMORY > now);
    let excess = calls.len().saturating_sub(MAX_CALLS);
    calls.drain(..excess);
}

/// Whether a call now would get the keypad prompt, from the file, read-only (for
/// `simulate`); an unreadable file means no codes, as for the server. Also why stored
/// codes would not work now, if so, as far as the file and this boot tell (a clock step
/// is known only to the running server, which `simulate` asks).
pub fn peek_offer(dir: &Path, boot: &Boot, window_open: bool, now: Timestamp) -> (bool, Option<String>) {
    let Ok(Loaded { codes, lockout, boots, .. }) = load(dir) else { return (false, None) };
    let now = floor(now);
    let (trusted, waiting): (Vec<Code>, Vec<Code>) = codes
        .into_iter()
        .filter(|c| !c.is_spent(now))
        .partition(|c| boot.trusts(boots.get(&c.id).cloned().flatten().as_deref()));
    let why = if (trusted.is_empty() && waiting.is_empty()) || window_open {
        None
    } else {
        pause_reason(&lockout, None, waiting.len(), now)
    };
    (codes::offer(window_open, &trusted, &lockout, now), why)
}

/// Why stored codes do not work at `now`, as the server and `simulate` say it: a lock
/// after wrong codes, a clock in doubt after a step (`clock`: only the running server
/// knows), or `waiting` codes from before a restart.
fn pause_reason(lockout: &Lockout, clock: Option<String>, waiting: usize, now: Timestamp) -> Option<String> {
    if lockout.is_locked(now) {
        // Minutes from now, not a clock time: the page and the API read it anywhere.
        let minutes = lockout.locked_until.map_or(0, |u| between(now, u).as_secs().div_ceil(60));
        return Some(format!("locked after {MAX_FAILURES} wrong codes, for {minutes} more minute(s)"));
    }
    if clock.is_some() || waiting == 0 {
        return clock;
    }
    Some(format!(
        "{waiting} code(s) from before a restart wait for a synchronized clock (timesyncd, chrony, ntpd or OpenWrt's ntpd; see docs/clock.md)"
    ))
}

/// Reads `dir/codes.json` (missing: no codes); any doubt is an error (the caller fails
/// closed to "no codes").
fn load(dir: &Path) -> Result<Loaded, Box<dyn Error>> {
    let Some(file) = versioned::read::<CodesFile>(dir, &SPEC)? else { return Ok(Loaded::default()) };
    if file.codes.len() > codes::MAX_ACTIVE
        || file.failures.len() > MAX_FAILURES
        || file.calls.len() > MAX_CALLS
    {
        return Err("more codes or failures than are ever stored".into());
    }
    let mut out = Vec::new();
    let mut boots = HashMap::new();
    for c in file.codes {
        let well_formed = c.code.len() == codes::CODE_DIGITS && c.code.bytes().all(|b| b.is_ascii_digit());
        if !well_formed
            || c.uses_left > codes::MAX_USES
            || codes::check_label(&c.label).is_err()
            || c.id.is_empty()
        {
            return Err(format!("malformed code entry {:?}", crate::util::loggable(&c.id)).into());
        }
        boots.insert(c.id.clone(), c.boot_id);
        out.push(Code {
            valid_until: floor(c.valid_until),
            id: c.id,
            digits: c.code,
            label: c.label,
            uses_left: c.uses_left,
        });
    }
    let failures = file.failures.into_iter().map(floor).collect();
    let locked_until = file.locked_until.map(floor);
    let mut calls = file.calls;
    for c in &mut calls {
        if c.call_sid.is_empty() || c.call_sid.chars().count() > MAX_CALL_SID_CHARS {
            return Err("malformed call entry".into());
        }
        c.time = floor(c.time);
    }
    Ok(Loaded { codes: out, lockout: Lockout { failures, locked_until }, boots, calls })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    fn this_boot() -> Boot {
        Boot { id: Some("boot-a".into()), clock_synced: false }
    }

    /// A store with a clock of its own, never synchronized.
    fn store(dir: &Path, boot: Boot, now: Timestamp) -> CodeStore {
        CodeStore::open(dir, boot, now, Arc::new(Clock::new(Box::new(|| false))), Health::new())
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("intercom-codes-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn new(uses: u32) -> NewCode {
        NewCode { label: "plumber".into(), minutes: 60, uses }
    }

    #[test]
    fn a_use_is_on_disk_and_survives_reopening() {
        let dir = tempdir("use");
        let now = Timestamp::now();
        let s = store(&dir, this_boot(), now);
        let c = s.add(&new(2), now).unwrap();
        assert_eq!(s.try_code(&c.digits, None, now).unwrap(), Tried::Right { label: "plumber".into() });
        let again = store(&dir, this_boot(), now);
        assert_eq!(again.active(now)[0].uses_left, 1);
        assert!(again.try_code(&c.digits, None, now).is_ok());
        let last = store(&dir, this_boot(), now);
        assert!(last.active(now).is_empty());
        assert_eq!(last.try_code(&c.digits, None, now).unwrap(), Tried::NotAccepted);
        let text = fs::read_to_string(dir.join(CODES_FILE)).unwrap();
        assert!(!text.contains(&c.digits), "used up codes are pruned from the file");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_call_spends_one_use_and_counts_one_wrong_code_across_restarts() {
        let dir = tempdir("calls");
        let now = Timestamp::now();
        let s = store(&dir, this_boot(), now);
        let c = s.add(&new(3), now).unwrap();
        let right = Tried::Right { label: "plumber".into() };
        for _ in 0..3 {
            assert_eq!(s.try_code(&c.digits, Some("CAone"), now).unwrap(), right);
        }
        assert_eq!(s.active(now)[0].uses_left, 2);
        let wrong = if c.digits == "000000" { "000001" } else { "000000" };
        for _ in 0..codes::MAX_FAILURES * 2 {
            assert_eq!(s.try_code(wrong, Some("CAwrong"), now).unwrap(), Tried::Wrong { locked: false });
        }
        drop(s);
        let s = store(&dir, this_boot(), now);
        assert_eq!(
            s.try_code(&c.digits, Some("CAone"), now).unwrap(),
            right,
            "the same answer after a restart"
        );
        assert_eq!(s.active(now)[0].uses_left, 2, "and no second use");
        for _ in 0..codes::MAX_FAILURES {
            assert_eq!(s.try_code(wrong, Some("CAwrong"), now).unwrap(), Tried::Wrong { locked: false });
        }
        assert!(s.offer(false, now), "one call's repeats never lock");
        assert_eq!(
            s.try_code(&c.digits, Some("CAtwo"), now).unwrap(),
            right,
            "another call uses another use"
        );
        assert_eq!(s.active(now)[0].uses_left, 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn at_most_twenty_unique_codes() {
        let dir = tempdir("full");
        let now = Timestamp::now();
        let s = store(&dir, this_boot(), now);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..codes::MAX_ACTIVE {
            let c = s.add(&new(1), now).unwrap();
            assert!(seen.insert(c.digits.clone()) && c.digits.len() == 6);
        }
        assert!(matches!(s.add(&new(1), now), Err(AddError::Full(_))));
        let id = s.active(now)[0].id.clone();
        assert!(s.remove(&id, now));
        assert!(!s.remove(&id, now));
        assert!(s.add(&new(1), now).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_means_no_codes() {
        let dir = tempdir("corrupt");
        fs::write(dir.join(CODES_FILE), b"{\"version\": 1, \"codes\": [tr").unwrap();
        let s = store(&dir, this_boot(), Timestamp::now());
        assert!(s.active(Timestamp::now()).is_empty());
        let kept: Vec<_> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(kept.iter().any(|n| n.starts_with("codes.json.bad-")), "{kept:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_use_that_cannot_be_saved_is_not_granted() {
        let dir = tempdir("blocked");
        let now = Timestamp::now();
        let s = store(&dir, this_boot(), now);
        let c = s.add(&new(1), now).unwrap();
        lock(&s.inner).kept.blocked = Some("disk gone".into());
        assert!(s.try_code(&c.digits, None, now).is_err(), "no unlock without the use on disk");
        assert_eq!(s.active(now)[0].uses_left, 1);
        assert!(matches!(s.add(&new(1), now), Err(AddError::Io(_))));
        // A wrong code still counts in memory, so a broken disk never lifts the lockout.
        for _ in 0..codes::MAX_FAILURES {
            assert!(matches!(s.try_code("abcdef", None, now).unwrap(), Tried::Wrong { .. }));
        }
        assert!(!s.offer(false, now));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_delete_the_disk_refuses_works_at_once_and_after_a_restart() {
        let dir = tempdir("revoke");
        let now = Timestamp::now();
        let health = Health::new();
        let s =
            CodeStore::open(&dir, this_boot(), now, Arc::new(Clock::new(Box::new(|| false))), health.clone());
        let deleted = s.add(&new(2), now).unwrap();
        let other = s.add(&new(2), now).unwrap();
        let obstruction = dir.join(format!(".{CODES_FILE}.tmp"));
        fs::create_dir_all(obstruction.join("x")).unwrap();
        assert!(s.remove(&deleted.id, now), "a delete always works");
        assert!(!matches!(s.try_code(&deleted.digits, None, now).unwrap(), Tried::Right { .. }));
        assert!(s.try_code(&other.digits, None, now).is_err(), "a use the disk refuses opens nothing");
        assert!(health.problem().unwrap().contains("a restart finds none"), "{:?}", health.problem());

        // Killed now, the next start finds no codes; the file is kept, not deleted.
        let restarted = store(&dir, this_boot(), now);
        assert!(restarted.active(now).is_empty());
        assert_eq!(restarted.try_code(&deleted.digits, None, now).unwrap(), Tried::NotAccepted);
        let aside = || {
            fs::read_dir(&dir)
                .unwrap()
                .filter(|e| {
                    e.as_ref().unwrap().file_name().to_string_lossy().starts_with("codes.json.unsaved-")
                })
                .count()
        };
        assert_eq!(aside(), 1);

        // Once the disk takes writes, memory's state replaces the renamed file.
        fs::remove_dir_all(&obstruction).unwrap();
        storage::Retry::retry_disk(&s, now);
        assert!(health.problem().is_none());
        let active = store(&dir, this_boot(), now).active(now);
        assert_eq!(active.len(), 1);
        assert!(active[0].id == other.id && active[0].uses_left == 2, "no use was lost or made up");
        assert_eq!(aside(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_lockout_survives_reopening() {
        let dir = tempdir("lock");
        let now = Timestamp::now();
        let s = store(&dir, this_boot(), now);
        let c = s.add(&new(1), now).unwrap();
        let wrong = if c.digits == "000000" { "000001" } else { "000000" };
        for i in 1..=codes::MAX_FAILURES {
            assert_eq!(
                s.try_code(wrong, None, now).unwrap(),
                Tried::Wrong { locked: i == codes::MAX_FAILURES }
            );
        }
        let s = store(&dir, this_boot(), now);
        assert_eq!(s.try_code(&c.digits, None, now).unwrap(), Tried::NotAccepted);
        assert!(!s.offer(false, now));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_code_works_while_the_clock_is_in_doubt_after_a_step_either_way() {
        let dir = tempdir("clock-back");
        let now = Timestamp::now();
        let s = store(&dir, this_boot(), now);
        let code = s.add(&NewCode { label: "plumber".into(), minutes: 60, uses: 2 }, now).unwrap();
        // Before a restart the clock read two hours later: the code ended an hour ago.
        s.clock.saw_earlier(now + Duration::from_secs(7200));
        let back = now + Duration::from_secs(60); // then the clock steps back two hours
        assert!(!s.offer(false, back));
        assert_eq!(s.try_code(&code.digits, None, back).unwrap(), Tried::NotAccepted);
        assert!(
            s.why_paused(back).is_some_and(|why| why.contains("1h 59m back")),
            "{:?}",
            s.why_paused(back)
        );

        // A clock that jumps forward ten minutes: the code is still valid by it, but waits.
        let s = store(&dir, this_boot(), now);
        assert!(s.offer(false, now));
        let ahead = now + Duration::from_secs(600);
        assert!(!s.offer(false, ahead));
        assert_eq!(s.try_code(&code.digits, None, ahead).unwrap(), Tried::NotAccepted);
        assert!(
            s.why_paused(ahead).is_some_and(|why| why.contains("10m forward")),
            "{:?}",
            s.why_paused(ahead)
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_code_deleted_while_the_clock_reads_behind_never_works_again() {
        let dir = tempdir("rm-clock-back");
        let now = Timestamp::now();
        let s = store(&dir, this_boot(), now);
        let week = NewCode { label: "sitter".into(), minutes: codes::MAX_MINUTES, uses: 2 };
        let code = s.add(&week, now).unwrap();
        // The clock steps back two minutes: the week-long code now reads as longer than a
        // week (not active), but it is still stored and would work once the clock is right.
        let back = now - Duration::from_secs(120);
        assert!(s.remove(&code.id, back), "the resident's delete must take");
        let later = now + Duration::from_secs(60);
        assert_eq!(s.try_code(&code.digits, None, later).unwrap(), Tried::NotAccepted);
        let reopened = store(&dir, this_boot(), later);
        assert_eq!(reopened.try_code(&code.digits, None, later).unwrap(), Tried::NotAccepted);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_code_from_another_boot_waits_for_a_synced_clock_and_keeps_its_boot() {
        let dir = tempdir("other-boot");
        let now = Timestamp::now();
        let s = store(&dir, this_boot(), now);
        let old = s.add(&NewCode { label: "plumber".into(), minutes: 60, uses: 2 }, now).unwrap();
        drop(s);
        let next_boot = Boot { id: Some("boot-b".into()), clock_synced: false };
        let s = store(&dir, next_boot.clone(), now);
        assert!(!s.offer(false, now));
        assert_eq!(s.try_code(&old.digits, None, now).unwrap(), Tried::NotAccepted);
        // A new code is saved beside it; the old one keeps the boot it came from.
        let new = s.add(&NewCode { label: "courier".into(), minutes: 60, uses: 1 }, now).unwrap();
        assert!(s.offer(false, now));
        drop(s);
        let s = store(&dir, next_boot, now);
        // Compared with the trusted codes only, so it is just a wrong code now.
        assert_eq!(s.try_code(&old.digits, None, now).unwrap(), Tried::Wrong { locked: false });
        assert!(matches!(s.try_code(&new.digits, None, now).unwrap(), Tried::Right { .. }));
        let synced = store(&dir, Boot { id: Some("boot-c".into()), clock_synced: true }, now);
        assert!(matches!(synced.try_code(&old.digits, None, now).unwrap(), Tried::Right { .. }));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn remembered_calls_are_bounded_in_count_and_age() {
        let at = |secs: i64| Timestamp::from_second(1_000_000 + secs).unwrap();
        let call = |n: i64| SeenCall { call_sid: format!("CA{n}"), time: at(n), used: None };
        let mut calls: Vec<_> = (0..MAX_CALLS as i64 + 50).map(call).collect();
        prune(&mut Vec::new(), &mut calls, at(MAX_CALLS as i64));
        assert_eq!(calls.len(), MAX_CALLS);
        assert_eq!(calls[0].call_sid, "CA50", "the oldest go first");
        prune(&mut Vec::new(), &mut calls, at(60) + CALL_MEMORY);
        assert_eq!(calls[0].call_sid, "CA61", "a day later they are forgotten");
    }
}
