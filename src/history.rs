//! The event history: `state_dir/events.jsonl`, one JSON [`Record`] per line for every
//! call decision and every window change, newest last. This module owns that file (and
//! its one rotated predecessor, `events.jsonl.1`); `state.rs` owns the rest of
//! `state_dir`. It only stores and reads: what to record is the listeners' and the
//! state's business, and `GET /api/events` is the control listener's.
//!
//! Decisions (the issue left them open):
//! - Each record is appended with one `write` on an `O_APPEND` file and then `sync_data`,
//!   before the answer is sent: a power cut loses at most the record being written. That
//!   costs one flush per call or window change, a handful a day, so SD-card wear is
//!   negligible; the time it takes is measured in the integration tests' notes.
//! - A torn last line (power cut mid-write, disk full) is skipped when reading, with a
//!   warning at start; the next append first ends it with a newline, so it never glues
//!   onto a good record.
//! - Bounded on disk: when an append would push the file past [`ROTATE_AT_BYTES`], it is
//!   renamed to `events.jsonl.1` (replacing the older one) and a new file starts. At most
//!   twice that is ever on disk.
//! - Order is the order of appends, not of timestamps, so a clock step on a Pi without a
//!   real-time clock cannot shuffle the history.
//! - Reading copies both files under the lock (a few hundred KiB at most) and parses
//!   outside it, so a history request delays a call's append by a file read at most.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::record::Record;

pub const EVENTS_FILE: &str = "events.jsonl";
pub const ROTATED_FILE: &str = "events.jsonl.1";
/// One file's bound. A record is about 200 bytes, so this holds over a thousand events
/// (months of a normal door), and two files stay well under a megabyte on a small SD card.
pub const ROTATE_AT_BYTES: u64 = 256 * 1024;

/// Hears every record after it is on disk (the notifier); must not block.
pub type Sink = Box<dyn Fn(&Record) + Send + Sync>;

pub struct History {
    dir: PathBuf,
    writer: Mutex<Writer>,
    sink: Option<Sink>,
}

struct Writer {
    file: Option<File>,
    size: u64,
    /// The file may end in a partial line: start the next append with a newline.
    torn: bool,
}

impl History {
    /// Opens the log in `dir` (which must exist) and warns about unreadable lines.
    pub fn open(dir: &Path, sink: Option<Sink>) -> io::Result<History> {
        let history = History { dir: dir.to_path_buf(), writer: Mutex::new(Writer::closed()), sink };
        history.lock().ensure_open(&history.path(EVENTS_FILE))?;
        let (_, bad) = parse(&history.read_bytes()?, usize::MAX);
        if bad > 0 {
            log::warn!(
                "the event log has {bad} unreadable line(s) (a power cut mid-write?); they are skipped"
            );
        }
        Ok(history)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        // A panic mid-append leaves at worst a torn line, which reading skips.
        crate::lock(&self.writer)
    }

    /// Appends and flushes the record, then hands it to the sink. A failed write is
    /// logged and does not stop the caller: the door must not depend on the history.
    pub fn record(&self, record: &Record) {
        if let Err(e) = self.append(record) {
            log::error!("could not write {} to the event log: {e}", record.event.name());
        }
        if let Some(sink) = &self.sink {
            sink(record);
        }
    }

    pub fn append(&self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut w = self.lock();
        let path = self.path(EVENTS_FILE);
        w.ensure_open(&path)?;
        if w.torn {
            line.insert(0, b'\n');
        }
        if w.size > 0 && w.size + line.len() as u64 > ROTATE_AT_BYTES {
            w.file = None;
            fs::rename(&path, self.path(ROTATED_FILE))?;
            File::open(&self.dir)?.sync_all()?;
            w.ensure_open(&path)?;
            if w.torn {
                line.remove(0);
                w.torn = false;
            }
        }
        let written = w.file.as_mut().map_or(Ok(()), |f| f.write_all(&line).and_then(|()| f.sync_data()));
        match written {
            Ok(()) => {
                w.size += line.len() as u64;
                w.torn = false;
                Ok(())
            }
            Err(e) => {
                // Unknown how much landed: reopen, and end whatever is there first.
                *w = Writer { torn: true, ..Writer::closed() };
                Err(e)
            }
        }
    }

    /// The newest `limit` records, newest first, skipping lines that do not parse.
    pub fn newest(&self, limit: usize) -> io::Result<Vec<Record>> {
        let (records, bad) = parse(&self.read_bytes()?, limit);
        if bad > 0 {
            log::debug!("skipped {bad} unreadable event log line(s)");
        }
        Ok(records)
    }

    /// The old file, then the current one, copied under the lock so a rotation or an
    /// append in between cannot tear what we read.
    fn read_bytes(&self) -> io::Result<Vec<u8>> {
        let _w = self.lock();
        let mut bytes = Vec::new();
        for name in [ROTATED_FILE, EVENTS_FILE] {
            match File::open(self.path(name)) {
                Ok(mut f) => {
                    f.read_to_end(&mut bytes)?;
                    if bytes.last().is_some_and(|b| *b != b'\n') {
                        bytes.push(b'\n');
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(bytes)
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
        let mut f = OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(path)?;
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
    use crate::record::EventKind;
    use std::time::{Duration, UNIX_EPOCH};

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("intercom-events-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn rec(n: u64) -> Record {
        Record::new(UNIX_EPOCH + Duration::from_secs(n), EventKind::CallForwarded, format!("call {n}"))
    }

    #[test]
    fn newest_first_with_limit_and_fields_left_out_when_empty() {
        let dir = tempdir("order");
        let log = History::open(&dir, None).unwrap();
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
        let log = History::open(&dir, None).unwrap();
        assert_eq!(log.newest(10).unwrap(), [rec(1)]);
        log.append(&rec(2)).unwrap();
        assert_eq!(log.newest(10).unwrap(), [rec(2), rec(1)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_keeps_one_old_file_and_bounds_the_disk() {
        let dir = tempdir("rotate");
        let log = History::open(&dir, None).unwrap();
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
}
