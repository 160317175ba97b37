//! The event history: `state_dir/events.jsonl`, one JSON [`Record`] per line for every
//! call decision and every window change, newest last. This module owns that file (and
//! its one rotated predecessor, `events.jsonl.1`); `state.rs` owns the rest of
//! `state_dir`. It only stores and reads: what to record is the listeners' and the
//! state's business, and `GET /api/events` is the control listener's.
//!
//! Decisions (the issues left them open):
//! - Group commit: an append queues its line and waits until it is on disk. Whoever finds
//!   no write in progress becomes the leader: it takes every queued line, writes them with
//!   one `write` on the `O_APPEND` file and one `fdatasync`, and wakes the others. Lines
//!   queued meanwhile go out in the next batch. So concurrent calls share one flush, and
//!   durability is as before: nobody returns (so no call is answered) before its own
//!   line is on disk, and a power cut loses at most lines whose callers still wait.
//!   Window changes take the same path (the state's observer appends).
//! - The batch is written on a thread of its own, and every caller (the one that started
//!   it too) waits at most [`APPEND_WAIT`]: a disk that hangs (a dying SD card, a stuck
//!   NFS server, a FIFO where the log should be) must not stop calls. A caller whose line
//!   is not on disk by then gets [`Outcome::Pending`]; the webhook then answers without
//!   unlocking. While a batch hangs, later lines queue behind it (no second writer piles
//!   up), and [`History::stuck_for`] tells the watchdog to have systemd restart us.
//! - A disk that fails (full, read-only, gone) never stops a call: the failure goes to
//!   [`Health`] (logged once, shown on the page), the caller gets the error and answers
//!   anyway, and the next append or the disk watcher tries again.
//! - A torn last line (power cut mid-write, disk full) is skipped when reading, with a
//!   warning at start; the next write first ends it with a newline, so it never glues
//!   onto a good record.
//! - Bounded on disk: when a batch would push the file past [`ROTATE_AT_BYTES`], its lines
//!   move to `events.jsonl.1` and a new file starts. At most twice that (plus one batch)
//!   is ever on disk.
//! - Noise never pushes out what the resident needs: rotation keeps the old file's
//!   records that are not a stranger's (`rotation.rs`).
//! - Order is the order of appends, not of timestamps, so a clock step on a Pi without a
//!   real-time clock cannot shuffle the history.
//! - Reading copies both files under the writer lock (a few hundred KiB at most) and
//!   parses outside it, so a history request delays a batch by a file read at most.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::model::record::Record;
use crate::store::rotation;
use crate::store::storage::{self, context, Health};

pub const EVENTS_FILE: &str = "events.jsonl";
pub const ROTATED_FILE: &str = "events.jsonl.1";
/// One file's bound. A record is about 200 bytes, so this holds over a thousand events
/// (months of a normal door), and two files stay well under a megabyte on a small SD card.
pub const ROTATE_AT_BYTES: u64 = 256 * 1024;
/// How long a call waits for its record to reach the disk. A healthy SD card flushes in
/// milliseconds; Twilio gives up on a webhook after 15 s, and the answer must still reach
/// it (as a forward) with time to spare on a loaded Pi, so a call never waits longer.
pub const APPEND_WAIT: Duration = Duration::from_secs(3);
/// How long a batch may hang before the watchdog's self-check fails. Far beyond any
/// healthy flush (even an SD card's multi-second garbage collection) so a slow disk is
/// not restarted; a restart reopens the file and is the only cure for a wedged write.
pub const WEDGED_AFTER: Duration = Duration::from_secs(60);
/// The part of the service whose disk problems this module reports to [`Health`].
const PART: &str = "history";

/// What became of an append, for callers that must not act on a record that is not yet on
/// disk (an unlock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// On disk.
    Written,
    /// The write failed (reported to [`Health`]); the call goes on unrecorded.
    Failed,
    /// Not on disk after [`APPEND_WAIT`]: the disk hangs. It may still land later.
    Pending,
}

