//! Notifications against real local HTTP servers standing in for Twilio's REST API and a
//! webhook target (ntfy, Home Assistant): the requests' shape, retries, and that a dead
//! target never slows the answer to Twilio.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::fake_http::{refusing_addr, Answer, Fake};
use crate::harness::*;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TWILIO_TOKEN: &str = "twilio-auth-token-secret-42";
const SMS_FROM: &str = "+15550001111";
const PUBLIC_URL: &str = "https://door.example.com";
/// Bounded waits for the notifier, which works in the background.
const DELIVERY_WAIT: Duration = Duration::from_secs(15);
/// The slowest acceptable TwiML answer while targets hang: far above a normal answer
/// (milliseconds), far below one notification attempt's timeout (10 s), so the test is
/// robust on a loaded machine yet fails if a notification ever ran on the call path.
const ANSWER_BOUND: Duration = Duration::from_secs(3);

fn config(twilio_api: Option<String>, webhook_url: Option<String>, sms_to: &[&str]) -> Value {
    let mut c = base_config();
    c["webhook"]["public_url"] = json!(PUBLIC_URL);
    c["twilio"] = json!({"account_sid": SID, "auth_token": TWILIO_TOKEN, "sms_from": SMS_FROM});
    if let Some(api) = twilio_api {
        c["twilio"]["api_base"] = json!(api);
    }
    c["notify"] = json!({"sms_to": sms_to});
    if let Some(url) = webhook_url {
        c["notify"]["webhook_url"] = json!(url);
    }
    c
}

/// A webhook call signed the way Twilio signs it.
fn signed_ring(s: &Server, from: &str) -> Reply {
    let sid = fresh_call_sid();
    let form = [("CallSid", sid.as_str()), ("From", from), ("To", SMS_FROM)];
    let sig = sign(TWILIO_TOKEN, &format!("{PUBLIC_URL}/voice"), &form);
    post_signed(s, "/voice", &form, Some(&sig))
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    let mut found = form.iter().filter(|(k, _)| k == name);
    let v = found.next().unwrap_or_else(|| panic!("no {name} in {form:?}"));
    assert!(found.next().is_none(), "{name} twice");
    &v.1
}

