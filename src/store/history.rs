//! The event history: `state_dir/events.jsonl`, one JSON [`Record`] per line for every
//! call decision and every window change, newest last. This module owns that file (and
//! its one rotated predecessor, `events.jsonl.1`); `state.rs` owns the rest of
//! `state_dir`. It only stores and reads: what to record is the listeners' and the
//! state's business, and `GET /api/events` is the control listener's.
//!
//! Decisions (the issues left them open):
//! - Group commit: one long-lived writer thread, fed by a bounded queue. An append queues
//!   its line and waits for the writer's answer. The writer takes the first line queued
//!   and everything queued behind it, writes them with one `write` on the `O_APPEND` file
//!   and one `fdatasync`, then posts the batch's outcome and wakes its callers at once
//!   (lines are numbered as queued, so a batch is a range of them); lines queued meanwhile go out
//!   in the next batch. So concurrent calls share one flush, and nobody returns (so no
//!   call is answered) before its own line is on disk: a power cut loses at most lines
//!   whose callers still wait. Window changes take the same path (the state's observer
//!   appends).
//! - Every caller waits at most [`APPEND_WAIT`]: a disk that hangs (a dying SD card, a
//!   stuck NFS server, a FIFO where the log should be) must not stop calls. A caller whose
//!   line is not on disk by then gets [`Outcome::Pending`]; the webhook then answers
//!   without unlocking. While the writer hangs, later lines queue behind it (up to
//!   [`QUEUE_LINES`]; beyond, a caller gets `Pending` at once and its line is not
//!   written), and [`History::stuck_for`] tells the watchdog to have systemd restart us.
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

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::RangeInclusive;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::model::record::Record;
use crate::store::rotation;
use crate::store::storage::{self, context, Health};
use crate::util::lock;
use crate::util::ratelog::RateLog;

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
/// Lines waiting for the writer. A waiting caller has one line queued, so a working disk
/// never lets this fill (a door sees a few calls at once, the bench 256); it bounds what
/// a hanging disk holds in memory until the watchdog restarts us.
pub const QUEUE_LINES: usize = 1024;
/// Outcomes of the newest batches kept for their callers. A caller finds its own among the
/// last few; one whose batch has left (it was not scheduled while this many batches were
/// written) is answered as pending.
const KEPT_BATCHES: usize = 1024;
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
    /// Not on disk after [`APPEND_WAIT`] (the line stays queued and may land later), or
    /// no room to queue it behind a hanging disk (it is dropped).
    Pending,
}

/// Hears every record after it is on disk (the notifier); must not block.
pub type Sink = Box<dyn Fn(&Record) + Send + Sync>;

pub struct History {
    disk: Arc<Disk>,
    /// To the writer thread (which ends when the history is dropped), with the next line's
    /// ticket: lines are numbered in queue order, so a batch is a range of tickets.
    queue: Mutex<(SyncSender<Line>, u64)>,
    sinks: Vec<Sink>,
    full_log: RateLog,
}

/// A line for the disk, numbered.
struct Line {
    bytes: Vec<u8>,
    ticket: u64,
}

/// A written batch: its lines' tickets and the outcome (an error as its kind and text: one
/// `io::Error` cannot go to every caller of a batch).
type Batch = (RangeInclusive<u64>, Result<(), (io::ErrorKind, String)>);

/// The files, shared by the writer thread and the readers.
struct Disk {
    dir: PathBuf,
    writer: Mutex<Writer>,
    /// Since when the writer has been on its batch (for the watchdog).
    writing_since: Mutex<Option<Instant>>,
    /// The newest batches' outcomes, and where their callers wait: one wake for a whole
    /// batch. (A wake per caller let the woken callers take both cores before the writer
    /// reached the next batch: the bench's p99 was 2.5 times as long.)
    written: Mutex<VecDeque<Batch>>,
    flushed: Condvar,
    health: Arc<Health>,
}

#[derive(Default)]
struct Writer {
    file: Option<File>,
    size: u64,
    /// The file may end in a partial line: start the next write with a newline.
    torn: bool,
}

