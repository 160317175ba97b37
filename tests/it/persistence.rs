//! The window survives restarts and crashes, fails closed, and bad files are kept.

use std::fs;
use std::thread;
use std::time::{Duration, SystemTime};

use crate::harness::*;

#[test]
fn open_survives_kill_9_and_restart() {
    let dir = TempDir::new("kill9");
    let s = Server::start_in(dir.path(), base_config(), &[]);
    s.api("POST", "/api/open", r#"{"minutes": 30}"#);
    assert!(s.ring(INTERCOM).body.contains("<Play"));
    s.kill9();
    let s = Server::start_in(dir.path(), base_config(), &[]);
    assert!(s.ring(INTERCOM).body.contains("<Play"), "still unlocking after kill -9");
    let st = s.api("GET", "/api/status", "").json();
    assert!(st["remaining_seconds"].as_u64().unwrap() > 1790);
    s.api("POST", "/api/close", "");
    s.kill9();
    let s = Server::start_in(dir.path(), base_config(), &[]);
    assert!(s.ring(INTERCOM).body.contains("<Dial"), "closed stays closed");
}

#[test]
fn the_window_expires_at_the_second() {
    let dir = TempDir::new("expiry");
    fs::create_dir_all(dir.path().join("state")).unwrap();
    let until = SystemTime::now() + Duration::from_secs(3);
    fs::write(dir.path().join("state/state.json"), state_file(until)).unwrap();
    let s = Server::start_in(dir.path(), base_config(), &[]);
    assert!(s.ring(INTERCOM).body.contains("<Play"));
    // Bounded: poll until the stored second passes, then at most 1.5 s more.
    while SystemTime::now() < until {
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(100));
    assert!(s.ring(INTERCOM).body.contains("<Dial"), "forwarded once expired");
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);
}

#[test]
fn corrupt_state_starts_closed_and_keeps_the_bad_file() {
    let dir = TempDir::new("corrupt");
    fs::create_dir_all(dir.path().join("state")).unwrap();
    let garbage = "{\"version\": 1, \"open_until\": \"2099-01-01T00:00:00Z\", trunc";
    fs::write(dir.path().join("state/state.json"), garbage).unwrap();
    let s = Server::start_in(dir.path(), base_config(), &[]);
    assert!(s.ring(INTERCOM).body.contains("<Dial"), "fail closed");
    let kept: Vec<_> = fs::read_dir(dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("state.json.bad-"))
        .collect();
    assert_eq!(kept.len(), 1, "moved aside exactly once");
    assert_eq!(fs::read_to_string(&kept[0]).unwrap(), garbage, "kept byte for byte");
    assert!(s.logs().contains("ERROR"), "{}", s.logs());
    // The server keeps serving and can be opened again.
    assert_eq!(s.api("POST", "/api/open", "").status, 200);
    assert!(s.ring(INTERCOM).body.contains("<Play"));
}

#[test]
fn a_far_future_expiry_means_the_clock_moved_and_reads_closed() {
    let dir = TempDir::new("clock");
    fs::create_dir_all(dir.path().join("state")).unwrap();
    let far = SystemTime::now() + Duration::from_secs(30 * 24 * 3600);
    fs::write(dir.path().join("state/state.json"), state_file(far)).unwrap();
    let s = Server::start_in(dir.path(), base_config(), &[]);
    assert!(s.ring(INTERCOM).body.contains("<Dial"));
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);
    assert!(s.wait_for_log("clock moved"), "{}", s.logs());
}

#[test]
fn state_file_is_versioned_json_with_private_mode() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start(base_config());
    s.api("POST", "/api/open", r#"{"minutes": 10}"#);
    let path = s.state_dir.join("state.json");
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["version"], 3);
    assert_eq!(v["once"], false);
    assert_eq!(v["boot_id"], boot_id());
    assert!(v["open_until"].as_str().unwrap().ends_with('Z'));
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let leftovers: Vec<_> = fs::read_dir(&s.state_dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().to_string();
            n.ends_with(".tmp").then_some(n)
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_generated_token_is_kept_private_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("token");
    let mut c = base_config();
    c["control"].as_object_mut().unwrap().remove("token");
    let s = Server::start_in(dir.path(), c.clone(), &[]);
    let path = s.state_dir.join("control-token");
    let token = fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(token.len() >= 32, "at least 128 bits in hex");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let auth = format!("Bearer {token}");
    assert_eq!(request(s.control, "GET", "/api/status", &[("Authorization", &auth)], b"").status, 200);
    assert_eq!(s.api("GET", "/api/status", "").status, 401, "the test token is not this one");
    s.kill9();
    let s = Server::start_in(dir.path(), c, &[]);
    assert_eq!(request(s.control, "GET", "/api/status", &[("Authorization", &auth)], b"").status, 200);
    assert!(!s.logs().contains(&token));
}
