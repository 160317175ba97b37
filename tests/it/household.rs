//! Household features with the real binary: the one-shot window ("let the next visitor
//! in") over the API, the CLI and signed webhooks, its race, a restart and its
//! notification.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::events::{events, names};
use crate::fake_http::Fake;
use crate::harness::*;
use crate::security::{post_signed, sign, signed_config, AUTH_TOKEN, PUBLIC};

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
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--once is only for open"));
}
