//! The event history: `state_dir/events.jsonl`, one JSON record per line for every call
//! decision and every window change, newest last. This module owns that file (and its
//! one rotated predecessor, `events.jsonl.1`); `state.rs` owns the rest of `state_dir`.
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
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::call::Decision;
use crate::form;
use crate::http::{loggable, HttpError, Request};
use crate::rfc3339;
use crate::state::{Store, WindowChange};
use crate::webhook::CallRecord;

pub const EVENTS_FILE: &str = "events.jsonl";
pub const ROTATED_FILE: &str = "events.jsonl.1";
/// One file's bound. A record is about 200 bytes, so this holds over a thousand events
/// (months of a normal door), and two files stay well under a megabyte on a small SD card.
pub const ROTATE_AT_BYTES: u64 = 256 * 1024;
/// `GET /api/events` without `limit`: what the page shows.
pub const DEFAULT_API_LIMIT: usize = 20;
/// The most one request returns: enough to scroll back, small enough to answer fast.
pub const MAX_API_LIMIT: usize = 500;
/// The expiry watcher wakes at least this often, so an expiry is noticed within a second
/// even if the clock is stepped while it sleeps.
pub const EXPIRY_POLL: Duration = Duration::from_secs(1);
/// Refused signatures recorded per minute. Anyone on the internet can send unsigned
/// webhooks; without a bound each would cost an fsync (SD card wear) and push real
/// history out of the bounded log. The rest are counted and logged, not recorded.
pub const MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE: u32 = 10;
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// The event names, alike in the log, the API and the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    CallUnlocked,
    CallForwarded,
    CallRejected,
    CallBadSignature,
    WindowOpened,
    WindowClosed,
    WindowExpired,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::CallUnlocked,
        EventKind::CallForwarded,
        EventKind::CallRejected,
        EventKind::CallBadSignature,
        EventKind::WindowOpened,
        EventKind::WindowClosed,
        EventKind::WindowExpired,
    ];
    /// What notifies when the config does not say: someone let in by the window, and
    /// the window's opening and end.
    pub const DEFAULT_NOTIFY: [EventKind; 3] =
        [EventKind::CallUnlocked, EventKind::WindowOpened, EventKind::WindowExpired];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::CallUnlocked => "call_unlocked",
            EventKind::CallForwarded => "call_forwarded",
            EventKind::CallRejected => "call_rejected",
            EventKind::CallBadSignature => "call_bad_signature",
            EventKind::WindowOpened => "window_opened",
            EventKind::WindowClosed => "window_closed",
            EventKind::WindowExpired => "window_expired",
        }
    }

    pub fn from_name(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One line of `events.jsonl`, and one item of `GET /api/events` and of the webhook
/// notification. Unknown fields are ignored on reading, so a newer version's records
/// still show after a downgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339 UTC, whole seconds.
    pub time: String,
    pub event: EventKind,
    /// One human sentence: what the page shows and the notification says.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sid: Option<String>,
    /// The caller's number as Twilio sent it (for `call_bad_signature`: as claimed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Who changed the window: "page from 192.168.1.20", "API from …", "CLI from …".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `window_opened`: the length asked for, in minutes (rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u64>,
    /// `window_opened`: when it will end; `window_expired`: when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<String>,
}

impl Record {
    pub fn new(time: SystemTime, event: EventKind, message: String) -> Record {
        Record {
            time: rfc3339(time),
            event,
            message,
            call_sid: None,
            from: None,
            source: None,
            minutes: None,
            open_until: None,
        }
    }

    /// The record of an answered call.
    pub fn call(call: &CallRecord, time: SystemTime) -> Record {
        let from = call.from.as_deref().map(loggable);
        let (event, message) = match &call.decision {
            Decision::Unlock { .. } => {
                (EventKind::CallUnlocked, "Let a visitor in (window open)".to_string())
            }
            Decision::Forward { .. } => {
                (EventKind::CallForwarded, "A visitor rang: call forwarded to your phone".to_string())
            }
            Decision::NobodyToCall { .. } => {
                (EventKind::CallForwarded, "A visitor rang: nobody to forward to, window closed".to_string())
            }
            Decision::Reject => (
                EventKind::CallRejected,
                format!("Rejected a call from {}", from.as_deref().unwrap_or("an unknown number")),
            ),
        };
        Record { call_sid: call.call_sid.as_deref().map(loggable), from, ..Record::new(time, event, message) }
    }

