//! The wall clock stepping under the real binary: libfaketime moves the server's wall
//! clock while its monotonic clock runs on untouched, as a bad or spoofed NTP answer
//! would, and the one clock policy (`src/rules/clock.rs`) must notice. Debian's
//! `faketime` package (cross/deps.sh) ships the library.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::harness::*;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// The one rung beside the resident during quiet hours.
const NIGHT: &str = "+15554446666";
const UNLOCK: &str = "<Response><Play digits=\"ww9\"/></Response>";

/// The server's wall clock offset, in a file libfaketime reads at every reading.
struct FakeClock {
    file: PathBuf,
}

impl FakeClock {
    fn new(dir: &Path) -> FakeClock {
        assert!(
            Path::new(LIBFAKETIME).exists(),
            "no {LIBFAKETIME}: install Debian's faketime (cross/deps.sh)"
        );
        let clock = FakeClock { file: dir.join("faketime.rc") };
        clock.set("+0");
        clock
    }

    /// Moves the wall clock to `offset` from the real time (`+6h`); whole, never torn.
    fn set(&self, offset: &str) {
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, format!("{offset}\n")).unwrap();
        std::fs::rename(&tmp, &self.file).unwrap();
    }

    /// The server's environment: only the wall clock is faked.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", LIBFAKETIME.into()),
            ("FAKETIME_TIMESTAMP_FILE", self.file.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
            ("TZ", "UTC0".into()),
        ]
    }

    fn start(&self, dir: &Path, config: Value) -> Server {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start_in(dir, config, &env)
    }
}

/// `HH:MM` in UTC, `minutes` from the real now.
fn utc_clock(minutes: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let t = (now / 60 + minutes).rem_euclid(24 * 60);
    format!("{:02}:{:02}", t / 60, t % 60)
}

/// From five and a half to six and a half hours from now: outside the hours now, inside
/// them once the clock jumps six hours forward.
fn in_six_hours() -> (String, String) {
    (utc_clock(330), utc_clock(390))
}

fn ring(s: &Server) -> Reply {
    let sid = fresh_call_sid();
    let form = with_call_sid(CALL, &sid);
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &form);
    post_signed(s, "/voice", &form, Some(&sig))
}

fn add_schedule(s: &Server) {
    let (from, to) = in_six_hours();
    let body = json!({"label": "cleaner", "days": "daily", "from": from, "to": to});
    let r = s.api("POST", "/api/schedules", &body.to_string());
    assert_eq!(r.status, 201, "{}", r.body);
}

/// The server's local time of day (it runs in UTC), in minutes, from the schedules' list.
fn server_minute(s: &Server) -> i64 {
    let list = s.api("GET", "/api/schedules", "").json();
    let time = list["local_time"].as_str().unwrap().to_string();
    time[11..13].parse::<i64>().unwrap() * 60 + time[14..16].parse::<i64>().unwrap()
}

fn clock_doubt(s: &Server) -> String {
    let status = s.api("GET", "/api/status", "").json();
    status["clock_doubt"].as_str().unwrap_or_else(|| panic!("no clock_doubt: {status}")).to_string()
}

#[test]
fn a_synchronized_clock_that_jumps_forward_into_a_schedule_forwards_the_call_and_says_why() {
    let dir = TempDir::new("clock-forward");
    let flag = dir.path().join("synchronized");
    std::fs::write(&flag, "").unwrap();
    let fake = FakeClock::new(dir.path());
    let mut c = with_sync_flag(signed_config(), &flag);
    let (from, to) = in_six_hours();
    c["forward_to"] = json!([RESIDENT, NIGHT]);
    c["ring"] = json!({"quiet_hours": {"from": from, "to": to, "only": [NIGHT]}});
    let s = fake.start(dir.path(), c);
    add_schedule(&s);
    let code = s.api("POST", "/api/codes", r#"{"label": "plumber"}"#);
    assert_eq!(code.status, 201, "{}", code.body);
    let before = ring(&s);
    assert!(
        before.body.contains("<Gather") && !before.body.contains("<Play"),
        "the code prompt: {}",
        before.body
    );
    assert_eq!(s.api("GET", "/api/status", "").json()["clock_doubt"], Value::Null);
    let real = server_minute(&s);

    // A bad NTP answer: six hours forward at once, while the monotonic clock runs on.
    fake.set("+6h");
    let r = ring(&s);
    assert!(
        r.body.contains("<Dial") && !r.body.contains("<Play") && !r.body.contains("<Gather"),
        "no schedule, no code prompt: {}",
        r.body
    );
    assert!(r.body.contains(RESIDENT) && r.body.contains(NIGHT), "everyone is rung: {}", r.body);
    // The server's clock did read six hours later, in the schedule's and quiet hours.
    let jumped = (server_minute(&s) - real).rem_euclid(24 * 60);
    assert!((359..=361).contains(&jumped), "the server's clock moved {jumped} minutes");

    let why = clock_doubt(&s);
    assert!(
        why.starts_with("the clock jumped 6h forward at ")
            && why.contains("schedules, quiet hours and guest codes wait until it is confirmed"),
        "{why}"
    );
    assert_eq!(s.api("GET", "/api/schedules", "").json()["clock_trusted"], false);
    let codes = s.api("GET", "/api/codes", "").json();
    assert!(codes["paused"].as_str().is_some_and(|p| p.contains("6h forward")), "{codes}");
    let o = s.cli(&["simulate", "--from", INTERCOM]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the clock jumped 6h forward") && err.contains("now: forwarded"), "{err}");
    let o = s.cli(&["status"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("the clock jumped 6h forward"), "{o:?}");
    assert!(s.wait_for_log("the clock jumped 6h forward"), "{}", s.logs());
}

#[test]
fn a_step_before_the_clock_is_confirmed_is_explained_by_the_first_synchronization() {
    // A new boot: fake-hwclock's saved time, then NTP's first answer steps the clock and
    // only then says it is synchronized.
    let dir = TempDir::new("clock-first-sync");
    let flag = dir.path().join("synchronized");
    let fake = FakeClock::new(dir.path());
    let s = fake.start(dir.path(), with_sync_flag(signed_config(), &flag));
    add_schedule(&s); // set in this boot: trusted on this clock
    assert!(ring(&s).body.contains("<Dial"), "outside its hours");

    fake.set("+6h");
    assert!(ring(&s).body.contains("<Dial"), "in doubt until NTP confirms the new time");
    let why = clock_doubt(&s);
    assert!(why.ends_with("wait until a time server confirms it"), "{why}");

    std::fs::write(&flag, "").unwrap();
    assert!(ring(&s).body.contains(UNLOCK), "explained: the schedule works at once");
    assert_eq!(s.api("GET", "/api/status", "").json()["clock_doubt"], Value::Null);
    assert!(s.wait_for_log("the clock is confirmed again"), "{}", s.logs());
}
