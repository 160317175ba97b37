//! Letting a ringing caller in (issue 27) against a stand-in for Twilio's Calls resource
//! (`fake_http.rs`: Basic auth, updates only while a call is in progress) and recording
//! stand-ins for a webhook and an ntfy server: the status's `ringing`, `POST /api/let-in`
//! once per call (two phones at once too), the Dial's end, Twilio out of reach, a visitor
//! who hung up, the notification's one-time link, ntfy's button, `intercom let-in` and the
//! status's wait for a ring.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fake_http::{Fake, FakeTwilio};
use crate::harness::*;
use crate::pairing::{exchange, page_call};

/// The issue's promise: a tap is answered within this, whatever Twilio does.
const TAP_BOUND: Duration = Duration::from_secs(6);
/// Bounded waits for the notifier, which works in the background.
const DELIVERY_WAIT: Duration = Duration::from_secs(15);
/// The status's longest wait for a call to start or stop ringing (control.rs).
const STATUS_WAIT: Duration = Duration::from_secs(4);
const NO_ANSWER: &str = "Nobody home, sorry.";

pub fn twilio() -> FakeTwilio {
    FakeTwilio::start("ACtest", "ACtest", AUTH_TOKEN, &[])
}

pub fn config(twilio: &FakeTwilio) -> Value {
    let mut c = signed_config();
    c["twilio"]["api_base"] = json!(twilio.base());
    c["no_answer_message"] = json!(NO_ANSWER);
    c
}

/// A signed call from the intercom that is forwarded, and in progress at Twilio: its SID.
pub fn forward(s: &Server, twilio: &FakeTwilio) -> String {
    let sid = fresh_call_sid();
    let form = with_call_sid(CALL, &sid);
    let r = post_signed(s, "/voice", &form, Some(&sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &form)));
    assert!(r.body.contains(&format!("action=\"{PUBLIC}/voice/next?step=1\"")), "{}", r.body);
    twilio.add_call(&sid);
    sid
}

/// Twilio's `<Dial action>`: the dial to everyone ended with `status`.
fn dial_ended(s: &Server, sid: &str, status: &str) -> Reply {
    let mut form = with_call_sid(CALL, sid);
    form.push(("DialCallStatus", status));
    let url = format!("{PUBLIC}/voice/next?step=1");
    post_signed(s, "/voice/next?step=1", &form, Some(&sign(AUTH_TOKEN, &url, &form)))
}

fn ringing(s: &Server) -> Value {
    s.api("GET", "/api/status", "").json()["ringing"].clone()
}

fn tap(s: &Server, sid: &str) -> Reply {
    s.api("POST", "/api/let-in", &json!({ "call": sid }).to_string())
}

fn error(r: &Reply) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_ringing_call_is_let_in_once_and_a_second_tap_changes_nothing() {
    let twilio = twilio();
    let s = Server::start(config(&twilio));
    assert_eq!(ringing(&s), Value::Null);
    let sid = forward(&s, &twilio);
    let now = ringing(&s);
    assert_eq!((&now["call"], &now["entrance"]), (&json!(sid), &Value::Null), "{now}");
    let since = now["since"].as_str().unwrap();
    assert!(since.parse::<jiff::Timestamp>().is_ok() && since.ends_with('Z'), "{since}");

    let r = tap(&s, &sid);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ringing"], Value::Null, "it no longer rings");
    let updates = twilio.call_updates();
    assert_eq!(updates.len(), 1);
    let update = &updates[0];
    assert_eq!(update.target, format!("/2010-04-01/Accounts/ACtest/Calls/{sid}.json"));
    let basic =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("ACtest:{AUTH_TOKEN}"));
    assert_eq!(update.header("authorization"), Some(format!("Basic {basic}").as_str()));
    let form = update.form();
    assert_eq!(form.len(), 1, "{form:?}");
    assert_eq!(form[0].0, "Twiml");
    assert!(form[0].1.contains("<Response><Play digits=\"ww9\"/></Response>"), "{}", form[0].1);

    let again = tap(&s, &sid);
    assert_eq!(again.status, 410, "{}", again.body);
    assert!(error(&again).starts_with("already let in by API from 127.0.0.1 at "), "{}", again.body);
    assert_eq!(twilio.call_updates().len(), 1, "a second tap reaches nobody");
    let e = &events(&s, 1)[0];
    assert_eq!(
        (&e["event"], &e["call_sid"], &e["source"]),
        (&json!("call_let_in"), &json!(sid), &json!("API from 127.0.0.1"))
    );

    // A call that never rang here, a body that names none, a GET.
    assert_eq!(tap(&s, &fresh_call_sid()).status, 410);
    let bad = s.api("POST", "/api/let-in", r#"{"sid": "CA1"}"#);
    assert!(bad.status == 400 && error(&bad).contains("send {\"call\""), "{}", bad.body);
    assert_eq!(s.api("GET", "/api/let-in", "").status, 405);
    assert_eq!(request(s.control, "POST", "/api/let-in", &[], b"{}").status, 401);
    assert_eq!(twilio.call_updates().len(), 1);
}

