//! Household features with the real binary: the one-shot window ("let the next visitor
//! in") over the API, the CLI and signed webhooks, its race, a restart and its
//! notification.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_http::Fake;
use crate::harness::*;

const UNLOCK: &str = "<Response><Play digits=\"ww9\"/></Response>";
const STRANGER: &str = "+15550000000";
/// How long a notification may take to reach the fake hook.
const DELIVERY_WAIT: Duration = Duration::from_secs(10);

/// A signed ring on `/voice` from `from` with its own CallSid.
fn ring(s: &Server, from: &str, sid: &str) -> Reply {
    let form = [("AccountSid", "ACtest"), ("CallSid", sid), ("From", from), ("To", "+15550001111")];
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &form);
    post_signed(s, "/voice", &form, Some(&sig))
}

fn unlocks(r: &Reply) -> bool {
    r.status == 200 && r.body.contains(UNLOCK)
}

fn is_forward(r: &Reply) -> bool {
    r.status == 200 && r.body.contains("<Dial") && !r.body.contains("<Play")
}

fn status(s: &Server) -> Value {
    let r = s.api("GET", "/api/status", "");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn open_once_lets_the_first_intercom_call_in_and_forwards_the_second() {
    let hook = Fake::start(&[]);
    let mut c = signed_config();
    c["notify"] = json!({"webhook_url": hook.url("/hook")});
    let s = Server::start(c);
    let o = s.cli(&["open", "--once", "30m"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("open for the next visitor only until"), "{out}");
    let st = status(&s);
    assert_eq!((st["open"].clone(), st["once"].clone()), (json!(true), json!(true)), "{st}");
    assert!(st["remaining_seconds"].as_u64().unwrap() > 29 * 60);

    // A stranger is rejected and does not use it up.
    assert!(ring(&s, STRANGER, "CAstranger").body.contains("<Reject/>"));
    assert_eq!(status(&s)["once"], true);

    assert!(unlocks(&ring(&s, INTERCOM, "CAfirst")));
    assert!(is_forward(&ring(&s, INTERCOM, "CAsecond")), "the second visitor rings the resident");
    let st = status(&s);
    assert_eq!((st["open"].clone(), st["once"].clone()), (json!(false), json!(false)), "{st}");

    let history = events(&s, 10);
    assert_eq!(
        names(&history),
        ["call_forwarded", "call_unlocked", "once_used", "call_rejected", "window_opened"],
        "{history:?}"
    );
    assert_eq!(history[2]["call_sid"], "CAfirst");
    assert_eq!(history[4]["once"], true);
    assert!(history[4]["message"].as_str().unwrap().contains("next visitor only"), "{history:?}");

    // Notified by default: the opening, the unlock and the one-shot's end.
    let sent: Vec<Value> =
        hook.wait_for(3, DELIVERY_WAIT).iter().map(|r| r.json()["event"].clone()).collect();
    assert_eq!(sent, [json!("window_opened"), json!("once_used"), json!("call_unlocked")]);
}

#[test]
fn calls_at_the_same_moment_use_a_one_shot_window_once() {
    let s = Arc::new(Server::start(signed_config()));
    const CALLERS: usize = 8;
    for round in 0..3 {
        let r = s.api("POST", "/api/open", r#"{"minutes": 10, "once": true}"#);
        assert_eq!(r.status, 200, "{}", r.body);
        let barrier = Arc::new(Barrier::new(CALLERS));
        let answers: Vec<Reply> = (0..CALLERS)
            .map(|i| {
                let (s, barrier) = (s.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    ring(&s, INTERCOM, &format!("CArace{round}x{i}"))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let unlocked = answers.iter().filter(|r| unlocks(r)).count();
        assert_eq!(unlocked, 1, "round {round}: {:?}", answers.iter().map(|r| &r.body).collect::<Vec<_>>());
        assert!(answers.iter().filter(|r| !unlocks(r)).all(is_forward));
        let used = names(&events(&s, 50)).iter().filter(|n| *n == "once_used").count();
        assert_eq!(used, round + 1);
    }
}

#[test]
fn a_one_shot_window_survives_kill_9_and_is_still_used_once() {
    let dir = TempDir::new("once-restart");
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 20, "once": true}"#).status, 200);
    s.kill9();
    let file: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state/state.json")).unwrap()).unwrap();
    assert_eq!((file["version"].clone(), file["once"].clone()), (json!(3), json!(true)), "{file}");

    let s = Server::start_in(dir.path(), signed_config(), &[]);
    assert_eq!(status(&s)["once"], true, "same boot: kept");
    assert!(unlocks(&ring(&s, INTERCOM, "CAafter")));
    s.kill9();
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    assert_eq!(status(&s)["open"], false, "its end was on disk before the door opened");
    assert!(is_forward(&ring(&s, INTERCOM, "CAlater")));
}

/// A captured signed call, replayed after more newer calls than the memory of recent
/// answers holds, and again after a restart, is forwarded and leaves the one-shot window
/// for the next real visitor; so is one that was only asked for a guest code. A call
/// asked for a code before the restart may still enter it.
#[test]
fn an_answered_call_replayed_later_never_uses_a_one_shot_window() {
    let dir = TempDir::new("once-replay");
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    assert!(is_forward(&ring(&s, INTERCOM, "CAold")));
    let code =
        s.api("POST", "/api/codes", r#"{"label": "plumber"}"#).json()["code"].as_str().unwrap().to_string();
    for sid in ["CAasked", "CAkeypad"] {
        assert!(ring(&s, INTERCOM, sid).body.contains("<Gather"), "{sid}: prompted");
    }
    thread::scope(|scope| {
        for t in 0..4 {
            let s = &s;
            scope.spawn(move || {
                for n in 0..1030 / 4 + 1 {
                    assert!(ring(s, INTERCOM, &format!("CAnewer{t}x{n}")).body.contains("<Gather"));
                }
            });
        }
    });
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 30, "once": true}"#).status, 200);
    let replays = |s: &Server| {
        for sid in ["CAold", "CAasked"] {
            assert!(is_forward(&ring(s, INTERCOM, sid)), "{sid}");
        }
        assert_eq!(status(s)["once"], true, "still there for the next visitor");
    };
    replays(&s);
    s.kill9();
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    replays(&s);
    assert!(unlocks(&ring(&s, INTERCOM, "CAreal")), "the next real visitor");
    assert_eq!(
        names(&events(&s, 3)),
        ["call_unlocked", "once_used", "window_opened"],
        "nothing of the replays"
    );
    let mut form: Vec<(&str, &str)> =
        vec![("AccountSid", "ACtest"), ("CallSid", "CAkeypad"), ("From", INTERCOM)];
    form.extend([("To", "+15550001111"), ("Digits", code.as_str())]);
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice/code"), &form);
    assert!(unlocks(&post_signed(&s, "/voice/code", &form, Some(&sig))), "its keypad answer still counts");
}

#[test]
fn an_ordinary_window_is_not_used_up_and_bad_once_values_change_nothing() {
    let s = Server::start(signed_config());
    for bad in [r#"{"minutes": 5, "once": "yes"}"#, r#"{"once": 1}"#, r#"{"minutes": 5, "onec": true}"#] {
        let r = s.api("POST", "/api/open", bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.json()["error"].as_str().unwrap().contains("once"), "{}", r.body);
    }
    assert_eq!(status(&s)["open"], false);
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5, "once": true}"#).json()["once"], true);
    // Opening again replaces it: an ordinary window lets everyone in.
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5}"#).json()["once"], false);
    assert!(unlocks(&ring(&s, INTERCOM, "CA1")));
    assert!(unlocks(&ring(&s, INTERCOM, "CA2")));
    assert!(!names(&events(&s, 10)).contains(&"once_used".to_string()));

    // `simulate` says what the next call would do, without using it up.
    assert_eq!(s.api("POST", "/api/open", r#"{"once": true}"#).status, 200);
    let o = s.cli(&["simulate", "--from", INTERCOM]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("<Play"));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("one-shot"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(status(&s)["once"], true);
    // And `open --once` is refused on other commands in the user's terms.
    let o = s.cli(&["close", "--once"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("has no option --once"));
}

// ---- Schedules ----

/// The server's zone in these tests: a POSIX string, so no tzdata is needed.
const TZ: (&str, &str) = ("TZ", "UTC0");

/// `HH:MM` in UTC, `minutes` from now (negative: ago), rounded down to the minute.
fn utc_clock(minutes: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let t = (now / 60 + minutes).rem_euclid(24 * 60);
    format!("{:02}:{:02}", t / 60, t % 60)
}

fn add_schedule(s: &Server, label: &str, from: &str, to: &str) -> Value {
    let body = json!({"label": label, "days": "daily", "from": from, "to": to});
    let r = s.api("POST", "/api/schedules", &body.to_string());
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

#[test]
fn a_schedule_open_now_unlocks_and_one_that_ended_forwards() {
    let dir = TempDir::new("schedule-now");
    let s = Server::start_in(dir.path(), signed_config(), &[TZ]);
    let ended = add_schedule(&s, "ended", &utc_clock(-61), &utc_clock(-1));
    assert_eq!(ended["open"], false);
    assert!(is_forward(&ring(&s, INTERCOM, "CAbefore")), "a schedule that ended a minute ago forwards");

    let now = add_schedule(&s, "deliveries", &utc_clock(0), &utc_clock(60));
    assert!(unlocks(&ring(&s, INTERCOM, "CAduring")));
    assert!(ring(&s, STRANGER, "CAstranger").body.contains("<Reject/>"), "strangers still rejected");
    let history = events(&s, 3);
    assert_eq!(names(&history), ["call_rejected", "call_unlocked_schedule", "call_forwarded"]);
    assert_eq!(history[1]["label"], "deliveries");
    assert_eq!(history[1]["call_sid"], "CAduring");
    assert!(history[1]["message"].as_str().unwrap().contains("deliveries"));

    // The status and the list say so; the window itself stays closed.
    let st = status(&s);
    assert_eq!((st["open"].clone(), st["schedule"]["label"].clone()), (json!(false), json!("deliveries")));
    let list = s.api("GET", "/api/schedules", "").json();
    assert_eq!((list["time_zone"].clone(), list["clock_trusted"].clone()), (json!("UTC0"), json!(true)));
    assert_eq!(list["schedules"][1]["open"], true, "{list}");

    // Paused (by the id the status names, as the page's "Pause this schedule" does):
    // forwards; resumed: unlocks again; deleted: forwards.
    let id = now["id"].as_str().unwrap();
    assert_eq!(st["schedule"]["id"], id);
    let r = s.api("POST", &format!("/api/schedules/{id}/pause"), "");
    assert_eq!((r.status, r.json()["paused"].clone()), (200, json!(true)), "{}", r.body);
    assert!(is_forward(&ring(&s, INTERCOM, "CApaused")));
    assert_eq!(s.api("POST", &format!("/api/schedules/{id}/resume"), "").status, 200);
    assert!(unlocks(&ring(&s, INTERCOM, "CAresumed")));

    // A one-shot window is kept for a visitor outside the schedule.
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 10, "once": true}"#).status, 200);
    assert!(unlocks(&ring(&s, INTERCOM, "CAsched")));
    assert_eq!(status(&s)["once"], true, "not used up by a visitor the schedule let in");

    assert_eq!(s.api("DELETE", &format!("/api/schedules/{id}"), "").status, 204);
    assert_eq!(s.api("DELETE", &format!("/api/schedules/{id}"), "").status, 404);
    assert_eq!(s.api("POST", "/api/close", "").status, 200);
    assert!(is_forward(&ring(&s, INTERCOM, "CAafter")));
}

#[test]
fn a_reboot_with_an_untrusted_clock_does_not_open_by_schedule() {
    let dir = TempDir::new("schedule-reboot");
    let flag = dir.path().join("synchronized");
    let config = with_sync_flag(signed_config(), &flag);
    let s = Server::start_in(dir.path(), config.clone(), &[TZ, ("INTERCOM_BOOT_ID", "boot-one")]);
    add_schedule(&s, "cleaner", &utc_clock(-5), &utc_clock(60));
    assert!(unlocks(&ring(&s, INTERCOM, "CA1")), "made in this boot: trusted");
    s.kill9();

    let s = Server::start_in(dir.path(), config.clone(), &[TZ, ("INTERCOM_BOOT_ID", "boot-two")]);
    assert!(is_forward(&ring(&s, INTERCOM, "CA2")), "another boot, clock not synchronized");
    assert_eq!(s.api("GET", "/api/schedules", "").json()["clock_trusted"], false);
    assert_eq!(status(&s)["schedule"], Value::Null);
    let o = s.cli(&["schedule", "list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("not confirmed"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // NTP synchronizes: the flag appears, and the schedule works again.
    std::fs::write(&flag, "").unwrap();
    assert!(unlocks(&ring(&s, INTERCOM, "CA3")));
}

#[test]
fn schedules_through_the_cli_and_simulate() {
    let dir = TempDir::new("schedule-cli");
    let s = Server::start_in(dir.path(), signed_config(), &[TZ]);
    let range = format!("{}-{}", utc_clock(-1), utc_clock(30));
    let o = s.cli(&["schedule", "add", "daily", &range, "--label", "party"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("daily") && out.contains("\"party\"") && out.contains("open until"), "{out}");
    let id = out.split_whitespace().next().unwrap().to_string();
    // `close` cannot shut what the schedule opened: it says so, and how.
    let o = s.cli(&["close"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let pause = format!("intercom schedule pause {id} --config {}", s.config_path.display());
    assert!(
        o.status.success() && out.starts_with("closed, but schedule \"party\" lets visitors in until "),
        "{out}"
    );
    assert!(out.contains(&format!("pause schedule \"party\": {pause}")), "{out}");

    let o = s.cli(&["simulate", "--from", INTERCOM]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("<Play") && err.contains("schedule \"party\""),
        "{err}"
    );

    let o = s.cli(&["schedule", "pause", &id]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("paused"));
    let o = s.cli(&["simulate", "--from", INTERCOM]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("<Dial"));
    let o = s.cli(&["schedule", "list"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("time zone UTC0") && out.contains(&id) && out.contains("paused"), "{out}");
    assert!(s.cli(&["schedule", "resume", &id]).status.success());
    assert!(s.cli(&["schedule", "rm", &id]).status.success());
    assert!(String::from_utf8_lossy(&s.cli(&["schedule", "list"]).stdout).contains("no schedules"));

    // Bad input: one clear line naming what is wrong, non-zero, nothing changed.
    for (args, says) in [
        (vec!["schedule", "add", "funday", "08:00-18:00"], "days"),
        (vec!["schedule", "add", "mon", "08:00-25:00"], "25:00"),
        (vec!["schedule", "add", "mon", "0800"], "time range"),
        (
            vec!["schedule", "rm", "nosuch"],
            "there is no schedule nosuch: `intercom schedule list` shows them",
        ),
    ] {
        let o = s.cli(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(s.api("GET", "/api/schedules", "").json()["schedules"], json!([]));
}

#[test]
fn bad_schedule_requests_and_a_corrupt_file_change_nothing() {
    let dir = TempDir::new("schedule-bad");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("schedules.json"), "{\"version\": 1, \"schedules\": [").unwrap();
    let s = Server::start_in(dir.path(), signed_config(), &[TZ]);
    assert!(is_forward(&ring(&s, INTERCOM, "CA1")));
    assert!(!state.join("schedules.json").exists(), "moved aside");
    let kept = std::fs::read_dir(&state)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("schedules.json"))
        .count();
    assert_eq!(kept, 1, "the bad file is kept under another name");

    for (body, names_key) in [
        (r#"{"label": "x", "days": "mon", "from": "08:00"}"#, "to"),
        (r#"{"label": "x", "days": "someday", "from": "08:00", "to": "09:00"}"#, "days"),
        (r#"{"label": "x", "days": "mon", "from": "8", "to": "09:00"}"#, "time"),
        (r#"{"label": "x", "days": "mon", "from": "08:00", "to": "09:00", "open": true}"#, "open"),
        (r#"{"label": "x", "days": "mon", "from": "08:00", "to": "08:00"}"#, "same time"),
        ("not json", "JSON"),
    ] {
        let r = s.api("POST", "/api/schedules", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.json()["error"].as_str().unwrap().contains(names_key), "{body}: {}", r.body);
    }
    assert_eq!(s.api("GET", "/api/schedules", "").json()["schedules"], json!([]));
    assert_eq!(s.api("PUT", "/api/schedules", "").status, 405);
    assert_eq!(s.api("GET", "/api/schedules/abc/pause", "").status, 405);
    assert_eq!(s.api("POST", "/api/schedules/abc/open", "").status, 404);
    assert_eq!(s.api("POST", "/api/schedules/abc/pause", "").status, 404);
    let r = request(s.control, "GET", "/api/schedules", &[], b"");
    assert_eq!(r.status, 401);
}

// ---- Several entrances ----

const GATE: &str = "+15558880001";
const DOOR: &str = "+15558880002";

fn two_entrances() -> Value {
    let mut c = signed_config();
    c.as_object_mut().unwrap().remove("intercom_number");
    c["intercoms"] = json!([
        {"name": "street gate", "number": GATE, "unlock_digits": "9"},
        {"name": "house door", "number": DOOR, "unlock_digits": "ww1#"},
    ]);
    c
}

#[test]
fn two_intercoms_each_get_their_own_tones_and_a_third_number_is_rejected() {
    let hook = Fake::start(&[]);
    let mut c = two_entrances();
    c["notify"] = json!({"webhook_url": hook.url("/hook"), "events": ["call_unlocked", "call_forwarded"]});
    let s = Server::start(c);
    assert!(is_forward(&ring(&s, GATE, "CAgate0")), "closed: the gate's visitor rings the resident");
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5}"#).status, 200);
    let gate = ring(&s, GATE, "CAgate");
    let door = ring(&s, DOOR, "CAdoor");
    assert!(gate.body.contains("<Play digits=\"9\"/>"), "{}", gate.body);
    assert!(door.body.contains("<Play digits=\"ww1#\"/>"), "{}", door.body);
    assert!(ring(&s, INTERCOM, "CAthird").body.contains("<Reject/>"), "a third number");

    let history = events(&s, 4);
    assert_eq!(names(&history), ["call_rejected", "call_unlocked", "call_unlocked", "window_opened"]);
    assert_eq!(
        (history[1]["entrance"].clone(), history[2]["entrance"].clone()),
        (json!("house door"), json!("street gate"))
    );
    assert!(history[1]["message"].as_str().unwrap().starts_with("house door: "), "{history:?}");
    assert!(history[0].get("entrance").is_none());
    let sent: Vec<Value> = hook.wait_for(3, DELIVERY_WAIT).iter().map(|r| r.json()).collect();
    let entrances: Vec<Value> = sent.iter().map(|r| r["entrance"].clone()).collect();
    assert_eq!(entrances, [json!("street gate"), json!("street gate"), json!("house door")], "{sent:?}");

    // A one-shot window lets in the first visitor at whichever door, with that door's tones.
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5, "once": true}"#).status, 200);
    assert!(ring(&s, DOOR, "CAonce").body.contains("<Play digits=\"ww1#\"/>"));
    assert!(is_forward(&ring(&s, GATE, "CAonce2")));

    let o = s.cli(&["simulate", "--from", DOOR]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("at house door"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = s.cli(&["check-config"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("street gate +15558880001 (9)") && out.contains("house door"), "{out}");
}

#[test]
fn a_schedule_limited_to_one_entrance_lets_in_only_there() {
    let dir = TempDir::new("entrance-schedule");
    let s = Server::start_in(dir.path(), two_entrances(), &[TZ]);
    let body = json!({"label": "parcels", "days": "daily", "from": utc_clock(-1), "to": utc_clock(60), "entrance": "street gate"});
    let r = s.api("POST", "/api/schedules", &body.to_string());
    assert_eq!((r.status, r.json()["entrance"].clone()), (201, json!("street gate")), "{}", r.body);
    assert!(ring(&s, GATE, "CAgate").body.contains("<Play digits=\"9\"/>"));
    assert!(is_forward(&ring(&s, DOOR, "CAdoor")), "the house door is not in the schedule");
    let history = events(&s, 2);
    assert_eq!(names(&history), ["call_forwarded", "call_unlocked_schedule"]);
    assert_eq!(
        (history[1]["entrance"].clone(), history[1]["label"].clone()),
        (json!("street gate"), json!("parcels"))
    );
    assert_eq!(status(&s)["schedule"]["label"], "parcels", "the page shows it");

    let o = s.cli(&["schedule", "list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("street gate only"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let bad = json!({"label": "x", "days": "daily", "from": "08:00", "to": "09:00", "entrance": "back door"});
    let r = s.api("POST", "/api/schedules", &bad.to_string());
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("street gate, house door"), "{}", r.body);
    assert_eq!(s.api("GET", "/api/schedules", "").json()["schedules"].as_array().unwrap().len(), 1);
}

#[test]
fn a_config_with_both_forms_or_a_repeated_number_is_refused_naming_the_key() {
    let dir = TempDir::new("entrances-bad");
    let path = dir.path().join("c.json");
    let mut c = two_entrances();
    c["intercom_number"] = json!(INTERCOM);
    std::fs::write(&path, c.to_string()).unwrap();
    let o = cli(&path, &["check-config"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("`intercoms`"));
    let mut c = two_entrances();
    c["intercoms"][1]["number"] = json!(GATE);
    std::fs::write(&path, c.to_string()).unwrap();
    let o = cli(&path, &["check-config"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("`intercoms`") && err.contains("used twice"), "{err}");
}

// ---- Ring order ----

const ANNA: &str = "+15552220001";
const BEN: &str = "+15552220002";
const LANDLINE: &str = "+15552220003";
const NO_ANSWER: &str = "Nobody is home, sorry.";

fn sequential_config() -> Value {
    let mut c = signed_config();
    c["forward_to"] = json!([ANNA, BEN, LANDLINE]);
    c["dial_timeout"] = json!("25s");
    c["no_answer_message"] = json!(NO_ANSWER);
    c["ring"] = json!({"order": "sequential", "ring_times": {ANNA: "20s", BEN: "15s"}});
    c
}

/// Twilio's post to our `<Dial action>`: the call's parameters and how the dial ended,
/// signed over the action URL with its query.
fn dial_ended(s: &Server, step: &str, from: &str, status: &str) -> Reply {
    let mut form = vec![
        ("AccountSid", "ACtest"),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", "CAseq"),
        ("CallStatus", "in-progress"),
        ("Direction", "inbound"),
        ("From", from),
        ("To", "+15550001111"),
        ("DialCallStatus", status),
    ];
    if status == "completed" {
        form.extend([("DialCallSid", "CAchild"), ("DialCallDuration", "42")]);
    }
    let path = format!("/voice/next?step={step}");
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}{path}"), &form);
    post_signed(s, &path, &form, Some(&sig))
}

fn dial_to(number: &str, timeout: u32, step: usize) -> String {
    format!(
        "<Dial answerOnBridge=\"true\" timeout=\"{timeout}\" action=\"{PUBLIC}/voice/next?step={step}\" method=\"POST\"><Number>{number}</Number></Dial>"
    )
}

#[test]
fn sequential_order_rings_one_person_after_another_through_signed_callbacks() {
    let s = Server::start(sequential_config());
    let first = ring(&s, INTERCOM, "CAseq");
    assert!(first.body.contains(&format!("<Response>{}</Response>", dial_to(ANNA, 20, 1))), "{}", first.body);

    let r = dial_ended(&s, "1", INTERCOM, "no-answer");
    assert!(r.body.contains(&format!("<Response>{}</Response>", dial_to(BEN, 15, 2))), "{}", r.body);
    let r = dial_ended(&s, "2", INTERCOM, "busy");
    assert!(r.body.contains(&dial_to(LANDLINE, 25, 3)), "ring time: dial_timeout: {}", r.body);
    let r = dial_ended(&s, "3", INTERCOM, "failed");
    assert!(r.body.contains(&format!("<Response><Say>{NO_ANSWER}</Say><Hangup/></Response>")), "{}", r.body);
    let r = dial_ended(&s, "2", INTERCOM, "completed");
    assert!(r.body.contains("<Response><Hangup/></Response>"), "Ben took the call: {}", r.body);
    let r = dial_ended(&s, "1", INTERCOM, "canceled");
    assert!(r.body.contains(&dial_to(BEN, 15, 2)), "{}", r.body);

    // The whole call is one forward in the history.
    assert_eq!(names(&events(&s, 10)), ["call_forwarded"]);

    // Fails closed: unsigned or wrongly signed, a stranger, a bad step, another method.
    let form = [("From", INTERCOM), ("DialCallStatus", "no-answer")];
    assert_eq!(post_signed(&s, "/voice/next?step=1", &form, None).status, 403);
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice/next?step=1"), &form);
    assert_eq!(
        post_signed(&s, "/voice/next?step=2", &form, Some(&sig)).status,
        403,
        "signed for another step"
    );
    assert!(dial_ended(&s, "1", STRANGER, "no-answer").body.contains("<Reject/>"));
    for step in ["0", "x", "101", ""] {
        assert_eq!(dial_ended(&s, step, INTERCOM, "no-answer").status, 400, "step {step:?}");
    }
    assert_eq!(request(s.webhook, "GET", "/voice/next?step=1", &[], b"").status, 405);

    // An open window still unlocks at once; simulate shows the first Dial.
    let o = s.cli(&["simulate", "--from", INTERCOM]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&dial_to(ANNA, 20, 1)));
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5}"#).status, 200);
    assert!(unlocks(&ring(&s, INTERCOM, "CAopen")));
}

/// Where an answer sends Twilio next, as Twilio calls it: the action's path and query.
fn action_of(body: &str) -> String {
    let url = body.split("action=\"").nth(1).and_then(|a| a.split('"').next()).expect(body);
    url.replace("&amp;", "&").strip_prefix(PUBLIC).expect(body).to_string()
}

#[test]
fn the_query_overrides_round_trip_through_every_action_url_decoded_and_encoded_again() {
    let s = Server::start(sequential_config());
    assert_eq!(s.api("POST", "/api/codes", r#"{"label": "plumber"}"#).status, 201);
    // A hand-written webhook URL: an encoded name, a formatted number, %20 and + for spaces.
    let voice =
        "/voice?Expected%46rom=%2B1+(555)+111-2222&PhoneNumberToDial=%2B1%20555%20444%205555,%2B15554446666";
    let post = |path: &str, extra: &[(&'static str, &'static str)]| {
        let mut form = vec![("CallSid", "CAcarry"), ("From", "+15551112222")];
        form.extend(extra);
        let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}{path}"), &form);
        post_signed(&s, path, &form, Some(&sig))
    };
    let r = post(voice, &[]);
    assert!(r.body.contains("<Gather"), "the overridden caller is prompted: {}", r.body);
    let code = action_of(&r.body);
    let carried = "ExpectedFrom=%2B1+%28555%29+111-2222&PhoneNumberToDial=%2B1+555+444+5555,%2B15554446666";
    assert_eq!(code, format!("/voice/code?{carried}"));

    let r = post(&code, &[("Digits", "")]);
    assert!(r.body.contains(">+15554445555</Number></Dial>"), "the caller and numbers hold: {}", r.body);
    let next = action_of(&r.body);
    assert_eq!(next, format!("/voice/next?{carried}&step=1"));
    let r = post(&next, &[("DialCallStatus", "no-answer")]);
    assert!(r.body.contains(">+15554446666</Number></Dial>"), "{}", r.body);
    assert_eq!(action_of(&r.body), format!("/voice/next?{carried}&step=2"));
    let r = post(&action_of(&r.body), &[("DialCallStatus", "busy")]);
    assert!(r.body.contains(NO_ANSWER), "{}", r.body);
}

#[test]
fn quiet_hours_ring_only_the_chosen_numbers_on_a_trusted_clock() {
    let dir = TempDir::new("quiet");
    let flag = dir.path().join("synchronized");
    std::fs::write(&flag, "").unwrap();
    let mut c = sequential_config();
    c["ring"]["quiet_hours"] = json!({"from": "00:00", "to": "24:00", "only": [LANDLINE]});
    let c = with_sync_flag(c, &flag);
    let synced = [TZ];
    let s = Server::start_in(dir.path(), c.clone(), &synced);
    let r = ring(&s, INTERCOM, "CAquiet");
    assert!(r.body.contains(&format!("<Response>{}</Response>", dial_to(LANDLINE, 25, 1))), "{}", r.body);
    let r = dial_ended(&s, "1", INTERCOM, "no-answer");
    assert!(r.body.contains(&format!("<Say>{NO_ANSWER}</Say>")), "only the landline: {}", r.body);
    drop(s);

    // A clock that is not trusted: quiet hours do not apply, everyone is rung.
    std::fs::remove_file(&flag).unwrap();
    let s = Server::start_in(dir.path(), c.clone(), &synced);
    assert!(ring(&s, INTERCOM, "CAnight").body.contains(&dial_to(ANNA, 20, 1)));
    drop(s);

    // check-config says who rings when.
    let path = dir.path().join("bad.json");
    std::fs::write(&path, c.to_string()).unwrap();
    let out = String::from_utf8_lossy(&cli(&path, &["check-config"]).stdout).to_string();
    let want = format!("sequential: {ANNA} 20s, {BEN} 15s, {LANDLINE} 25s; quiet 00:00-24:00: {LANDLINE}");
    assert!(out.contains(&want), "{out}");

    // Bad ring config: named keys.
    for (ring_cfg, says) in [
        (json!({"order": "random"}), "`ring.order`"),
        (json!({"ring_times": {"+15559990000": "20s"}}), "not one of forward_to"),
        (json!({"ring_times": {ANNA: "2s"}}), "between 5s and 600s"),
        (json!({"quiet_hours": {"from": "22:00", "to": "25:00", "only": [ANNA]}}), "`ring.quiet_hours`"),
        (
            json!({"quiet_hours": {"from": "22:00", "to": "07:00", "only": ["+15559990000"]}}),
            "`ring.quiet_hours.only`",
        ),
        (json!({"orderr": "sequential"}), "unknown key"),
    ] {
        let mut c = c.clone();
        c["ring"] = ring_cfg;
        std::fs::write(&path, c.to_string()).unwrap();
        let o = cli(&path, &["check-config"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{says}: {err}");
    }
}