#[test]
fn sms_and_webhook_carry_the_documented_requests() {
    let twilio = Fake::start(&[]);
    let hook = Fake::start(&[]);
    let hook_url = hook.url("/api/webhook/secret-hook-id?tpl=1");
    let s = Server::start(config(Some(twilio.url("")), Some(hook_url), &[RESIDENT, "+447700900123"]));

    s.api("POST", "/api/open", r#"{"minutes": 30}"#);
    let sms = twilio.wait_for(2, DELIVERY_WAIT);
    let posts = hook.wait_for(1, DELIVERY_WAIT);
    assert_eq!((sms.len(), posts.len()), (2, 1), "{}", s.logs());
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TWILIO_TOKEN}"));
    let mut recipients = Vec::new();
    for r in &sms {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, format!("/2010-04-01/Accounts/{SID}/Messages.json"));
        assert_eq!(r.header("authorization"), Some(format!("Basic {basic}").as_str()));
        assert!(r.header("content-type").unwrap().starts_with("application/x-www-form-urlencoded"));
        let form = r.form();
        assert_eq!(field(&form, "From"), SMS_FROM);
        assert!(field(&form, "Body").contains("Window opened for 30m"), "{form:?}");
        recipients.push(field(&form, "To").to_string());
        assert_eq!(form.len(), 3, "only To, From and Body: {form:?}");
    }
    recipients.sort();
    assert_eq!(recipients, ["+15552223333", "+447700900123"]);

    let p = &posts[0];
    assert_eq!((p.method.as_str(), p.target.as_str()), ("POST", "/api/webhook/secret-hook-id?tpl=1"));
    assert_eq!(p.header("content-type"), Some("application/json"));
    assert!(p.header("authorization").is_none(), "Twilio's credentials go only to Twilio");
    let body = p.json();
    assert_eq!(body["event"], "window_opened");
    assert!(body["time"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());
    assert_eq!(body["message"], "Window opened for 30m by API from 127.0.0.1");
    assert_eq!(body["minutes"], 30);

    // Default events: let in by the window notifies; a rejected call and a close do not.
    assert!(signed_ring(&s, INTERCOM).body.contains("<Play"));
    assert_eq!(hook.wait_for(2, DELIVERY_WAIT)[1].json()["event"], "call_unlocked");
    assert_eq!(twilio.wait_for(4, DELIVERY_WAIT).len(), 4);
    assert!(signed_ring(&s, "+15550000000").body.contains("<Reject/>"));
    s.api("POST", "/api/close", "");
    assert_eq!(names(&events(&s, 1)), ["window_closed"]);
    // Each target's notifications go out in order: once the next notified event (a new
    // window) has arrived, anything sent for the rejected call or the close would have.
    s.api("POST", "/api/open", r#"{"minutes": 31}"#);
    let (sms, posts) = (twilio.wait_for(6, DELIVERY_WAIT), hook.wait_for(3, DELIVERY_WAIT));
    assert_eq!((sms.len(), posts.len()), (6, 3), "{}", s.logs());
    assert_eq!(posts[2].json()["minutes"], 31, "nothing between: {:?}", posts[2].body);
    for r in &sms[4..] {
        assert!(field(&r.form(), "Body").contains("Window opened for 31m"), "nothing between: {}", r.body);
    }

    let logs = s.logs();
    assert!(logs.contains("notified: window_opened for webhook http://127.0.0.1"), "{logs}");
    for secret in [TWILIO_TOKEN, "secret-hook-id", &basic] {
        assert!(!logs.contains(secret), "{secret} in the log:\n{logs}");
    }
}

#[test]
fn notify_events_choose_what_is_sent() {
    let hook = Fake::start(&[]);
    let mut c = config(None, Some(hook.url("/hook")), &[]);
    c["notify"]["events"] = json!(["call_rejected", "call_bad_signature"]);
    let s = Server::start(c);
    s.api("POST", "/api/open", r#"{"minutes": 5}"#);
    signed_ring(&s, INTERCOM);
    signed_ring(&s, "+15550000000");
    s.ring(INTERCOM); // unsigned: 403
                      // Notifications go out in order: a last chosen event, once arrived, follows anything
                      // the events before it would have sent.
    signed_ring(&s, "+15550000001");
    let got: Vec<_> = hook.wait_for(3, DELIVERY_WAIT).iter().map(|r| r.json()["event"].clone()).collect();
    assert_eq!(got[..2], [json!("call_rejected"), json!("call_bad_signature")]);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(hook.requests()[2].json()["from"], "+15550000001", "the last one: {got:?}");
}

#[test]
fn check_config_shows_the_notify_keys_without_secrets() {
    let dir = TempDir::new("notify-check");
    let path = dir.path().join("c.json");
    let c = config(None, Some("https://ntfy.example/secret-topic?tpl=1".into()), &[RESIDENT]);
    std::fs::write(&path, c.to_string()).unwrap();
    let o = cli(&path, &["check-config"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("https://ntfy.example/… (path and query hidden)"), "{out}");
    assert!(out.contains("call_unlocked, window_opened, window_expired") && out.contains(SMS_FROM), "{out}");
    assert!(!out.contains("secret-topic") && !out.contains(TWILIO_TOKEN), "{out}");

    let mut c = c;
    c["twilio"].as_object_mut().unwrap().remove("sms_from");
    std::fs::write(&path, c.to_string()).unwrap();
    let o = cli(&path, &["check-config"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("`twilio.sms_from`"));
}

#[test]
fn a_503_is_retried_with_pauses_until_it_succeeds() {
    let hook = Fake::start(&[Answer::Status(503), Answer::Status(503)]);
    let s = Server::start(config(None, Some(hook.url("/retry")), &[]));
    s.api("POST", "/api/open", r#"{"minutes": 5}"#);
    let got = hook.wait_for(3, DELIVERY_WAIT);
    assert_eq!(got.len(), 3, "{}", s.logs());
    assert!(got[1].at - got[0].at >= Duration::from_millis(900), "{:?}", got[1].at - got[0].at);
    assert!(got[2].at - got[1].at >= Duration::from_millis(3500), "{:?}", got[2].at - got[1].at);
    assert!(got.iter().all(|r| r.body == got[0].body), "the same notification each time");
    assert!(s.wait_for_log("(attempt 3)"), "{}", s.logs());
    // The worker takes the next notification once it is done with this one: the request
    // after the success is that one, not a fourth attempt.
    s.api("POST", "/api/open", r#"{"minutes": 6}"#);
    let got = hook.wait_for(4, DELIVERY_WAIT);
    assert_eq!(got.len(), 4, "{}", s.logs());
    assert_eq!(got[3].json()["minutes"], 6, "no more after the success: {}", got[3].body);
}

#[test]
fn a_400_from_twilio_is_final_and_logged() {
    let twilio = Fake::start(&[Answer::Status(400)]);
    let s = Server::start(config(Some(twilio.url("")), None, &[RESIDENT]));
    s.api("POST", "/api/open", r#"{"minutes": 5}"#);
    assert_eq!(twilio.wait_for(1, DELIVERY_WAIT).len(), 1);
    assert!(s.wait_for_log("after 1 attempt(s): HTTP 400"), "{}", s.logs());
    // Not retried: the next request is the next notification, not a second attempt.
    s.api("POST", "/api/open", r#"{"minutes": 6}"#);
    let got = twilio.wait_for(2, DELIVERY_WAIT);
    assert_eq!(got.len(), 2, "{}", s.logs());
    assert!(field(&got[1].form(), "Body").contains("Window opened for 6m"), "{}", got[1].body);
    assert!(s.logs().contains(&format!("window_opened for SMS to {RESIDENT}")));
}

#[test]
fn a_hanging_or_refusing_target_does_not_delay_the_answer() {
    for hang in [true, false] {
        let hanging = Fake::start(&[Answer::Hang; 64]);
        let (api, hook) = if hang {
            (hanging.url(""), hanging.url("/hook"))
        } else {
            let dead = refusing_addr();
            (format!("http://{dead}"), format!("http://{dead}/hook"))
        };
        let mut c = config(Some(api), Some(hook), &[RESIDENT]);
        c["notify"]["events"] = json!(["call_unlocked", "call_forwarded", "window_opened"]);
        let s = Server::start(c);
        let started = Instant::now();
        assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5}"#).status, 200);
        let mut slowest = started.elapsed();
        let mut total = Duration::ZERO;
        // Enough calls to overflow the queue while the worker is stuck on the first.
        let calls = 40;
        for _ in 0..calls {
            let t = Instant::now();
            let r = signed_ring(&s, INTERCOM);
            let took = t.elapsed();
            assert!(r.body.contains("<Play"), "{}", r.body);
            slowest = slowest.max(took);
            total += took;
        }
        eprintln!(
            "notify target {}: slowest answer {slowest:?}, mean {:?} over {calls} calls",
            if hang { "hanging" } else { "refusing" },
            total / calls
        );
        assert!(slowest < ANSWER_BOUND, "an answer took {slowest:?}");
        assert_eq!(events(&s, 100).len(), calls as usize + 1, "every call is still in the history");
        if hang {
            assert!(s.wait_for_log("notification queue full"), "{}", s.logs());
        }
    }
}

#[test]
fn a_hanging_webhook_never_delays_the_sms() {
    let hanging = Fake::start(&[Answer::Hang; 16]);
    let twilio = Fake::start(&[]);
    let s = Server::start(config(Some(twilio.url("")), Some(hanging.url("/hook")), &[RESIDENT]));
    let started = Instant::now();
    for minutes in [5, 10, 15] {
        assert_eq!(s.api("POST", "/api/open", &format!(r#"{{"minutes": {minutes}}}"#)).status, 200);
    }
    let sms = twilio.wait_for(3, DELIVERY_WAIT);
    let took = started.elapsed();
    eprintln!("3 SMS delivered in {took:?} while the webhook target hangs");
    assert_eq!(sms.len(), 3, "{}", s.logs());
    // One hung webhook attempt alone lasts 10 s; a shared worker would hold every SMS
    // behind it for at least that long.
    assert!(took < Duration::from_secs(5), "the SMS waited for the hanging webhook: {took:?}");
    assert_eq!(hanging.requests().len(), 1, "the webhook worker is still on its first attempt");
}

/// An IMF-fixdate (`Fri, 27 Nov 2026 10:00:00 GMT`) for `t`.
fn http_date(t: std::time::SystemTime) -> String {
    let rfc = rfc3339(t); // 2026-11-27T10:00:00Z
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(secs / 86400 % 7) as usize];
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = months[rfc[5..7].parse::<usize>().unwrap() - 1];
    format!("{weekday}, {} {month} {} {} GMT", &rfc[8..10], &rfc[0..4], &rfc[11..19])
}

#[test]
fn retry_after_on_429_and_503_sets_the_pause() {
    // Seconds on a 429 from Twilio; an HTTP date on a 503 from the webhook.
    let date = http_date(std::time::SystemTime::now() + Duration::from_secs(5));
    let date: &'static str = Box::leak(date.into_boxed_str());
    let twilio = Fake::start(&[Answer::RetryAfter(429, "3")]);
    let hook = Fake::start(&[Answer::RetryAfter(503, date)]);
    let s = Server::start(config(Some(twilio.url("")), Some(hook.url("/hook")), &[RESIDENT]));
    s.api("POST", "/api/open", r#"{"minutes": 5}"#);
    let sms = twilio.wait_for(2, DELIVERY_WAIT);
    let posts = hook.wait_for(2, DELIVERY_WAIT);
    assert_eq!((sms.len(), posts.len()), (2, 2), "{}", s.logs());
    let (sms_gap, hook_gap) = (sms[1].at - sms[0].at, posts[1].at - posts[0].at);
    eprintln!("Retry-After: 3 waited {sms_gap:?}; Retry-After: {date} waited {hook_gap:?}");
    // Without Retry-After the first pause is 1 s.
    assert!(sms_gap >= Duration::from_millis(2900), "{sms_gap:?}");
    assert!(hook_gap >= Duration::from_millis(3000), "the date is 4 to 5 s ahead: {hook_gap:?}");
    assert!(hook_gap < Duration::from_secs(12), "{hook_gap:?}");
    assert!(s.wait_for_log("(attempt 2)"), "{}", s.logs());
}