impl History {
    /// Opens the log in `dir`, warns about unreadable lines and starts the writer. Never
    /// fails: a log that cannot be opened is reported to `health` and tried again by each
    /// append and by the disk watcher.
    pub fn open(dir: &Path, sinks: Vec<Sink>, health: Arc<Health>) -> Arc<History> {
        History::with_queue(dir, sinks, health, QUEUE_LINES)
    }

    fn with_queue(dir: &Path, sinks: Vec<Sink>, health: Arc<Health>, lines: usize) -> Arc<History> {
        let disk = Arc::new(Disk {
            dir: dir.to_path_buf(),
            writer: Mutex::new(Writer::default()),
            writing_since: Mutex::new(None),
            written: Mutex::new(VecDeque::new()),
            flushed: Condvar::new(),
            health,
        });
        if let Err(e) = rotation::finish(&disk.dir, EVENTS_FILE, ROTATED_FILE) {
            log::warn!("could not finish an interrupted rotation of the event log: {e}");
        }
        let opened = lock(&disk.writer).ensure_open(&disk.dir.join(EVENTS_FILE));
        match opened.and_then(|()| disk.read_bytes()) {
            Ok(bytes) => {
                let (_, bad) = parse(&bytes, usize::MAX);
                if bad > 0 {
                    log::warn!(
                        "the event log has {bad} unreadable line(s) (a power cut mid-write?); they are skipped"
                    );
                }
            }
            Err(e) => disk.fail(&e),
        }
        let (queue, lines) = mpsc::sync_channel(lines);
        let writer = disk.clone();
        // Not started: every append finds the queue closed and fails.
        if let Err(e) = thread::Builder::new().name("history-write".into()).spawn(move || writer.run(&lines))
        {
            disk.fail(&io::Error::other(format!("no writer thread: {e}")));
        }
        Arc::new(History { disk, queue: Mutex::new((queue, 0)), sinks, full_log: RateLog::new() })
    }

    /// Appends the record (on disk when this returns [`Outcome::Written`]), then hands it
    /// to the sinks. A failed or hanging write does not stop the caller: the door must not
    /// depend on the history (but an unlock must, see the webhook).
    pub fn record(&self, record: &Record) -> Outcome {
        let outcome = match self.append(record) {
            Ok(()) => Outcome::Written,
            Err(AppendError::Pending) => Outcome::Pending,
            Err(AppendError::Failed(e)) => {
                log::debug!("{} not recorded: {e}", record.event.name());
                Outcome::Failed
            }
        };
        // Only what is on disk (or will never be): a pending unlock is answered as a
        // forward, so nobody must be told the door opened.
        if outcome != Outcome::Pending {
            self.sinks.iter().for_each(|sink| sink(record));
        }
        outcome
    }