    /// A webhook refused for its signature. Its parameters are unauthenticated claims,
    /// kept (bounded, without control characters) because they help to spot a prober.
    pub fn bad_signature(req: &Request, time: SystemTime) -> Record {
        let source = if req.method == "POST" { req.body.as_slice() } else { req.query.as_bytes() };
        let params = form::parse(source).unwrap_or_default();
        let get = |name| form::single(&params, name).ok().flatten().map(loggable);
        let from = get("From");
        let message = format!(
            "Refused a call with a bad Twilio signature (claiming to be from {})",
            from.as_deref().unwrap_or("nobody")
        );
        Record { call_sid: get("CallSid"), from, ..Record::new(time, EventKind::CallBadSignature, message) }
    }

    pub fn window(change: &WindowChange, time: SystemTime) -> Record {
        match change {
            WindowChange::Opened { until, duration, source } => {
                let minutes = duration.as_secs().div_ceil(60);
                let length = humantime::format_duration(Duration::from_secs(minutes * 60));
                Record {
                    source: Some(source.clone()),
                    minutes: Some(minutes),
                    open_until: Some(rfc3339(*until)),
                    ..Record::new(
                        time,
                        EventKind::WindowOpened,
                        format!("Window opened for {length} by {source}"),
                    )
                }
            }
            WindowChange::Closed { source } => Record {
                source: Some(source.clone()),
                ..Record::new(time, EventKind::WindowClosed, format!("Window closed by {source}"))
            },
            WindowChange::Expired { until } => Record {
                open_until: Some(rfc3339(*until)),
                ..Record::new(
                    time,
                    EventKind::WindowExpired,
                    "Window ended: calls ring your phone again".to_string(),
                )
            },
        }
    }
}

/// Hears every record after it is on disk (the notifier); must not block.
pub type Sink = Box<dyn Fn(&Record) + Send + Sync>;

pub struct Events {
    dir: PathBuf,
    writer: Mutex<Writer>,
    sink: Option<Sink>,
    bad_signatures: Mutex<RateWindow>,
}

/// Counts refused signatures in the current minute.
struct RateWindow {
    started: Instant,
    recorded: u32,
    suppressed: u32,
}