/// Why an append did not reach the disk.
#[derive(Debug)]
pub enum AppendError {
    /// The write failed (reported to [`Health`]).
    Failed(io::Error),
    /// Not on disk after [`APPEND_WAIT`]: the line stays queued and may land later.
    Pending,
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            AppendError::Failed(e) => write!(f, "{e}"),
            AppendError::Pending => write!(f, "the event log did not reach the disk within {APPEND_WAIT:?}"),
        }
    }
}

/// Hears every record after it is on disk (the notifier); must not block.
pub type Sink = Box<dyn Fn(&Record) + Send + Sync>;

pub struct History {
    dir: PathBuf,
    queue: Mutex<Queue>,
    /// Signalled when a batch is done.
    written: Condvar,
    writer: Mutex<Writer>,
    sink: Option<Sink>,
    health: Arc<Health>,
}

/// Lines waiting for the disk. Records are numbered in the order they were queued; all
/// numbers up to `done` are written (or failed), the rest are in `pending`.
#[derive(Default)]
struct Queue {
    pending: Vec<u8>,
    queued: u64,
    done: u64,
    /// A leader is writing a batch.
    writing: bool,
    /// Since when the batch being written has been in progress (for the watchdog).
    writing_since: Option<Instant>,
    /// Records whose batch failed, with why; each waiter takes its own out.
    failed: HashMap<u64, (io::ErrorKind, String)>,
    /// Records whose caller stopped waiting: nobody takes their failure out.
    gave_up: HashSet<u64>,
    /// Batches written: with `queued`, how many lines share a flush (the debug log says).
    batches: u64,
}

struct Writer {
    file: Option<File>,
    size: u64,
    /// The file may end in a partial line: start the next write with a newline.
    torn: bool,
}

impl History {
    /// Opens the log in `dir` and warns about unreadable lines. Never fails: a log that
    /// cannot be opened is reported to `health` and tried again by each append and by
    /// the disk watcher.
    pub fn open(dir: &Path, sink: Option<Sink>, health: Arc<Health>) -> Arc<History> {
        let history = History {
            dir: dir.to_path_buf(),
            queue: Mutex::new(Queue::default()),
            written: Condvar::new(),
            writer: Mutex::new(Writer::closed()),
            sink,
            health,
        };
        if let Err(e) = rotation::finish(&history.dir, EVENTS_FILE, ROTATED_FILE) {
            log::warn!("could not finish an interrupted rotation of the event log: {e}");
        }
        let opened = history.lock_writer().ensure_open(&history.path(EVENTS_FILE));
        match opened.and_then(|()| history.read_bytes()) {
            Ok(bytes) => {
                let (_, bad) = parse(&bytes, usize::MAX);
                if bad > 0 {
                    log::warn!(
                        "the event log has {bad} unreadable line(s) (a power cut mid-write?); they are skipped"
                    );
                }
            }
            Err(e) => history.fail(&e),
        }
        Arc::new(history)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        // A panic mid-write leaves at worst a torn line, which reading skips.
        crate::util::lock(&self.writer)
    }

    fn fail(&self, e: &io::Error) {
        self.health
            .fail(PART, format!("the history cannot be written ({e}): calls are answered but not recorded"));
    }

    /// Appends the record (on disk when this returns [`Outcome::Written`]), then hands it
    /// to the sink. A failed or hanging write does not stop the caller: the door must not
    /// depend on the history (but an unlock must, see the webhook).
    pub fn record(self: &Arc<Self>, record: &Record) -> Outcome {
        let outcome = match self.append(record) {
            Ok(()) => Outcome::Written,
            Err(AppendError::Pending) => Outcome::Pending,
            Err(e) => {
                log::debug!("{} not recorded: {e}", record.event.name());
                Outcome::Failed
            }
        };
        // Only what is on disk (or will never be): a pending unlock is answered as a
        // forward, so nobody must be told the door opened.
        if let (Some(sink), false) = (&self.sink, outcome == Outcome::Pending) {
            sink(record);
        }
        outcome
    }

