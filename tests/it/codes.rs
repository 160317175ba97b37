//! Guest codes over real HTTP with signed webhooks: the prompt, right / wrong / used-up /
//! expired codes, strangers and unsigned requests, the lockout, an open window, kill -9
//! after a use, the API's checks and the CLI. Codes must never reach a log or the history.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::fake_http::Fake;
use crate::harness::*;

const STRANGER: &str = "+15550000000";

/// A ring on `/voice`, signed: a new call each time.
fn ring(s: &Server) -> Reply {
    let sid = fresh_call_sid();
    let form = with_call_sid(CALL, &sid);
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &form);
    post_signed(s, "/voice", &form, Some(&sig))
}

/// Twilio's post to our Gather's action: the call's parameters plus `Digits`, signed; a
/// new call each time.
fn enter(s: &Server, from: &str, digits: Option<&str>) -> Reply {
    enter_as(s, &fresh_call_sid(), from, digits)
}

/// [`enter`] for the call `sid`.
fn enter_as(s: &Server, sid: &str, from: &str, digits: Option<&str>) -> Reply {
    let mut form: Vec<(&str, &str)> =
        with_call_sid(CALL, sid).into_iter().filter(|(k, _)| *k != "From").collect();
    form.push(("From", from));
    if let Some(d) = digits {
        form.push(("Digits", d));
    }
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice/code"), &form);
    post_signed(s, "/voice/code", &form, Some(&sig))
}