    /// Queues the record and returns once it is on disk, its write failed, or
    /// [`APPEND_WAIT`] passed ([`AppendError::Pending`]).
    pub fn append(&self, record: &Record) -> Result<(), AppendError> {
        let mut bytes = serde_json::to_vec(record).map_err(|e| AppendError::Failed(io::Error::other(e)))?;
        bytes.push(b'\n');
        let stopped = || AppendError::Failed(io::Error::other("the event log's writer thread is gone"));
        let ticket = {
            let mut queue = lock(&self.queue);
            let ticket = queue.1;
            match queue.0.try_send(Line { bytes, ticket }) {
                Ok(()) => queue.1 += 1,
                Err(TrySendError::Full(_)) => {
                    self.full_log.warn(format_args!(
                        "{QUEUE_LINES} event log lines wait for a hanging disk: one more is dropped"
                    ));
                    return Err(AppendError::Pending);
                }
                Err(TrySendError::Disconnected(_)) => return Err(stopped()),
            }
            ticket
        };
        let deadline = Instant::now() + APPEND_WAIT;
        let mut written = lock(&self.disk.written);
        loop {
            if let Some((_, outcome)) = written.iter().rev().find(|(tickets, _)| tickets.contains(&ticket)) {
                return outcome
                    .clone()
                    .map_err(|(kind, message)| AppendError::Failed(io::Error::new(kind, message)));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let gone = written.front().is_some_and(|(tickets, _)| *tickets.start() > ticket);
            if left.is_zero() || gone {
                return Err(AppendError::Pending);
            }
            written = self.disk.flushed.wait_timeout(written, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// How long the batch being written has hung, if one is being written.
    pub fn stuck_for(&self) -> Option<Duration> {
        lock(&self.disk.writing_since).map(|since| since.elapsed())
    }

    /// The newest `limit` records, newest first, skipping lines that do not parse.
    pub fn newest(&self, limit: usize) -> io::Result<Vec<Record>> {
        let (records, bad) = parse(&self.disk.read_bytes()?, limit);
        if bad > 0 {
            log::debug!("skipped {bad} unreadable event log line(s)");
        }
        Ok(records)
    }

    /// The time of the newest record, if it has one (for the state's clock check).
    pub fn newest_time(&self) -> Option<Timestamp> {
        Some(self.newest(1).ok()?.pop()?.time)
    }
}

impl storage::Retry for History {
    /// Reopens the log and ends a torn line: a real write and flush (of an empty batch)
    /// that tells whether the disk takes data again, without waiting for the next call.
    /// Only while it fails: a write that hangs must not hold up the other parts' retries.
    fn retry_disk(&self, _now: Timestamp) {
        if self.disk.health.has(PART) {
            let _ = self.disk.write_batch(&[]);
        }
    }
}

impl Disk {
    fn fail(&self, e: &io::Error) {
        self.health
            .fail(PART, format!("the history cannot be written ({e}): calls are answered but not recorded"));
    }

    /// The writer thread: waits for a line, takes every line queued behind it, writes
    /// them all with one flush and posts the outcome for the batch's callers. Ends with the
    /// history.
    fn run(&self, lines: &Receiver<Line>) {
        while let Ok(first) = lines.recv() {
            let batch: Vec<Line> = std::iter::once(first).chain(lines.try_iter()).collect();
            let mut bytes = Vec::with_capacity(batch.iter().map(|line| line.bytes.len()).sum());
            batch.iter().for_each(|line| bytes.extend_from_slice(&line.bytes));
            *lock(&self.writing_since) = Some(Instant::now());
            let result = catch_unwind(AssertUnwindSafe(|| self.write_batch(&bytes)))
                .unwrap_or_else(|_| Err(io::Error::other("the event log writer panicked")))
                .map_err(|e| (e.kind(), e.to_string()));
            *lock(&self.writing_since) = None;
            let mut written = lock(&self.written);
            if written.len() == KEPT_BATCHES {
                written.pop_front();
            }
            // Callers that stopped waiting find nothing to collect: nobody to tell.
            written.push_back((batch[0].ticket..=batch[batch.len() - 1].ticket, result));
            drop(written);
            self.flushed.notify_all();
        }
    }

    /// One write and one flush for the whole batch, rotating first if it would not fit.
    /// A panic mid-write leaves at worst a torn line, which reading skips.
    fn write_batch(&self, batch: &[u8]) -> io::Result<()> {
        let mut w = lock(&self.writer);
        let path = self.dir.join(EVENTS_FILE);
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
                *w = Writer { torn: true, ..Writer::default() };
                self.fail(e);
            }
        }
        result
    }

    /// The old file, then the current one, copied under the lock so a rotation or an
    /// append in between cannot tear what we read.
    fn read_bytes(&self) -> io::Result<Vec<u8>> {
        let _w = lock(&self.writer);
        let mut bytes = Vec::new();
        for name in [ROTATED_FILE, EVENTS_FILE] {
            let path = self.dir.join(name);
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

impl Writer {
    fn ensure_open(&mut self, path: &Path) -> io::Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        let f = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| context(e, "open", path))?;
        let size = f.metadata()?.len();
        if size > 0 {
            let mut last = [0u8];
            f.read_exact_at(&mut last, size - 1)?;
            self.torn |= last[0] != b'\n';
        } else {
            // A new file (at the first start, after a rotation): a power cut must not take
            // its name, and with it records already answered, after their flush.
            storage::sync_dir(storage::parent(path))?;
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
    for line in rotation::lines(bytes).rev() {
        if records.len() >= limit {
            break;
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
        let log = History::open(&dir, Vec::new(), Health::new());
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
        let log = History::open(&dir, Vec::new(), Health::new());
        assert_eq!(log.newest(10).unwrap(), [rec(1)]);
        log.append(&rec(2)).unwrap();
        assert_eq!(log.newest(10).unwrap(), [rec(2), rec(1)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_keeps_one_old_file_and_bounds_the_disk() {
        let dir = tempdir("rotate");
        let log = History::open(&dir, Vec::new(), Health::new());
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
        let log = History::open(&dir, Vec::new(), Health::new());
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
        let log = History::open(&dir, Vec::new(), Health::new());
        assert_eq!(log.newest(usize::MAX).unwrap(), all, "each record once");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_appends_all_land_in_order_and_share_flushes() {
        let dir = tempdir("group");
        let log = History::open(&dir, Vec::new(), Health::new());
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
        fs::remove_dir_all(&dir).unwrap();
    }

    fn dir_of(log: &History) -> PathBuf {
        log.disk.dir.clone()
    }

    #[test]
    fn a_log_that_cannot_be_written_is_reported_and_retried() {
        let dir = tempdir("blocked");
        fs::create_dir_all(dir.join(EVENTS_FILE).join("x")).unwrap();
        let health = Health::new();
        let log = History::open(&dir, Vec::new(), health.clone());
        assert!(health.problem().unwrap().contains("events.jsonl"), "{:?}", health.problem());
        let err = log.append(&rec(1)).unwrap_err();
        assert!(format!("{err:?}").contains("directory"), "{err:?}");
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
        let log = History::open(&dir, Vec::new(), Health::new());
        let hang = lock(&log.disk.writer); // the writer blocks here as on a stuck disk
        let started = Instant::now();
        let err = log.append(&rec(1)).unwrap_err();
        assert!(matches!(err, AppendError::Pending), "{err:?}");
        assert!(started.elapsed() < APPEND_WAIT * 2, "{:?}", started.elapsed());
        assert!(log.stuck_for().is_some());
        // A later caller queues behind the stuck batch and gives up in time too.
        assert_eq!(log.record(&rec(2)), Outcome::Pending);
        drop(hang);
        // The disk comes back: the stuck lines land, then new ones, in order.
        assert_eq!(log.record(&rec(3)), Outcome::Written);
        assert_eq!(log.newest(10).unwrap(), [rec(3), rec(2), rec(1)]);
        assert_eq!(log.stuck_for(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_queue_behind_a_hanging_disk_answers_at_once() {
        let dir = tempdir("full");
        // No room at all: only a writer waiting for work takes a line.
        let log = History::with_queue(&dir, Vec::new(), Health::new(), 0);
        let hang = lock(&log.disk.writer);
        // Offered until the writer, once waiting for work, takes it (and hangs on it).
        let first = std::thread::spawn({
            let log = log.clone();
            move || loop {
                let result = log.append(&rec(1));
                if result.is_ok() || log.stuck_for().is_some() {
                    return result;
                }
            }
        });
        let waited = Instant::now();
        while log.stuck_for().is_none() {
            assert!(waited.elapsed() < WEDGED_AFTER, "the writer never took the first line");
            std::thread::yield_now();
        }
        let started = Instant::now();
        assert!(matches!(log.append(&rec(2)), Err(AppendError::Pending)));
        assert!(started.elapsed() < APPEND_WAIT, "{:?}", started.elapsed());
        drop(hang);
        first.join().unwrap().unwrap();
        assert_eq!(log.newest(10).unwrap(), [rec(1)], "the line without room was not written");
        fs::remove_dir_all(&dir).unwrap();
    }
}