#[test]
fn two_phones_tapping_at_once_reach_twilio_once() {
    let twilio = twilio();
    let s = Server::start(config(&twilio));
    let phone = |name: &str| {
        let p = s.api("POST", "/api/pairings", &json!({ "name": name }).to_string()).json();
        exchange(&s, p["path"].as_str().unwrap().split("#c=").nth(1).unwrap())
    };
    let (anna, ben) = (phone("Anna's phone"), phone("Ben's phone"));
    let sid = forward(&s, &twilio);
    let body = json!({ "call": sid }).to_string();
    let start = Arc::new(Barrier::new(2));
    let answers: Vec<Reply> = thread::scope(|scope| {
        let taps: Vec<_> = [&anna, &ben]
            .map(|cookie| {
                let (start, body, s) = (start.clone(), &body, &s);
                scope.spawn(move || {
                    start.wait();
                    page_call(s, "POST", "/api/let-in", cookie, body)
                })
            })
            .into_iter()
            .collect();
        taps.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 410], "{answers:?}");
    assert_eq!(twilio.call_updates().len(), 1, "exactly one update reached Twilio");
    let winner = events(&s, 1)[0]["source"].as_str().unwrap().to_string();
    assert!(winner == "Anna's phone" || winner == "Ben's phone", "{winner}");
    let loser = answers.iter().find(|r| r.status == 410).unwrap();
    assert!(error(loser).contains(&winner), "the other is told who: {}", loser.body);
}

#[test]
fn after_the_dial_ends_it_no_longer_rings_and_a_tap_is_refused_in_words() {
    let twilio = twilio();
    let s = Server::start(config(&twilio));
    let sid = forward(&s, &twilio);
    let r = dial_ended(&s, &sid, "no-answer");
    assert!(r.body.contains(&format!("<Say>{NO_ANSWER}</Say><Hangup/>")), "{}", r.body);
    assert_eq!(ringing(&s), Value::Null);
    let refused = tap(&s, &sid);
    assert_eq!(refused.status, 410);
    assert!(error(&refused).starts_with("the ringing ended at "), "{}", refused.body);

    let sid = forward(&s, &twilio);
    assert!(dial_ended(&s, &sid, "completed").body.contains("<Hangup/>"));
    assert!(error(&tap(&s, &sid)).starts_with("someone took the call at "));

    // Twilio says the call is over (the visitor hung up) before the dial's end arrived.
    let sid = forward(&s, &twilio);
    twilio.end_call(&sid);
    let hung_up = tap(&s, &sid);
    assert_eq!(hung_up.status, 410);
    assert!(error(&hung_up).starts_with("the visitor hung up at "), "{}", hung_up.body);
    assert_eq!(ringing(&s), Value::Null);
    assert!(!names(&events(&s, 5)).contains(&"call_let_in".to_string()));
}

