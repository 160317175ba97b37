//! kill -9 during concurrent writes to every store, again and again: whatever was
//! acknowledged (a 2xx answer received in full) is there after the restart, and every
//! file loads (nothing is moved aside, no history line is torn).
//!
//! Writers, each on a thread of its own, over real HTTP: two on the window (each open
//! with a length of its own, or a close), two on the schedules (one adds, pauses,
//! resumes and deletes, the other pauses and resumes the same ones), one each on guest
//! codes (add, delete) and paired devices (pair, revoke), and one that rings (each
//! answered call's record must be in the history). The kill comes after a
//! random number of answers, with requests of every kind in flight (or, every other
//! round, once the writers have stopped, so nothing is). After the restart,
//! each item must hold what some write to it left, one that no acknowledged write sent
//! after its acknowledgement replaced: for a single writer, the last acknowledged write
//! or the one in flight at the kill.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::harness::*;

const ROUNDS: u64 = 50;
/// The kill comes after this many answers at most (at random from a few on).
const MAX_ANSWERS_BEFORE_KILL: u64 = 40;
/// Items a writer keeps at once; far below the stores' caps, so adding is never refused.
const KEEP: usize = 4;
/// How much later than its request's second plus its length an open window may end: the
/// server's clock is read within the request, which a loaded machine may take seconds for.
const SLACK_SECS: i64 = 10;

/// xorshift64*: enough randomness for kill points; the seed is printed, and
/// `INTERCOM_CRASH_SEED` repeats a run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % n
    }
}

/// One write to one item: the state it leaves, when it was sent and when its answer came
/// (`None`: in flight at the kill).
#[derive(Debug, Clone)]
struct Write {
    item: String,
    leaves: Value,
    sent: Instant,
    sent_wall: i64,
    acked: Option<Instant>,
}

/// What a request came to: no connection (it changed nothing), the server gone before
/// the whole answer (in flight), or the answer.
enum Sent {
    Unsent,
    Lost,
    Answered(u16, Value),
}

fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Sent {
    let Ok(mut s) = TcpStream::connect(addr) else { return Sent::Unsent };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut out = Vec::new();
    if s.write_all(req.as_bytes()).and_then(|()| s.read_to_end(&mut out)).is_err() {
        return Sent::Lost;
    }
    let text = String::from_utf8_lossy(&out);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return Sent::Lost };
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
    });
    if length != Some(body.len()) {
        return Sent::Lost;
    }
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Sent::Answered(status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// What the writers share: the log of writes, the count of answers, the kill.
struct Round {
    control: SocketAddr,
    webhook: SocketAddr,
    writes: Mutex<Vec<Write>>,
    calls: Mutex<Vec<String>>,
    answers: AtomicUsize,
    killed: AtomicBool,
}

impl Round {
    fn api(&self, method: &str, path: &str, body: &str) -> Sent {
        let auth = format!("Bearer {TOKEN}");
        send(
            self.control,
            method,
            path,
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body,
        )
    }

    /// Sends a write to `item` that leaves `leaves`; its answer's body if it was
    /// acknowledged, `None` (and the writer stops) if the server is gone.
    fn write(&self, item: &str, leaves: Value, send: impl FnOnce() -> Sent) -> Option<Option<Value>> {
        let sent_wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let w = Write { item: item.into(), leaves, sent: Instant::now(), sent_wall, acked: None };
        match send() {
            Sent::Unsent => None,
            Sent::Lost => {
                self.writes.lock().unwrap().push(w);
                None
            }
            Sent::Answered(status, body) => {
                self.answers.fetch_add(1, Ordering::SeqCst);
                if !(200..300).contains(&status) {
                    // Refused (a 4xx says nothing changed): not a write.
                    return Some(None);
                }
                self.writes.lock().unwrap().push(Write { acked: Some(Instant::now()), ..w });
                Some(Some(body))
            }
        }
    }

    fn running(&self) -> bool {
        !self.killed.load(Ordering::SeqCst)
    }
}

/// Everything the stores hold, as the API shows it: the window, and each code,
/// schedule and device by its (unique) label or name, with its id.
#[derive(Debug, Default, Clone)]
struct Seen {
    items: BTreeMap<String, Value>,
    ids: BTreeMap<String, String>,
}

impl Seen {
    /// The (label, id) pairs of one store's items: their labels start with `kind`.
    fn ids_of(&self, kind: char) -> Vec<(String, String)> {
        self.ids.iter().filter(|(k, _)| k.starts_with(kind)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

fn observe(s: &Server) -> Seen {
    let get = |path: &str| {
        let r = s.api("GET", path, "");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
    };
    let mut seen = Seen::default();
    let status = get("/api/status");
    assert_eq!(status["storage_problem"], Value::Null, "{status}");
    let window = match status["open_until"].as_str() {
        Some(t) => json!(parse_time(t).duration_since(UNIX_EPOCH).unwrap().as_secs()),
        None => json!("closed"),
    };
    seen.items.insert("window".into(), window);
    for (path, list, key) in [
        ("/api/codes", "codes", "label"),
        ("/api/schedules", "schedules", "label"),
        ("/api/devices", "devices", "name"),
    ] {
        for one in get(path)[list].as_array().unwrap() {
            let name = one[key].as_str().unwrap().to_string();
            let state = if list == "schedules" { json!({"paused": one["paused"]}) } else { json!(true) };
            seen.ids.insert(name.clone(), one["id"].as_str().unwrap().to_string());
            seen.items.insert(name, state);
        }
    }
    seen
}

/// Whether `write` can have left `found`: an open window by its end, the rest exactly.
fn left(write: &Write, found: &Value) -> bool {
    match (write.leaves.get("open_minutes").and_then(Value::as_i64), found.as_i64()) {
        (Some(m), Some(until)) => {
            let earliest = write.sent_wall + m * 60;
            (earliest..=earliest + SLACK_SECS).contains(&until)
        }
        _ => write.leaves == *found,
    }
}

/// Checks every item written this round (and every one known before) against the
/// writes, and returns the new picture.
fn check(round: u64, before: &Seen, after: &Seen, writes: &[Write]) {
    let mut items: HashSet<&String> = before.items.keys().chain(after.items.keys()).collect();
    items.extend(writes.iter().map(|w| &w.item));
    for item in items {
        let absent = if item == "window" { json!("closed") } else { Value::Null };
        let found = after.items.get(item).cloned().unwrap_or(absent.clone());
        let mine: Vec<&Write> = writes.iter().filter(|w| &w.item == item).collect();
        let replaced = |acked: Option<Instant>| {
            acked.is_some_and(|a| mine.iter().any(|x| x.acked.is_some() && x.sent > a))
        };
        let initial = before.items.get(item).cloned().unwrap_or(absent);
        let ok = mine.iter().any(|w| left(w, &found) && !replaced(w.acked))
            || (initial == found && !mine.iter().any(|x| x.acked.is_some()));
        assert!(
            ok,
            "round {round}: {item} is {found} after the restart; before it was {initial}; writes: {mine:#?}"
        );
    }
}

/// Nothing was moved aside, and every history line reads, but for what a kill cut: a
/// batch of records whose calls still waited may be cut at a page of the file (the
/// kernel stops a killed process's write there), which only the last line can be, and
/// which reading skips. `cut`: the lines earlier kills cut.
fn no_file_torn(s: &Server, cut: &mut HashSet<String>) {
    for entry in std::fs::read_dir(&s.state_dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.contains(".bad-"), "{name} was moved aside: {}", s.logs());
    }
    for name in ["events.jsonl.1", "events.jsonl"] {
        let text = std::fs::read_to_string(s.state_dir.join(name)).unwrap_or_default();
        let last = text.lines().last().unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty() && !cut.contains(*l)) {
            let whole = serde_json::from_str::<Value>(line).is_ok();
            assert!(whole || (line == last && name == "events.jsonl"), "{name} has a torn line: {line:?}");
        }
        if !last.is_empty() && serde_json::from_str::<Value>(last).is_err() {
            cut.insert(last.to_string());
        }
    }
}

fn history_calls(s: &Server) -> HashSet<String> {
    let read = |name| std::fs::read_to_string(s.state_dir.join(name)).unwrap_or_default();
    (read("events.jsonl.1") + &read("events.jsonl"))
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok()?["call_sid"].as_str().map(str::to_string))
        .collect()
}

/// The writers of one round, until the server is gone.
fn writers(r: &Round, round: u64, seen: &Seen, seed: u64) {
    thread::scope(|scope| {
        for window in 0..2u64 {
            scope.spawn(move || {
                let mut rng = Rng((seed ^ ((window + 1) * 0x9E37_79B9)) | 1);
                // Lengths differ between writers, and from the last round's.
                let mut minutes = 60 + (round % 2) * 300 + window * 150;
                while r.running() {
                    let (leaves, path, body) = if rng.below(3) == 0 {
                        (json!("closed"), "/api/close", String::new())
                    } else {
                        minutes += 1;
                        (
                            json!({"open_minutes": minutes}),
                            "/api/open",
                            json!({"minutes": minutes}).to_string(),
                        )
                    };
                    if r.write("window", leaves, || r.api("POST", path, &body)).is_none() {
                        return;
                    }
                }
            });
        }
        scope.spawn(move || {
            let mut rng = Rng(seed ^ 0xC0DE | 1);
            let mut ids = seen.ids_of('c');
            for n in 0.. {
                let done = if ids.len() >= KEEP || (!ids.is_empty() && rng.below(3) == 0) {
                    let (label, id) = ids.remove(rng.below(ids.len() as u64) as usize);
                    r.write(&label, Value::Null, || r.api("DELETE", &format!("/api/codes/{id}"), ""))
                } else {
                    let label = format!("c{round}x{n}");
                    let body = json!({"label": label, "minutes": 1440}).to_string();
                    let got = r.write(&label, json!(true), || r.api("POST", "/api/codes", &body));
                    if let Some(Some(code)) = &got {
                        ids.push((label, code["id"].as_str().unwrap().to_string()));
                    }
                    got
                };
                if done.is_none() || !r.running() {
                    return;
                }
            }
        });
        // Two on the schedules: one adds, pauses, resumes and deletes; the other pauses
        // and resumes the schedules there were at the start, the same ones.
        for toggler in [false, true] {
            scope.spawn(move || {
                let mut rng = Rng((seed ^ 0x5C4E ^ u64::from(toggler)) | 1);
                let mut kept = seen.ids_of('s');
                for n in 0.. {
                    let choice = match kept.len() {
                        0 if toggler => return,
                        _ if toggler => 0,
                        0 => 3,
                        n if n >= KEEP => 2,
                        _ => rng.below(4),
                    };
                    let done = match choice {
                        0 | 1 => {
                            let (label, id) = &kept[rng.below(kept.len() as u64) as usize];
                            let pause = rng.below(2) == 0;
                            let path =
                                format!("/api/schedules/{id}/{}", if pause { "pause" } else { "resume" });
                            r.write(label, json!({"paused": pause}), || r.api("POST", &path, ""))
                        }
                        2 => {
                            let (label, id) = kept.remove(rng.below(kept.len() as u64) as usize);
                            r.write(&label, Value::Null, || {
                                r.api("DELETE", &format!("/api/schedules/{id}"), "")
                            })
                        }
                        _ => {
                            let label = format!("s{round}x{n}");
                            let body =
                                json!({"label": label, "days": "daily", "from": "03:00", "to": "03:30"});
                            let got = r.write(&label, json!({"paused": false}), || {
                                r.api("POST", "/api/schedules", &body.to_string())
                            });
                            if let Some(Some(s)) = &got {
                                kept.push((label, s["id"].as_str().unwrap().to_string()));
                            }
                            got
                        }
                    };
                    if done.is_none() || !r.running() {
                        return;
                    }
                }
            });
        }
        scope.spawn(move || {
            let mut rng = Rng(seed ^ 0xDE71 | 1);
            let mut ids = seen.ids_of('d');
            for n in 0.. {
                let done = if ids.len() >= KEEP || (!ids.is_empty() && rng.below(3) == 0) {
                    let (name, id) = ids.remove(rng.below(ids.len() as u64) as usize);
                    r.write(&name, Value::Null, || r.api("DELETE", &format!("/api/devices/{id}"), ""))
                } else {
                    let name = format!("d{round}x{n}");
                    let link = match r.api("POST", "/api/pairings", &json!({"name": name}).to_string()) {
                        Sent::Answered(201, link) => link,
                        _ => return,
                    };
                    let code = link["path"].as_str().unwrap().split("#c=").nth(1).unwrap().to_string();
                    let origin = format!("http://{}", r.control);
                    let headers = [("Origin", origin.as_str()), ("Content-Type", "application/json")];
                    let body = json!({"code": code}).to_string();
                    let got =
                        r.write(&name, json!(true), || send(r.control, "POST", "/api/pair", &headers, &body));
                    if let Some(Some(device)) = &got {
                        ids.push((name, device["id"].as_str().unwrap().to_string()));
                    }
                    got
                };
                if done.is_none() || !r.running() {
                    return;
                }
            }
        });
        scope.spawn(move || {
            while r.running() {
                let sid = fresh_call_sid();
                let body = format!("CallSid={sid}&From={}&To=%2B15550001111", encode(INTERCOM));
                let form = [("Content-Type", "application/x-www-form-urlencoded")];
                match send(r.webhook, "POST", "/voice", &form, &body) {
                    Sent::Answered(200, _) => {
                        r.answers.fetch_add(1, Ordering::SeqCst);
                        r.calls.lock().unwrap().push(sid);
                    }
                    Sent::Answered(status, body) => panic!("a call got {status}: {body}"),
                    _ => return,
                }
            }
        });
    });
}

#[test]
fn kill_9_during_writes_to_every_store_loses_nothing_acknowledged() {
    let seed = std::env::var("INTERCOM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    eprintln!("kill -9 rounds with INTERCOM_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let dir = TempDir::new("crash");
    let started = Instant::now();
    let mut s = Server::start_in(dir.path(), base_config(), &[]);
    let mut seen = observe(&s);
    let mut cut = HashSet::new();
    // Which stores got acknowledged writes: all of them must, or the test proves nothing.
    let mut written = HashSet::new();
    for round in 0..ROUNDS {
        let r = Round {
            control: s.control,
            webhook: s.webhook,
            writes: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            answers: AtomicUsize::new(0),
            killed: AtomicBool::new(false),
        };
        let kill_after = 3 + rng.below(MAX_ANSWERS_BEFORE_KILL) as usize;
        let round_seed = rng.below(u64::MAX) | 1;
        thread::scope(|scope| {
            let writing = scope.spawn(|| writers(&r, round, &seen, round_seed));
            let deadline = Instant::now() + Duration::from_secs(30);
            while r.answers.load(Ordering::SeqCst) < kill_after {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: the writers stopped answering: {}",
                    s.logs()
                );
                thread::sleep(Duration::from_millis(1));
            }
            // Every other round the writers stop first: nothing is in flight, so each item
            // must be as an acknowledged write left it.
            let quiet = round % 2 == 1;
            if quiet {
                r.killed.store(true, Ordering::SeqCst);
                writing.join().unwrap();
            }
            s.kill9();
            r.killed.store(true, Ordering::SeqCst);
            if quiet {
                assert!(r.writes.lock().unwrap().iter().all(|w| w.acked.is_some()));
            }
        });
        s = Server::start_in(dir.path(), base_config(), &[]);
        no_file_torn(&s, &mut cut);
        let after = observe(&s);
        check(round, &seen, &after, &r.writes.lock().unwrap());
        written.extend(
            r.writes.lock().unwrap().iter().filter(|w| w.acked.is_some()).map(|w| w.item.as_bytes()[0]),
        );
        seen = after;
        // This round's: rotation may drop the oldest records of earlier rounds.
        let recorded = history_calls(&s);
        let calls = r.calls.into_inner().unwrap();
        let lost: Vec<_> = calls.iter().filter(|c| !recorded.contains(*c)).collect();
        assert!(lost.is_empty(), "round {round}: answered calls missing from the history: {lost:?}");
        written.extend((!calls.is_empty()).then_some(b'C'));
    }
    eprintln!("{ROUNDS} rounds in {:?}; history lines cut: {cut:?}", started.elapsed());
    assert_eq!(
        written.len(),
        5,
        "writes acknowledged by window, codes, schedules, devices, calls: {written:?}"
    );
}