fn add(s: &Server, body: Value) -> Value {
    let r = s.api("POST", "/api/codes", &body.to_string());
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

fn codes(s: &Server) -> Vec<Value> {
    let r = s.api("GET", "/api/codes", "");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["codes"].as_array().unwrap().clone()
}

/// A six-digit string that is none of the active codes.
fn wrong_for(s: &Server) -> String {
    let taken: Vec<String> = codes(s).iter().map(|c| c["code"].as_str().unwrap().to_string()).collect();
    (0..100).map(|n| format!("{:06}", 100_000 + n)).find(|d| !taken.contains(d)).unwrap()
}

const PROMPT: &str = "<Response><Gather input=\"dtmf\" numDigits=\"6\" timeout=\"5\" action=\"https://door.example.com/voice/code\" method=\"POST\" actionOnEmptyResult=\"true\"><Say>";
const UNLOCK: &str = "<Response><Play digits=\"ww9\"/></Response>";

fn is_forward(r: &Reply) -> bool {
    r.status == 200 && r.body.contains("<Dial answerOnBridge=\"true\"") && !r.body.contains("<Gather")
}

/// No code in the log of the server or in the history file.
fn assert_secret(s: &Server, code: &str) {
    assert!(!s.logs().contains(code), "the code is in the log:\n{}", s.logs());
    let history = std::fs::read_to_string(s.state_dir.join("events.jsonl")).unwrap_or_default();
    assert!(!history.contains(code), "the code is in the history:\n{history}");
}

#[test]
fn without_an_active_code_the_answer_is_exactly_todays() {
    let s = Server::start(signed_config());
    let today = ring(&s);
    assert!(is_forward(&today), "{}", today.body);
    let c = add(&s, json!({"label": "plumber"}));
    assert!(ring(&s).body.contains(PROMPT));
    assert_eq!(s.api("DELETE", &format!("/api/codes/{}", c["id"].as_str().unwrap()), "").status, 204);
    assert_eq!(ring(&s).body, today.body, "deleted: back to exactly today's TwiML");
}

#[test]
fn a_right_code_unlocks_once_per_use_and_is_counted() {
    let s = Server::start(signed_config());
    let c = add(&s, json!({"label": "plumber", "minutes": 60, "uses": 2}));
    let code = c["code"].as_str().unwrap();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{c}");
    assert_eq!(c["uses_left"], 2);

    assert!(ring(&s).body.contains(PROMPT), "offered the prompt");
    let r = enter(&s, INTERCOM, Some(code));
    assert!(r.body.contains(UNLOCK), "{}", r.body);
    assert_eq!(codes(&s)[0]["uses_left"], 1);
    let newest = &events(&s, 1)[0];
    assert_eq!(newest["event"], "call_unlocked_code");
    assert_eq!(newest["label"], "plumber");

    assert!(enter(&s, INTERCOM, Some(code)).body.contains(UNLOCK), "the second use");
    assert!(codes(&s).is_empty(), "used up: no longer active");
    // Used up: no prompt, and the digits are now just digits.
    assert!(is_forward(&ring(&s)));
    let late = enter(&s, INTERCOM, Some(code));
    assert!(is_forward(&late), "{}", late.body);
    assert_eq!(names(&events(&s, 1)), ["call_forwarded"], "not even a wrong code: nothing is active");
    assert_secret(&s, code);
}

#[test]
fn wrong_and_empty_entries_forward_and_wrong_ones_are_recorded() {
    let s = Server::start(signed_config());
    let c = add(&s, json!({"label": "cleaner"}));
    let wrong = wrong_for(&s);
    let r = enter(&s, INTERCOM, Some(&wrong));
    assert!(is_forward(&r), "{}", r.body);
    assert_eq!(names(&events(&s, 2)), ["call_forwarded", "code_rejected"]);
    for empty in [None, Some("")] {
        assert!(is_forward(&enter(&s, INTERCOM, empty)));
        assert_eq!(names(&events(&s, 1)), ["call_forwarded"]);
    }
    assert_eq!(codes(&s)[0]["uses_left"], 1, "nothing used");
    assert_secret(&s, &wrong);
    assert_secret(&s, c["code"].as_str().unwrap());
}

#[test]
fn strangers_and_unsigned_requests_never_use_a_code() {
    let s = Server::start(signed_config());
    let c = add(&s, json!({"label": "plumber"}));
    let code = c["code"].as_str().unwrap();

    let r = enter(&s, STRANGER, Some(code));
    assert!(r.body.contains("<Response><Reject/></Response>"), "{}", r.body);
    let sig_stranger =
        sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &[("From", STRANGER), ("CallSid", "CA1")]);
    let r = post_signed(&s, "/voice", &[("From", STRANGER), ("CallSid", "CA1")], Some(&sig_stranger));
    assert!(r.body.contains("<Reject/>") && !r.body.contains("Gather"), "no prompt for strangers");

    let mut form: Vec<(&str, &str)> = CALL.to_vec();
    form.push(("Digits", code));
    assert_eq!(post_signed(&s, "/voice/code", &form, None).status, 403, "unsigned");
    let for_voice = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &form);
    assert_eq!(
        post_signed(&s, "/voice/code", &form, Some(&for_voice)).status,
        403,
        "signed for another path"
    );
    let get = s.call("GET", &format!("/voice/code?From=%2B15558889999&Digits={code}"), "");
    assert_eq!(get.status, 405);
    assert_eq!(codes(&s)[0]["uses_left"], 1, "nothing was used");
    assert!(!names(&events(&s, 20)).contains(&"call_unlocked_code".to_string()));
    assert_secret(&s, code);
}

#[test]
fn a_last_use_is_granted_once_however_many_calls_race_for_it() {
    let s = Server::start(signed_config());
    let code = add(&s, json!({"label": "plumber", "uses": 1}))["code"].as_str().unwrap().to_string();
    let unlocked = std::thread::scope(|scope| {
        let tries: Vec<_> = (0..8).map(|_| scope.spawn(|| enter(&s, INTERCOM, Some(&code)))).collect();
        tries.into_iter().map(|t| t.join().unwrap()).filter(|r| r.body.contains(UNLOCK)).count()
    });
    assert_eq!(unlocked, 1);
    assert!(codes(&s).is_empty());
}