#[test]
fn with_twilio_out_of_reach_a_tap_is_answered_in_time_and_calls_are_still_answered() {
    let twilio = twilio();
    let s = Server::start(config(&twilio));
    let sid = forward(&s, &twilio);
    twilio.hang_updates(true);
    let (r, other) = thread::scope(|scope| {
        let tapped = scope.spawn(|| {
            let started = Instant::now();
            (tap(&s, &sid), started.elapsed())
        });
        // While the tap waits for Twilio, another visitor's call is answered at once.
        while twilio.call_updates().is_empty() {
            thread::sleep(Duration::from_millis(10));
        }
        let started = Instant::now();
        let other = forward(&s, &twilio);
        assert!(started.elapsed() < Duration::from_secs(1), "a call waited for the tap");
        (tapped.join().unwrap(), other)
    });
    let (r, took) = r;
    assert!(took < TAP_BOUND, "answered after {took:?}");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(error(&r), "could not reach Twilio: the call still rings your phones, press 9 to open");
    assert!(!names(&events(&s, 5)).contains(&"call_let_in".to_string()), "nothing changed");
    dial_ended(&s, &other, "no-answer");
    assert_eq!(ringing(&s)["call"], json!(sid), "it still rings");
    // Twilio is back: the same call can be tapped again.
    twilio.hang_updates(false);
    assert_eq!(tap(&s, &sid).status, 200);
    assert_eq!(names(&events(&s, 1)), ["call_let_in"]);
}

/// The path and query of a link on [`PUBLIC`], as the tunnel hands it to the listener.
fn on_listener(link: &str) -> String {
    link.strip_prefix(PUBLIC).unwrap_or_else(|| panic!("not on the public URL: {link}")).to_string()
}

#[test]
fn notifications_carry_a_one_time_link_and_ntfy_a_button_and_a_forged_link_opens_nothing() {
    let twilio = twilio();
    let (hook, ntfy) = (Fake::start(&[]), Fake::start(&[]));
    let mut c = config(&twilio);
    c["notify"] = json!({"webhook_url": hook.url("/hook"), "events": ["call_forwarded", "call_let_in"],
        "ntfy": {"url": ntfy.url(""), "topic": "door-test-topic"}});
    let dir = TempDir::new("let-in-link");
    let s = Server::start_in(dir.path(), c, &[("INTERCOM_NTFY_TOKEN", "tk_ntfy-token-for-tests")]);
    let sid = forward(&s, &twilio);

    let posted = hook.wait_for(1, DELIVERY_WAIT);
    assert_eq!(posted.len(), 1, "{}", s.logs());
    let body = posted[0].json();
    assert_eq!((&body["event"], &body["call_sid"]), (&json!("call_forwarded"), &json!(sid)));
    let link = body["let_in_url"].as_str().expect("let_in_url").to_string();
    let secret = link.strip_prefix(&format!("{PUBLIC}/let-in?link=")).unwrap_or_else(|| panic!("{link}"));
    assert!(secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()), "128 bits: {link}");

    // ntfy's JSON publish, as its docs describe it: to the server's root, the topic in
    // the body, an http action that POSTs to the link and clears the notification.
    let published = ntfy.wait_for(1, DELIVERY_WAIT);
    assert_eq!(published.len(), 1, "{}", s.logs());
    let n = &published[0];
    assert_eq!((n.method.as_str(), n.target.as_str()), ("POST", "/"));
    assert_eq!(n.header("authorization"), Some("Bearer tk_ntfy-token-for-tests"));
    assert_eq!(n.header("content-type"), Some("application/json"));
    let msg = n.json();
    assert_eq!(msg["topic"], "door-test-topic");
    assert!(msg["title"].is_string() && msg["message"].as_str().unwrap().contains("A visitor rang"), "{msg}");
    assert!(msg["tags"].is_array(), "{msg}");
    assert_eq!(
        msg["actions"],
        json!([{"action": "http", "label": "Let them in", "url": link, "method": "POST", "clear": true}])
    );

    // A GET (a link preview) shows a button and spends nothing.
    let path = on_listener(&link);
    let preview = s.call("GET", &path, "");
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.body.contains("<form method=\"post\">"), "{}", preview.body);
    assert_eq!(preview.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(twilio.call_updates().len(), 0);
    // A forged link opens nothing and says so.
    for forged in ["/let-in?link=00000000000000000000000000000000", "/let-in", "/let-in?link=x"] {
        let r = s.call("POST", forged, "");
        assert_eq!(r.status, 403, "{forged}: {}", r.body);
        assert!(r.body.contains("Nothing was opened: this link is not valid"), "{}", r.body);
    }
    assert_eq!(twilio.call_updates().len(), 0);

    // ntfy's button POSTs: that lets in, once.
    let used = s.call("POST", &path, "");
    assert_eq!(used.status, 200, "{}", used.body);
    assert!(used.body.contains("Let in"), "{}", used.body);
    assert_eq!(twilio.call_updates().len(), 1);
    let spent = s.call("POST", &path, "");
    assert_eq!(spent.status, 410);
    assert!(spent.body.contains("already let in by the notification link at"), "{}", spent.body);
    assert_eq!(s.call("GET", &path, "").status, 410, "a spent link shows no button");
    assert_eq!(twilio.call_updates().len(), 1);
    assert_eq!(events(&s, 1)[0]["source"], "the notification link");
    assert_eq!(hook.wait_for(2, DELIVERY_WAIT)[1].json()["event"], "call_let_in");

    // The link's secret is in no log line, record or event list; the token neither.
    let listed = s.api("GET", "/api/events?limit=50", "").body;
    let history = std::fs::read_to_string(s.state_dir.join("events.jsonl")).unwrap();
    for (what, text) in [("the log", s.logs()), ("/api/events", listed), ("the history", history)] {
        assert!(!text.contains(secret), "the link in {what}:\n{text}");
        assert!(!text.contains("tk_ntfy-token-for-tests"), "the token in {what}");
    }
    // A second call gets a link of its own, which ends with its ringing.
    let second = forward(&s, &twilio);
    let link = hook.wait_for(3, DELIVERY_WAIT)[2].json()["let_in_url"].as_str().unwrap().to_string();
    dial_ended(&s, &second, "no-answer");
    let late = s.call("POST", &on_listener(&link), "");
    assert!(late.status == 410 && late.body.contains("the ringing ended at"), "{}", late.body);
    assert_eq!(twilio.call_updates().len(), 1);
}