    /// Queues the record and returns once it is on disk, its write failed, or
    /// [`APPEND_WAIT`] passed ([`AppendError::Pending`]). If nobody is writing, starts a
    /// batch on its own thread.
    pub fn append(self: &Arc<Self>, record: &Record) -> Result<(), AppendError> {
        let mut line = serde_json::to_vec(record).map_err(|e| AppendError::Failed(io::Error::other(e)))?;
        line.push(b'\n');
        let deadline = Instant::now() + APPEND_WAIT;
        let mut q = crate::util::lock(&self.queue);
        q.pending.extend_from_slice(&line);
        q.queued += 1;
        let mine = q.queued;
        while q.done < mine {
            if !q.writing {
                q = self.start_batch(q);
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                q.gave_up.insert(mine);
                return Err(AppendError::Pending);
            }
            q = self.written.wait_timeout(q, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        match q.failed.remove(&mine) {
            Some((kind, message)) => Err(AppendError::Failed(io::Error::new(kind, message))),
            None => Ok(()),
        }
    }

    /// Takes every queued line and writes them on a new thread, so that a write that
    /// hangs in the kernel holds up no caller (each waits at most [`APPEND_WAIT`]).
    fn start_batch<'q>(self: &'q Arc<Self>, mut q: MutexGuard<'q, Queue>) -> MutexGuard<'q, Queue> {
        let batch = std::mem::take(&mut q.pending);
        let mut leader = Leader { history: self.clone(), first: q.done + 1, last: q.queued, result: None };
        q.writing = true;
        q.writing_since = Some(Instant::now());
        drop(q);
        let spawned = thread::Builder::new().name("history-write".into()).spawn(move || {
            leader.result = Some(leader.history.write_batch(&batch));
            drop(leader); // publishes the result and wakes the waiters
        });
        // Not started: the closure and its leader are dropped, so the batch counts as failed.
        if let Err(e) = spawned {
            log::error!("cannot start a thread to write the event log ({e}); these events are not recorded");
        }
        crate::util::lock(&self.queue)
    }

    /// How long the batch being written has hung, if one is being written.
    pub fn stuck_for(&self) -> Option<Duration> {
        crate::util::lock(&self.queue).writing_since.map(|s| s.elapsed())
    }

    /// One write and one flush for the whole batch, rotating first if it would not fit.
    fn write_batch(&self, batch: &[u8]) -> io::Result<()> {
        let mut w = self.lock_writer();
        let path = self.path(EVENTS_FILE);
        let result = (|| {
            w.ensure_open(&path)?;
            if w.size > 0 && w.size + batch.len() as u64 > ROTATE_AT_BYTES {
                w.file = None;
                rotation::rotate(&self.dir, EVENTS_FILE, ROTATED_FILE, ROTATE_AT_BYTES)?;
                w.torn = false; // the torn line went with the old file
                w.ensure_open(&path)?;
            }
            let torn = w.torn;
            let file = w.file.as_mut().ok_or_else(|| io::Error::other("the event log is not open"))?;
            if torn {
                file.write_all(b"\n").map_err(|e| context(e, "write", &path))?;
            }
            file.write_all(batch).map_err(|e| context(e, "write", &path))?;
            file.sync_data().map_err(|e| context(e, "flush", &path))?;
            w.size += batch.len() as u64 + u64::from(torn);
            w.torn = false;
            Ok(())
        })();
        match &result {
            Ok(()) => self.health.clear(PART),
            Err(e) => {
                // Unknown how much landed: reopen, and end whatever is there first.
                *w = Writer { torn: true, ..Writer::closed() };
                self.fail(e);
            }
        }
        result
    }

    /// The newest `limit` records, newest first, skipping lines that do not parse.
    pub fn newest(&self, limit: usize) -> io::Result<Vec<Record>> {
        let (records, bad) = parse(&self.read_bytes()?, limit);
        if bad > 0 {
            log::debug!("skipped {bad} unreadable event log line(s)");
        }
        Ok(records)
    }

    /// The time of the newest record, if it has one (for the state's clock check).
    pub fn newest_time(&self) -> Option<Timestamp> {
        Some(self.newest(1).ok()?.pop()?.time)
    }

    /// The old file, then the current one, copied under the lock so a rotation or an
    /// append in between cannot tear what we read.
    fn read_bytes(&self) -> io::Result<Vec<u8>> {
        let _w = self.lock_writer();
        let mut bytes = Vec::new();
        for name in [ROTATED_FILE, EVENTS_FILE] {
            let path = self.path(name);
            match File::open(&path) {
                Ok(mut f) => {
                    f.read_to_end(&mut bytes).map_err(|e| context(e, "read", &path))?;
                    if bytes.last().is_some_and(|b| *b != b'\n') {
                        bytes.push(b'\n');
                    }
                }
                // No file, or no directory for it: nothing was recorded.
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(storage::ENOTDIR) => {}
                Err(e) => return Err(context(e, "read", &path)),
            }
        }
        Ok(bytes)
    }
}

impl storage::Retry for History {
    /// Reopens the log and ends a torn line: a real write and flush that tells whether
    /// the disk takes data again, without waiting for the next call.
    fn retry_disk(&self, _now: Timestamp) {
        if !self.health.has(PART) {
            return;
        }
        let mut w = self.lock_writer();
        let path = self.path(EVENTS_FILE);
        let result = w.ensure_open(&path).and_then(|()| match (w.torn, w.file.as_mut()) {
            (true, Some(f)) => {
                f.write_all(b"\n").and_then(|()| f.sync_data()).map_err(|e| context(e, "write", &path))
            }
            _ => Ok(()),
        });
        match result {
            Ok(()) => {
                w.size += u64::from(w.torn);
                w.torn = false;
                self.health.clear(PART);
            }
            Err(_) => *w = Writer { torn: true, ..Writer::closed() },
        }
    }
}

/// The batch's leader: when it is dropped (normally or by a panic in the write), the
/// batch counts as done, failed unless the write succeeded, and the waiters wake.
struct Leader {
    history: Arc<History>,
    first: u64,
    last: u64,
    result: Option<io::Result<()>>,
}

impl Drop for Leader {
    fn drop(&mut self) {
        let mut q = crate::util::lock(&self.history.queue);
        let failure = match &self.result {
            Some(Ok(())) => None,
            Some(Err(e)) => Some((e.kind(), e.to_string())),
            None => {
                Some((io::ErrorKind::Other, "the event log writer panicked or never started".to_string()))
            }
        };
        for n in self.first..=self.last {
            if !q.gave_up.remove(&n) {
                if let Some(failure) = &failure {
                    q.failed.insert(n, failure.clone());
                }
            }
        }
        q.done = self.last;
        q.writing = false;
        q.writing_since = None;
        q.batches += 1;
        log::trace!("event log: {} lines in {} flushes", q.done, q.batches);
        self.history.written.notify_all();
    }
}

impl Writer {
    fn closed() -> Writer {
        Writer { file: None, size: 0, torn: false }
    }

    fn ensure_open(&mut self, path: &Path) -> io::Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        let mut f = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| context(e, "open", path))?;
        let size = f.metadata()?.len();
        if size > 0 {
            let mut last = [0u8];
            f.seek(SeekFrom::End(-1))?;
            f.read_exact(&mut last)?;
            self.torn |= last[0] != b'\n';
        }
        self.size = size;
        self.file = Some(f);
        Ok(())
    }
}