#[test]
fn the_prompt_keeps_the_number_overrides_for_the_forward() {
    let s = Server::start(signed_config());
    add(&s, json!({"label": "plumber"}));
    let query = "PhoneNumberToDial=%2B15554445555";
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice?{query}"), CALL);
    let r = post_signed(&s, &format!("/voice?{query}"), CALL, Some(&sig));
    assert!(r.body.contains(&format!("action=\"{PUBLIC}/voice/code?{query}\"")), "{}", r.body);
    let mut form = CALL.to_vec();
    form.push(("Digits", ""));
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice/code?{query}"), &form);
    let r = post_signed(&s, &format!("/voice/code?{query}"), &form, Some(&sig));
    assert!(r.body.contains("<Number>+15554445555</Number>") && !r.body.contains(RESIDENT), "{}", r.body);
}

#[test]
fn an_open_window_unlocks_at_once_without_using_a_code() {
    let s = Server::start(signed_config());
    let c = add(&s, json!({"label": "plumber"}));
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5}"#).status, 200);
    assert!(ring(&s).body.contains(UNLOCK), "no prompt while open");
    // A visitor who was prompted just before the window opened.
    assert!(enter(&s, INTERCOM, Some(c["code"].as_str().unwrap())).body.contains(UNLOCK));
    assert_eq!(names(&events(&s, 1)), ["call_unlocked"]);
    assert_eq!(codes(&s)[0]["uses_left"], 1, "the code was not spent");
}

#[test]
fn five_wrong_codes_lock_codes_and_notify_and_the_lock_survives_a_restart() {
    let target = Fake::start(&[]);
    let dir = TempDir::new("codes-lock");
    let mut config = signed_config();
    config["notify"] = json!({"webhook_url": target.url("/hook")});
    let s = Server::start_in(dir.path(), config.clone(), &[]);
    let c = add(&s, json!({"label": "plumber"}));
    let code = c["code"].as_str().unwrap().to_string();
    let wrong = wrong_for(&s);
    for _ in 0..5 {
        assert!(is_forward(&enter(&s, INTERCOM, Some(&wrong))));
    }
    assert_eq!(names(&events(&s, 3)), ["call_forwarded", "codes_locked", "code_rejected"]);
    assert!(is_forward(&ring(&s)), "locked: no prompt");
    let listed = s.api("GET", "/api/codes", "").json();
    assert!(listed["paused"].as_str().unwrap().contains("locked"), "the API says why: {listed}");
    assert!(is_forward(&enter(&s, INTERCOM, Some(&code))), "locked: not even the right code");
    assert_eq!(codes(&s)[0]["uses_left"], 1);
    let seen = target.wait_for(1, Duration::from_secs(15));
    assert!(seen.iter().any(|r| r.json()["event"] == "codes_locked"), "codes_locked is notified by default");

    s.kill9();
    let s = Server::start_in(dir.path(), config, &[]);
    assert!(is_forward(&ring(&s)), "still locked after a restart");
    assert!(is_forward(&enter(&s, INTERCOM, Some(&code))));
    assert_eq!(codes(&s)[0]["uses_left"], 1);
    assert_secret(&s, &code);
}

#[test]
fn a_use_survives_kill_9_right_after_the_answer() {
    let dir = TempDir::new("codes-kill");
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    let code = add(&s, json!({"label": "plumber", "uses": 2}))["code"].as_str().unwrap().to_string();
    assert!(enter(&s, INTERCOM, Some(&code)).body.contains(UNLOCK));
    s.kill9();
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    assert_eq!(codes(&s)[0]["uses_left"], 1, "the use was on disk before the answer");
    assert_eq!(names(&events(&s, 1)), ["call_unlocked_code"]);
    assert!(enter(&s, INTERCOM, Some(&code)).body.contains(UNLOCK));
    s.kill9();
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    assert!(codes(&s).is_empty());
    assert!(is_forward(&enter(&s, INTERCOM, Some(&code))));
}