#[test]
fn intercom_let_in_lets_the_ringing_caller_in_or_says_nobody_rings() {
    let twilio = twilio();
    let s = Server::start(config(&twilio));
    let o = s.cli(&["let-in"]);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "intercom: nobody is ringing now");
    let sid = forward(&s, &twilio);
    let o = s.cli(&["status"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("is ringing your phones since "), "{o:?}");
    let o = s.cli(&["let-in"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("let in"), "{o:?}");
    assert_eq!(twilio.call_updates().len(), 1);
    let e = &events(&s, 1)[0];
    assert_eq!((&e["call_sid"], &e["source"]), (&json!(sid), &json!("the command line on the Pi")));
}

#[test]
fn the_status_waits_for_a_ring_and_answers_as_soon_as_one_comes() {
    let twilio = twilio();
    let s = Server::start(config(&twilio));
    // The page's wait while nothing rings ends as soon as a call does.
    let (answer, rang) = thread::scope(|scope| {
        let waiting = scope.spawn(|| s.api("GET", "/api/status?ringing=", "").json());
        let sid = forward(&s, &twilio);
        let rang = Instant::now();
        let answer = waiting.join().unwrap();
        assert!(rang.elapsed() < Duration::from_secs(1), "shown {:?} after the ring", rang.elapsed());
        (answer, sid)
    });
    assert_eq!(answer["ringing"]["call"], json!(rang), "{answer}");
    // Nothing changes: the answer comes anyway, after the bounded wait.
    let started = Instant::now();
    let same = s.api("GET", &format!("/api/status?ringing={rang}"), "").json();
    let waited = started.elapsed();
    assert!(waited >= STATUS_WAIT - Duration::from_millis(100) && waited < TAP_BOUND, "{waited:?}");
    assert_eq!(same["ringing"]["call"], json!(rang));
    // And the end of the ringing is told at once.
    let ended = thread::scope(|scope| {
        let waiting = scope.spawn(|| s.api("GET", &format!("/api/status?ringing={rang}"), "").json());
        dial_ended(&s, &rang, "no-answer");
        let told = Instant::now();
        let answer = waiting.join().unwrap();
        assert!(told.elapsed() < Duration::from_secs(1), "{:?}", told.elapsed());
        answer
    });
    assert_eq!(ended["ringing"], Value::Null);
}