impl RateWindow {
    /// Whether one more may be recorded now; logs what was suppressed in the last minute.
    fn admit(&mut self, now: Instant) -> bool {
        if now.duration_since(self.started) >= RATE_WINDOW {
            if self.suppressed > 0 {
                log::warn!(
                    "{} more refused signatures in the last minute were not recorded in the history",
                    self.suppressed
                );
            }
            *self = RateWindow { started: now, recorded: 0, suppressed: 0 };
        }
        if self.recorded < MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE {
            self.recorded += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

struct Writer {
    file: Option<File>,
    size: u64,
    /// The file may end in a partial line: start the next append with a newline.
    torn: bool,
}

impl Events {
    /// Opens the log in `dir` (which must exist) and warns about unreadable lines.
    pub fn open(dir: &Path, sink: Option<Sink>) -> io::Result<Events> {
        let bad_signatures = Mutex::new(RateWindow { started: Instant::now(), recorded: 0, suppressed: 0 });
        let events =
            Events { dir: dir.to_path_buf(), writer: Mutex::new(Writer::closed()), sink, bad_signatures };
        events.lock().ensure_open(&events.path(EVENTS_FILE))?;
        let (_, bad) = parse(&events.read_bytes()?, usize::MAX);
        if bad > 0 {
            log::warn!(
                "the event log has {bad} unreadable line(s) (a power cut mid-write?); they are skipped"
            );
        }
        Ok(events)
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

    /// The history entry for an answered (or refused) webhook call, if it is one.
    pub fn record_call(
        &self,
        req: &Request,
        answer: &Result<(CallRecord, String), HttpError>,
        time: SystemTime,
    ) {
        match answer {
            Ok((call, _)) => self.record(&Record::call(call, time)),
            Err(HttpError::Forbidden) => {
                let admitted = crate::lock(&self.bad_signatures).admit(Instant::now());
                if admitted {
                    self.record(&Record::bad_signature(req, time));
                }
            }
            Err(_) => {} // malformed: no decision was made
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

    /// `GET /api/events?limit=N`: `{"events": [...]}`, newest first.
    pub fn api(&self, query: &str) -> Result<serde_json::Value, HttpError> {
        let bad =
            |m: String| HttpError::BadRequest(format!("{m}; use ?limit=N with N from 1 to {MAX_API_LIMIT}"));
        let params = form::parse(query.as_bytes()).map_err(|e| bad(format!("bad query: {e}")))?;
        if let Some((k, _)) = params.iter().find(|(k, _)| k != "limit") {
            return Err(bad(format!("unknown parameter {:?}", loggable(k))));
        }
        let limit = match form::single(&params, "limit").map_err(bad)? {
            None => DEFAULT_API_LIMIT,
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_API_LIMIT).contains(n))
                .ok_or_else(|| bad("limit out of range".into()))?,
        };
        let records = self
            .newest(limit)
            .map_err(|e| HttpError::Internal(format!("could not read the event log: {e}")))?;
        Ok(serde_json::json!({ "events": records }))
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

/// Notices windows that end on their own. It sleeps until the stored end (at most
/// [`EXPIRY_POLL`] at a time) and asks the store to expire it; the store reports each
/// expiry once, and a window closed or replaced in the meantime is simply not ended.
pub fn watch_expiry(store: Arc<Store>) -> io::Result<()> {
    thread::Builder::new().name("expiry".into()).spawn(move || {
        let mut failing = false;
        loop {
            let now = SystemTime::now();
            match store.expire_ended(now) {
                Ok(_) => failing = false,
                Err(e) if !failing => {
                    log::error!("could not record the end of the window: {e}; will retry");
                    failing = true;
                }
                Err(_) => {}
            }
            let wait = store
                .stored_until()
                .and_then(|until| until.duration_since(now).ok())
                .map_or(EXPIRY_POLL, |d| d.min(EXPIRY_POLL));
            // Never spin: a window ending "now" is retried after a short pause.
            thread::sleep(wait.max(Duration::from_millis(20)));
        }
    })?;
    Ok(())
}

/// Connects the store to the log: every window change becomes a record.
pub fn observe(store: &Store, events: Arc<Events>) {
    store.set_observer(Box::new(move |change, time| events.record(&Record::window(change, time))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

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
    fn names_round_trip_through_serde_and_from_name() {
        for k in EventKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
            assert_eq!(EventKind::from_name(k.name()), Some(k));
        }
        assert_eq!(EventKind::from_name("call_opened"), None);
    }

    #[test]
    fn newest_first_with_limit_and_fields_left_out_when_empty() {
        let dir = tempdir("order");
        let log = Events::open(&dir, None).unwrap();
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
        let log = Events::open(&dir, None).unwrap();
        assert_eq!(log.newest(10).unwrap(), [rec(1)]);
        log.append(&rec(2)).unwrap();
        assert_eq!(log.newest(10).unwrap(), [rec(2), rec(1)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_keeps_one_old_file_and_bounds_the_disk() {
        let dir = tempdir("rotate");
        let log = Events::open(&dir, None).unwrap();
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
    fn api_limits() {
        let dir = tempdir("api");
        let log = Events::open(&dir, None).unwrap();
        for n in 0..30 {
            log.append(&rec(n)).unwrap();
        }
        assert_eq!(log.api("").unwrap()["events"].as_array().unwrap().len(), DEFAULT_API_LIMIT);
        assert_eq!(log.api("limit=3").unwrap()["events"][0]["message"], "call 29");
        assert_eq!(
            log.api(&format!("limit={MAX_API_LIMIT}")).unwrap()["events"].as_array().unwrap().len(),
            30
        );
        for bad in ["limit=0", "limit=-1", "limit=x", "limit=", "limit=501", "limit=1&limit=2", "lim=3"] {
            assert_eq!(log.api(bad).unwrap_err().status(), 400, "{bad}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn window_records_carry_source_minutes_and_end() {
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let opened = Record::window(
            &WindowChange::Opened {
                until: t + Duration::from_secs(5400),
                duration: Duration::from_secs(5400),
                source: "page from 192.168.1.20".into(),
            },
            t,
        );
        assert_eq!(opened.event, EventKind::WindowOpened);
        assert_eq!(opened.minutes, Some(90));
        assert_eq!(opened.message, "Window opened for 1h 30m by page from 192.168.1.20");
        assert_eq!(opened.open_until.as_deref(), Some("1970-01-12T15:16:40Z"));
        let expired = Record::window(&WindowChange::Expired { until: t }, t);
        assert_eq!(expired.event, EventKind::WindowExpired);
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn refused_signatures_are_recorded_at_a_bounded_rate() {
        let start = Instant::now();
        let mut w = RateWindow { started: start, recorded: 0, suppressed: 0 };
        let admitted = (0..100).filter(|_| w.admit(start)).count();
        assert_eq!(admitted, MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE as usize);
        assert_eq!(w.suppressed, 90);
        assert!(w.admit(start + RATE_WINDOW), "a new minute starts afresh");
        assert_eq!(w.suppressed, 0);
    }
}