#[test]
fn expired_codes_are_not_accepted_and_a_corrupt_file_means_no_codes() {
    let dir = TempDir::new("codes-file");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let t = |offset: i64| {
        let now = SystemTime::now();
        let at = if offset < 0 {
            now - Duration::from_secs(offset.unsigned_abs())
        } else {
            now + Duration::from_secs(offset as u64)
        };
        rfc3339(at)
    };
    // Written in this boot (the server reads the kernel's boot id, as the test does).
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim().to_string();
    let file = json!({"version": 2, "failures": [], "locked_until": null, "codes": [
        {"id": "old1", "code": "111111", "label": "yesterday", "valid_until": t(-60), "uses_left": 1, "boot_id": boot},
        {"id": "new1", "code": "222222", "label": "today", "valid_until": t(3600), "uses_left": 1, "boot_id": boot},
    ]});
    std::fs::write(state.join("codes.json"), file.to_string()).unwrap();
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    assert_eq!(codes(&s).iter().map(|c| c["id"].clone()).collect::<Vec<_>>(), ["new1"]);
    assert!(is_forward(&enter(&s, INTERCOM, Some("111111"))), "expired");
    assert_eq!(names(&events(&s, 2)), ["call_forwarded", "code_rejected"]);
    assert!(enter(&s, INTERCOM, Some("222222")).body.contains(UNLOCK));
    s.kill9();

    std::fs::write(state.join("codes.json"), b"{\"version\": 1, \"codes\": [{\"id\"").unwrap();
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    assert!(codes(&s).is_empty());
    assert!(is_forward(&ring(&s)), "fail closed: no prompt");
    let kept = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().into_string().unwrap());
    assert!(kept.into_iter().any(|n| n.starts_with("codes.json.bad-")), "moved aside, not deleted");
    assert!(s.logs().contains("guest codes file"), "{}", s.logs());
}