/// Parses JSON lines, newest (last) first, up to `limit`. Returns the records and how
/// many non-empty lines did not parse.
fn parse(bytes: &[u8], limit: usize) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut bad = 0;
    for line in bytes.split(|b| *b == b'\n').rev() {
        if records.len() >= limit {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => records.push(r),
            Err(_) => bad += 1,
        }
    }
    (records, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::EventKind;
    use std::fs;
    use std::time::Duration;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("intercom-events-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn rec(n: u64) -> Record {
        Record::new(
            Timestamp::UNIX_EPOCH + Duration::from_secs(n),
            EventKind::CallForwarded,
            format!("call {n}"),
        )
    }

    #[test]
    fn newest_first_with_limit_and_fields_left_out_when_empty() {
        let dir = tempdir("order");
        let log = History::open(&dir, None, Health::new());
        for n in 0..5 {
            log.append(&rec(n)).unwrap();
        }
        let got: Vec<_> = log.newest(3).unwrap().into_iter().map(|r| r.message).collect();
        assert_eq!(got, ["call 4", "call 3", "call 2"]);
        let line = fs::read_to_string(dir.join(EVENTS_FILE)).unwrap();
        assert_eq!(
            line.lines().next().unwrap(),
            r#"{"time":"1970-01-01T00:00:00Z","event":"call_forwarded","message":"call 0"}"#
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_line_is_skipped_and_ended_before_the_next_append() {
        let dir = tempdir("torn");
        let good = serde_json::to_string(&rec(1)).unwrap();
        fs::write(dir.join(EVENTS_FILE), format!("{good}\n{{\"time\":\"1970-01-01T00:0")).unwrap();
        let log = History::open(&dir, None, Health::new());
        assert_eq!(log.newest(10).unwrap(), [rec(1)]);
        log.append(&rec(2)).unwrap();
        assert_eq!(log.newest(10).unwrap(), [rec(2), rec(1)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_keeps_one_old_file_and_bounds_the_disk() {
        let dir = tempdir("rotate");
        let log = History::open(&dir, None, Health::new());
        // Big records, so a few hundred appends (each one flushed) cross the bound thrice.
        let big = |n: u64| Record { call_sid: Some("x".repeat(4000)), ..rec(n) };
        let line_len = serde_json::to_vec(&big(0)).unwrap().len() as u64 + 1;
        let per_file = ROTATE_AT_BYTES / line_len;
        let total = per_file * 3 + 7;
        let started = std::time::Instant::now();
        for n in 0..total {
            log.append(&big(n)).unwrap();
        }
        eprintln!("append + sync_data: {:?} per record", started.elapsed() / total as u32);
        let size = |name| fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(size(EVENTS_FILE) <= ROTATE_AT_BYTES && size(ROTATED_FILE) <= ROTATE_AT_BYTES);
        assert!(size(ROTATED_FILE) > ROTATE_AT_BYTES - line_len);
        let all = log.newest(usize::MAX).unwrap();
        assert_eq!(all[0], big(total - 1));
        // Everything in both files, in order, without gaps.
        for pair in all.windows(2) {
            assert_eq!(pair[0].message, format!("call {}", pair[1].message[5..].parse::<u64>().unwrap() + 1));
        }
        assert!(all.len() as u64 > per_file);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_drops_strangers_before_the_residents_records() {
        let dir = tempdir("noise");
        let log = History::open(&dir, None, Health::new());
        let unlock =
            |n: u64| Record::new(Timestamp::UNIX_EPOCH, EventKind::CallUnlocked, format!("unlock {n}"));
        let reject = |n: u64| Record {
            call_sid: Some("x".repeat(2000)),
            ..Record::new(Timestamp::UNIX_EPOCH, EventKind::CallRejected, format!("reject {n}"))
        };
        for n in 0..10 {
            log.append(&unlock(n)).unwrap();
        }
        // Enough rejects to rotate both files over several times.
        let per_file = ROTATE_AT_BYTES / 2000;
        for n in 0..per_file * 5 {
            log.append(&reject(n)).unwrap();
        }
        let all = log.newest(usize::MAX).unwrap();
        let unlocks: Vec<_> = all.iter().filter(|r| r.event == EventKind::CallUnlocked).collect();
        assert_eq!(unlocks.len(), 10, "every unlock is still there");
        assert_eq!(unlocks[0].message, "unlock 9");
        assert_eq!(all[0], reject(per_file * 5 - 1), "and the newest rejects");
        let size = |name| fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(size(EVENTS_FILE) <= ROTATE_AT_BYTES && size(ROTATED_FILE) <= ROTATE_AT_BYTES);
        // A power cut after the old file was written but before the current one went.
        drop(log);
        let current = fs::read(dir.join(EVENTS_FILE)).unwrap();
        let mut old = fs::read(dir.join(ROTATED_FILE)).unwrap();
        old.extend_from_slice(&current);
        fs::write(dir.join(ROTATED_FILE), &old).unwrap();
        let log = History::open(&dir, None, Health::new());
        assert_eq!(log.newest(usize::MAX).unwrap(), all, "each record once");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_appends_all_land_in_order_and_share_flushes() {
        let dir = tempdir("group");
        let log = History::open(&dir, None, Health::new());
        const THREADS: u64 = 16;
        const EACH: u64 = 40;
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for n in 0..EACH {
                        let r = Record { call_sid: Some(format!("CA{t}-{n}")), ..rec(t * 1000 + n) };
                        log.append(&r).unwrap();
                        // On disk when append returns: visible to a fresh read.
                        let text = fs::read_to_string(dir_of(&log).join(EVENTS_FILE)).unwrap();
                        assert!(text.contains(&format!("\"CA{t}-{n}\"")));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let all = log.newest(usize::MAX).unwrap();
        assert_eq!(all.len() as u64, THREADS * EACH);
        for t in 0..THREADS {
            let mine: Vec<_> = all
                .iter()
                .rev()
                .filter(|r| r.call_sid.as_ref().unwrap().starts_with(&format!("CA{t}-")))
                .collect();
            assert_eq!(mine.len() as u64, EACH);
            let order: Vec<u64> = mine
                .iter()
                .map(|r| r.call_sid.as_ref().unwrap()[format!("CA{t}-").len()..].parse().unwrap())
                .collect();
            assert_eq!(order, (0..EACH).collect::<Vec<_>>(), "each thread's records in its order");
        }
        let q = crate::util::lock(&log.queue);
        eprintln!("{} records in {} batches", THREADS * EACH, q.batches);
        assert!(q.batches <= THREADS * EACH && q.failed.is_empty() && q.pending.is_empty());
        drop(q);
        fs::remove_dir_all(&dir).unwrap();
    }

    fn dir_of(log: &History) -> PathBuf {
        log.dir.clone()
    }

    #[test]
    fn a_log_that_cannot_be_written_is_reported_and_retried() {
        let dir = tempdir("blocked");
        fs::create_dir_all(dir.join(EVENTS_FILE).join("x")).unwrap();
        let health = Health::new();
        let log = History::open(&dir, None, health.clone());
        assert!(health.problem().unwrap().contains("events.jsonl"), "{:?}", health.problem());
        let err = log.append(&rec(1)).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
        storage::Retry::retry_disk(&*log, Timestamp::now());
        assert!(health.has(PART), "still blocked");
        fs::remove_dir_all(dir.join(EVENTS_FILE)).unwrap();
        storage::Retry::retry_disk(&*log, Timestamp::now());
        assert_eq!(health.problem(), None);
        log.append(&rec(2)).unwrap();
        assert_eq!(log.newest(10).unwrap(), [rec(2)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hanging_write_holds_up_no_caller_longer_than_the_bound() {
        let dir = tempdir("hang");
        let log = History::open(&dir, None, Health::new());
        let hang = log.lock_writer(); // the batch's writer blocks here as on a stuck disk
        let started = Instant::now();
        let err = log.append(&rec(1)).unwrap_err();
        assert!(matches!(err, AppendError::Pending), "{err}");
        assert!(started.elapsed() < APPEND_WAIT * 2, "{:?}", started.elapsed());
        assert!(log.stuck_for().is_some());
        // A later caller queues behind the stuck batch and gives up in time too.
        assert_eq!(log.record(&rec(2)), Outcome::Pending);
        drop(hang);
        // The disk comes back: the stuck lines land, then new ones, in order.
        assert_eq!(log.record(&rec(3)), Outcome::Written);
        assert_eq!(log.newest(10).unwrap(), [rec(3), rec(2), rec(1)]);
        assert_eq!(log.stuck_for(), None);
        let q = crate::util::lock(&log.queue);
        assert!(q.gave_up.is_empty() && q.failed.is_empty(), "nothing left behind");
        drop(q);
        fs::remove_dir_all(&dir).unwrap();
    }
}
