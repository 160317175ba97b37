//! The event history over real HTTP: a record per decision and window change, newest
//! first, surviving restarts, torn lines and rotation; expiries noticed without a request.

use std::fs;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::harness::*;

/// Bounded waits for things the server does on its own (the expiry watcher).
const EXPIRY_WAIT: Duration = Duration::from_secs(10);
/// The expiry watcher looks at the window at start and then at least once a second
/// (`daemon::expiry::EXPIRY_POLL`). A watcher that finds nothing to expire leaves no trace,
/// so "it did not record an expiry" can only be shown by letting a turn of it pass: the
/// time passing is the event waited for.
const WATCHER_TURN: Duration = Duration::from_millis(1500);

/// A state dir under `dir` holding a window that ends at `until`.
fn with_window(dir: &TempDir, until: SystemTime) {
    fs::create_dir_all(dir.path().join("state")).unwrap();
    fs::write(dir.path().join("state/state.json"), state_file(until)).unwrap();
}

fn wait_for_event(s: &Server, name: &str) -> Option<Value> {
    let deadline = Instant::now() + EXPIRY_WAIT;
    while Instant::now() < deadline {
        if let Some(e) = events(s, 50).into_iter().find(|e| e["event"] == name) {
            return Some(e);
        }
        thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn every_decision_and_window_change_is_recorded_newest_first() {
    let s = Server::start(base_config());
    assert_eq!(events(&s, 20), Vec::<Value>::new());
    s.call("POST", "/voice", "CallSid=CAtest&From=%2B15550000000&To=%2B15550001111");
    s.ring(INTERCOM);
    s.api("POST", "/api/open", r#"{"minutes": 90}"#);
    s.ring(INTERCOM);
    s.api("POST", "/api/close", "");
    s.api("POST", "/api/close", ""); // already closed: not a change
    let all = events(&s, 20);
    assert_eq!(
        names(&all),
        ["window_closed", "call_unlocked", "window_opened", "call_forwarded", "call_rejected"]
    );
    for e in &all {
        let t = parse_time(e["time"].as_str().unwrap());
        assert!(SystemTime::now().duration_since(t).unwrap() < Duration::from_secs(60));
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    let rejected = &all[4];
    assert_eq!(
        (rejected["from"].as_str(), rejected["call_sid"].as_str()),
        (Some("+15550000000"), Some("CAtest"))
    );
    assert!(rejected["message"].as_str().unwrap().contains("+15550000000"));
    assert_eq!(all[3]["from"], INTERCOM);
    assert_eq!(all[2]["minutes"], 90);
    assert_eq!(all[2]["source"], "API from 127.0.0.1");
    assert!(all[2]["open_until"].as_str().unwrap().ends_with('Z'));
    assert_eq!(all[2]["message"], "Window opened for 1h 30m by API from 127.0.0.1");
    assert_eq!(all[1]["message"], "Let a visitor in (window open)");
    assert_eq!(all[0]["source"], "API from 127.0.0.1");

    assert_eq!(names(&events(&s, 2)), ["window_closed", "call_unlocked"]);
    // The file says the same, oldest first, one JSON object per line.
    let file = fs::read_to_string(s.state_dir.join("events.jsonl")).unwrap();
    let lines: Vec<Value> = file.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.into_iter().rev().collect::<Vec<_>>(), all);
}

#[test]
fn cli_and_page_are_named_as_sources() {
    let s = Server::start(base_config());
    assert!(s.cli(&["open", "45m"]).status.success());
    let page = format!("Bearer {TOKEN}");
    let headers = [("Authorization", page.as_str()), ("X-Intercom-Client", "page")];
    assert_eq!(request(s.control, "POST", "/api/close", &headers, b"").status, 200);
    let all = events(&s, 5);
    assert_eq!(all[1]["source"], "the command line on the Pi");
    assert_eq!(all[1]["message"], "Window opened for 45m from the command line on the Pi");
    assert_eq!(all[1]["minutes"], 45);
    assert_eq!(all[0]["message"], "Window closed by page from 127.0.0.1");
}

#[test]
fn a_bad_signature_is_recorded_with_what_it_claimed() {
    let mut c = base_config();
    c["webhook"]["public_url"] = json!("https://door.example.com");
    c["twilio"] = json!({"auth_token": "twilio-secret-value-xyz"});
    let s = Server::start(c);
    let r = s.call("POST", "/voice", "CallSid=CAfake&From=%2B15558889999");
    assert_eq!(r.status, 403);
    let e = &events(&s, 5)[0];
    assert_eq!(e["event"], "call_bad_signature");
    assert_eq!((e["from"].as_str(), e["call_sid"].as_str()), (Some(INTERCOM), Some("CAfake")));
    // A malformed request is no decision and leaves no record.
    assert_eq!(s.call("GET", "/voice?From=%ZZ", "").status, 400);
    assert_eq!(events(&s, 5).len(), 1);
}

#[test]
fn bad_limits_are_400_and_the_token_is_required() {
    let s = Server::start(base_config());
    for q in ["limit=0", "limit=501", "limit=ten", "limit=-3", "since=1"] {
        let r = s.api("GET", &format!("/api/events?{q}"), "");
        assert_eq!(r.status, 400, "{q}");
        assert!(r.json()["error"].as_str().unwrap().contains("limit"), "{}", r.body);
    }
    assert_eq!(s.api("GET", "/api/events", "").status, 200);
    assert_eq!(s.api("POST", "/api/events", "").status, 405);
    let r = request(s.control, "GET", "/api/events", &[], b"");
    assert_eq!(r.status, 401);
}

#[test]
fn history_survives_kill_9_and_a_torn_last_line() {
    let dir = TempDir::new("events-restart");
    let s = Server::start_in(dir.path(), base_config(), &[]);
    s.ring(INTERCOM);
    s.api("POST", "/api/open", r#"{"minutes": 5}"#);
    let state_dir = s.state_dir.clone();
    s.kill9();
    // A power cut in the middle of the next record.
    let path = state_dir.join("events.jsonl");
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"time":"2026-01-01T00:00:00Z","event":"call_unl"#);
    fs::write(&path, bytes).unwrap();

    let s = Server::start_in(dir.path(), base_config(), &[]);
    assert!(s.wait_for_log("unreadable line"), "{}", s.logs());
    assert_eq!(names(&events(&s, 10)), ["window_opened", "call_forwarded"]);
    s.ring(INTERCOM);
    assert_eq!(names(&events(&s, 10)), ["call_unlocked", "window_opened", "call_forwarded"]);
}

#[test]
fn the_log_rotates_at_its_bound_and_reads_across_both_files() {
    let dir = TempDir::new("events-rotate");
    fs::create_dir_all(dir.path().join("state")).unwrap();
    // An old history just under the 256 KiB bound (`store::history::ROTATE_AT_BYTES`).
    let line =
        json!({"time": "2026-01-01T00:00:00Z", "event": "call_rejected", "message": "old"}).to_string();
    let count = 256 * 1024 / (line.len() + 1);
    fs::write(dir.path().join("state/events.jsonl"), format!("{line}\n").repeat(count)).unwrap();
    let s = Server::start_in(dir.path(), base_config(), &[]);
    for _ in 0..3 {
        s.ring(INTERCOM);
    }
    let rotated = fs::metadata(s.state_dir.join("events.jsonl.1")).unwrap().len();
    let current = fs::metadata(s.state_dir.join("events.jsonl")).unwrap().len();
    assert!(rotated <= 256 * 1024 && current < 4096, "{rotated} {current}");
    let all = events(&s, 5);
    assert_eq!(
        names(&all),
        ["call_forwarded", "call_forwarded", "call_forwarded", "call_rejected", "call_rejected"]
    );
}

#[test]
fn a_window_that_runs_out_is_recorded_once_as_expired() {
    let dir = TempDir::new("events-expire");
    let until = SystemTime::now() + Duration::from_secs(2);
    with_window(&dir, until);
    let s = Server::start_in(dir.path(), base_config(), &[]);
    let e = wait_for_event(&s, "window_expired").expect("no window_expired within the bound");
    let at = parse_time(e["time"].as_str().unwrap());
    assert!(at + Duration::from_secs(1) >= until, "not before the end");
    assert_eq!(e["open_until"], rfc3339(until));
    thread::sleep(WATCHER_TURN);
    s.kill9();
    // A restart does not report it again: the expiry is in the state file too.
    let s = Server::start_in(dir.path(), base_config(), &[]);
    thread::sleep(WATCHER_TURN);
    assert_eq!(names(&events(&s, 10)), ["window_expired"]);
}

#[test]
fn a_window_that_ran_out_while_the_server_was_down_is_expired_at_start() {
    let dir = TempDir::new("events-expired-down");
    with_window(&dir, SystemTime::now() - Duration::from_secs(600));
    let s = Server::start_in(dir.path(), base_config(), &[]);
    assert!(wait_for_event(&s, "window_expired").is_some());
}

#[test]
fn a_window_closed_or_replaced_in_time_never_expires() {
    // Both cases at once, each with its own server: the wait is the same.
    thread::scope(|scope| {
        for replace in [false, true] {
            scope.spawn(move || {
                let dir = TempDir::new("events-no-expiry");
                let until = SystemTime::now() + Duration::from_secs(2);
                with_window(&dir, until);
                let s = Server::start_in(dir.path(), base_config(), &[]);
                if replace {
                    s.api("POST", "/api/open", r#"{"minutes": 10}"#);
                } else {
                    s.api("POST", "/api/close", "");
                }
                while SystemTime::now() < until + WATCHER_TURN {
                    thread::sleep(Duration::from_millis(100));
                }
                let want = if replace { "window_opened" } else { "window_closed" };
                assert_eq!(names(&events(&s, 10)), [want], "replace: {replace}");
            });
        }
    });
}