#[test]
fn the_api_checks_every_field_and_the_limit() {
    let s = Server::start(base_config());
    for (body, field) in [
        (r#"{"minutes": 0}"#, "minutes"),
        (r#"{"minutes": 10081}"#, "minutes"),
        (r#"{"uses": 0}"#, "uses"),
        (r#"{"uses": 21}"#, "uses"),
        (r#"{"label": ""}"#, "label"),
        (&format!(r#"{{"label": "{}"}}"#, "x".repeat(41)), "label"),
        (r#"{"label": "a\u0007b"}"#, "label"),
        (r#"{"colour": "red"}"#, "colour"),
    ] {
        let r = s.api("POST", "/api/codes", body);
        assert_eq!(r.status, 400, "{body}");
        assert!(r.json()["error"].as_str().unwrap().contains(field), "{body}: {}", r.body);
    }
    let c = add(&s, json!({"label": "x".repeat(40), "minutes": 10080, "uses": 20}));
    assert_eq!(c["uses_left"], 20);
    let left = c["remaining_seconds"].as_u64().unwrap();
    assert!((10080 * 60 - 5..=10080 * 60).contains(&left), "{c}");
    let unauthorized = request(s.control, "GET", "/api/codes", &[], b"");
    assert_eq!(unauthorized.status, 401);
    assert!(!unauthorized.body.contains(c["code"].as_str().unwrap()));
    for _ in 1..20 {
        add(&s, json!({}));
    }
    let full = s.api("POST", "/api/codes", "{}");
    assert_eq!(full.status, 409, "{}", full.body);
    assert!(full.json()["error"].as_str().unwrap().contains("20"));
    let all = codes(&s);
    let mut digits: Vec<_> = all.iter().map(|c| c["code"].as_str().unwrap()).collect();
    digits.sort();
    digits.dedup();
    assert_eq!(digits.len(), 20, "unique among active codes");
    assert_eq!(s.api("DELETE", "/api/codes/nope", "").status, 404);
    assert_eq!(s.api("GET", &format!("/api/codes/{}", all[0]["id"].as_str().unwrap()), "").status, 405);
    assert_eq!(s.api("PUT", "/api/codes", "").status, 405);
    assert_eq!(s.api("DELETE", &format!("/api/codes/{}", all[0]["id"].as_str().unwrap()), "").status, 204);
    assert_eq!(codes(&s).len(), 19);
}

#[test]
fn the_cli_adds_lists_and_removes_codes() {
    let s = Server::start(base_config());
    let out = s.cli(&["code", "add", "--label", "plumber", "--valid", "4h", "--uses", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let code = stdout.lines().next().unwrap().to_string();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{stdout}");
    assert!(stdout.contains("\"plumber\", 2 uses left"), "{stdout}");
    let api = codes(&s);
    assert_eq!((api[0]["code"].as_str(), api[0]["uses_left"].as_u64()), (Some(code.as_str()), Some(2)));
    assert!(api[0]["remaining_seconds"].as_u64().unwrap() > 4 * 3600 - 10);

    let simulated = String::from_utf8(s.cli(&["simulate", "--from", INTERCOM]).stdout).unwrap();
    assert!(
        simulated.contains("<Gather input=\"dtmf\"") && simulated.contains("action=\"/voice/code\""),
        "{simulated}"
    );

    let list = String::from_utf8(s.cli(&["code", "list"]).stdout).unwrap();
    assert!(list.contains(&code) && list.contains("plumber"), "{list}");
    let id = api[0]["id"].as_str().unwrap();
    let rm = s.cli(&["code", "rm", id]);
    assert!(rm.status.success(), "{}", String::from_utf8_lossy(&rm.stderr));
    assert!(String::from_utf8(s.cli(&["code", "list"]).stdout).unwrap().contains("no active guest codes"));
    assert!(String::from_utf8(s.cli(&["simulate", "--from", INTERCOM]).stdout).unwrap().contains("<Dial"));

    let bad = s.cli(&["code", "add", "--uses", "50"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("uses"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let gone = s.cli(&["code", "rm", id]);
    assert!(!gone.status.success(), "removing twice fails");
    assert!(!s.cli(&["code", "add", "--valid", "90s"]).status.success());
}

/// A Pi has no real-time clock: after a power cut the clock can read hours behind, and a
/// code that ended last night would read as valid again. Codes from an earlier boot wait
/// for a synchronized clock (the same signal the window trusts).
#[test]
fn a_code_that_ended_before_the_newest_record_does_not_work_again_after_a_restart() {
    // A restart in the same boot with the clock stepped back while we were down: the
    // history was written two hours "later" than now, so the code (ending in one hour by
    // this clock) had ended already. The window is closed in this case; codes must not open.
    let dir = TempDir::new("codes-clock-back");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let now = SystemTime::now();
    let t = |secs: u64| rfc3339(now + Duration::from_secs(secs));
    let file = json!({"version": 2, "failures": [], "locked_until": null, "codes": [
        {"id": "c1", "code": "123456", "label": "plumber", "valid_until": t(3600), "uses_left": 1, "boot_id": boot_id()},
    ]});
    std::fs::write(state.join("codes.json"), file.to_string()).unwrap();
    let record = json!({"time": t(7200), "event": "call_forwarded", "message": "x"});
    std::fs::write(state.join("events.jsonl"), format!("{record}\n")).unwrap();
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    assert!(is_forward(&ring(&s)), "no prompt while the clock reads behind the history");
    assert!(is_forward(&enter(&s, INTERCOM, Some("123456"))), "the ended code does not open");
}

#[test]
fn codes_from_before_a_power_cut_wait_for_a_synchronized_clock() {
    let dir = TempDir::new("codes-boot");
    let flag = dir.path().join("synchronized");
    let config = || with_sync_flag(signed_config(), &flag);
    let boot = |id: &'static str| [("INTERCOM_BOOT_ID", id)];
    let s = Server::start_in(dir.path(), config(), &boot("boot-1"));
    let code = add(&s, json!({"label": "plumber", "uses": 3}))["code"].as_str().unwrap().to_string();
    s.kill9();
    let s = Server::start_in(dir.path(), config(), &boot("boot-1"));
    assert!(ring(&s).body.contains(PROMPT), "a restart in the same boot keeps the codes");
    s.kill9();

    let s = Server::start_in(dir.path(), config(), &boot("boot-2"));
    assert!(is_forward(&ring(&s)), "no prompt while the clock may be wrong");
    assert!(is_forward(&enter(&s, INTERCOM, Some(&code))), "and the code does not open");
    assert!(s.logs().contains("wait for a synchronized clock"), "{}", s.logs());
    // The API, and so the page, and `simulate` say why the listed code does not work.
    let listed = s.api("GET", "/api/codes", "").json();
    assert_eq!(listed["codes"].as_array().unwrap().len(), 1, "{listed}");
    assert!(listed["paused"].as_str().unwrap().contains("synchronized clock"), "{listed}");
    let status = s.api("GET", "/api/status", "").json();
    assert!(status["codes_paused"].as_str().unwrap().contains("synchronized clock"), "{status}");
    let out = cli_env(&s.config_path, &["simulate", "--from", INTERCOM], &boot("boot-2"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("guest codes do not work now") && err.contains("synchronized clock"), "{err}");
    // A code made in this boot works at once.
    let fresh = add(&s, json!({"label": "courier"}))["code"].as_str().unwrap().to_string();
    assert!(enter(&s, INTERCOM, Some(&fresh)).body.contains(UNLOCK));
    assert!(is_forward(&enter(&s, INTERCOM, Some(&code))), "the old code still waits");
    s.kill9();

    // Still unsynchronized after another restart of this boot: the old code keeps waiting.
    let s = Server::start_in(dir.path(), config(), &boot("boot-2"));
    assert!(is_forward(&enter(&s, INTERCOM, Some(&code))));
    std::fs::write(&flag, "").unwrap();
    assert!(ring(&s).body.contains(PROMPT));
    assert!(enter(&s, INTERCOM, Some(&code)).body.contains(UNLOCK), "synchronized: the code works");
    assert_secret(&s, &code);
}

#[test]
fn a_repeated_code_request_spends_one_use_and_leaves_one_record_even_across_a_restart() {
    let dir = TempDir::new("codes-repeat");
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    let code = add(&s, json!({"label": "plumber", "uses": 3}))["code"].as_str().unwrap().to_string();
    let sid = fresh_call_sid();
    for n in 0..5 {
        let r = enter_as(&s, &sid, INTERCOM, Some(&code));
        assert_eq!(
            r.body.trim_end(),
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{UNLOCK}"),
            "request {n}"
        );
    }
    assert_eq!(codes(&s)[0]["uses_left"], 2, "one use for one call");
    let unlocks = events(&s, 50).iter().filter(|e| e["event"] == "call_unlocked_code").count();
    assert_eq!(unlocks, 1, "one record for one call");

    // Twilio's retry (or a replay) may meet a restarted server: the call is answered
    // before, so it is forwarded and spends nothing.
    s.kill9();
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    assert!(is_forward(&enter_as(&s, &sid, INTERCOM, Some(&code))));
    assert_eq!(codes(&s)[0]["uses_left"], 2, "and still one use");
    assert!(enter(&s, INTERCOM, Some(&code)).body.contains(UNLOCK), "another call");
    assert_eq!(codes(&s)[0]["uses_left"], 1);
    assert_secret(&s, &code);
}

#[test]
fn a_replayed_wrong_code_counts_once_and_never_locks() {
    let dir = TempDir::new("codes-replay-wrong");
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    let code = add(&s, json!({"label": "plumber"}))["code"].as_str().unwrap().to_string();
    let wrong = wrong_for(&s);
    let sid = fresh_call_sid();
    for n in 0..5 {
        assert!(is_forward(&enter_as(&s, &sid, INTERCOM, Some(&wrong))), "replay {n}");
    }
    let names = names(&events(&s, 50));
    assert_eq!(names.iter().filter(|n| *n == "code_rejected").count(), 1, "{names:?}");
    assert!(!names.contains(&"codes_locked".to_string()), "{names:?}");
    s.kill9();
    let s = Server::start_in(dir.path(), signed_config(), &[]);
    for n in 0..5 {
        assert!(is_forward(&enter_as(&s, &sid, INTERCOM, Some(&wrong))), "replay {n} after a restart");
    }
    assert!(ring(&s).body.contains(PROMPT), "codes are still offered");
    assert!(enter(&s, INTERCOM, Some(&code)).body.contains(UNLOCK), "and the right code works");
}

#[test]
fn a_repeated_ring_is_answered_alike_and_recorded_once() {
    let s = Server::start(signed_config());
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 60}"#).status, 200);
    let sid = fresh_call_sid();
    let form = with_call_sid(CALL, &sid);
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &form);
    assert!(post_signed(&s, "/voice", &form, Some(&sig)).body.contains(UNLOCK));
    assert_eq!(s.api("POST", "/api/close", "").status, 200);
    for _ in 0..3 {
        assert!(post_signed(&s, "/voice", &form, Some(&sig)).body.contains(UNLOCK), "the call's answer");
    }
    let names = names(&events(&s, 50));
    assert_eq!(names.iter().filter(|n| *n == "call_unlocked").count(), 1, "{names:?}");
    assert!(ring(&s).body.contains("<Dial"), "a new call is decided afresh");
}

/// A fake NTP client command on `PATH` that answers as the real one does when synchronized.
fn fake_ntp_client(dir: &TempDir, name: &str, output: &str) -> String {
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join(name);
    std::fs::write(&script, format!("#!/bin/sh\ncat <<'EOF'\n{output}EOF\n")).unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn chrony_ntpd_and_openwrts_ntpd_count_as_a_synchronized_clock() {
    const CHRONY: &str =
        "Reference ID    : C0A80101 (192.168.1.1)\nStratum         : 3\nLeap status     : Normal\n";
    const NTPQ: &str = "leap=00\n";
    for daemon in ["chronyc", "ntpq", "openwrt"] {
        let dir = TempDir::new("codes-sync");
        let flag = dir.path().join("synchronized");
        let flag = flag.to_str().unwrap().to_string();
        let synced = || with_sync_flag(signed_config(), std::path::Path::new(&flag));
        let s = Server::start_in(dir.path(), synced(), &[("INTERCOM_BOOT_ID", "boot-1")]);
        let code = add(&s, json!({"label": "plumber", "uses": 3}))["code"].as_str().unwrap().to_string();
        s.kill9();
        let path = match daemon {
            "chronyc" => fake_ntp_client(&dir, "chronyc", CHRONY),
            "ntpq" => fake_ntp_client(&dir, "ntpq", NTPQ),
            _ => {
                // What BusyBox ntpd's hotplug runs: unsynchronized first, then stratum 2.
                let hook = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/openwrt/intercom.ntp-hotplug");
                for stratum in ["16", "2"] {
                    let st = std::process::Command::new("sh")
                        .arg(hook)
                        .env("ACTION", "stratum")
                        .env("stratum", stratum)
                        .env("INTERCOM_NTP_FLAG", &flag)
                        .status()
                        .unwrap();
                    assert!(st.success());
                    assert_eq!(std::path::Path::new(&flag).exists(), stratum == "2", "stratum {stratum}");
                }
                std::env::var("PATH").unwrap_or_default()
            }
        };
        let after = [("INTERCOM_BOOT_ID", "boot-2"), ("PATH", path.as_str())];
        let s = Server::start_in(dir.path(), synced(), &after);
        assert!(ring(&s).body.contains(PROMPT), "{daemon}: synchronized, so the code from before is offered");
        assert!(enter(&s, INTERCOM, Some(&code)).body.contains(UNLOCK), "{daemon}");
        assert_eq!(s.api("GET", "/api/codes", "").json()["paused"], Value::Null, "{daemon}");
    }
}
