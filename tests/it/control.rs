//! The control API and page over real HTTP.

use std::time::{Duration, SystemTime};

use crate::harness::*;

#[test]
fn status_open_close_have_the_documented_shapes() {
    let s = Server::start(base_config());
    let st = s.api("GET", "/api/status", "");
    assert_eq!(st.status, 200);
    assert_eq!(st.header("content-type").as_deref(), Some("application/json"));
    let mut body = st.json();
    // The server's instance id, which /healthz on the webhook listener shows too.
    let instance = body.as_object_mut().unwrap().remove("instance").unwrap();
    let instance = instance.as_str().unwrap();
    assert!(instance.len() == 16 && instance.bytes().all(|b| b.is_ascii_hexdigit()), "{instance}");
    assert_eq!(s.call("GET", "/healthz", "").header("x-intercom-instance").as_deref(), Some(instance));
    // What this process does with webhooks' signatures (none here: unsigned by name).
    assert_eq!(body.as_object_mut().unwrap().remove("signatures_checked"), Some(serde_json::json!(false)));
    assert_eq!(
        body,
        serde_json::json!({"open": false, "open_until": null, "remaining_seconds": 0, "storage_problem": null, "once": false, "schedule": null, "ringing": null, "max_window_minutes": 720})
    );

    let opened = s.api("POST", "/api/open", r#"{"minutes": 90}"#).json();
    assert_eq!(opened["open"], true);
    let left = opened["remaining_seconds"].as_u64().unwrap();
    assert!((5395..=5400).contains(&left), "{left}");
    let until = parse_time(opened["open_until"].as_str().unwrap());
    let expected = SystemTime::now() + Duration::from_secs(5400);
    assert!(until <= expected + Duration::from_secs(2) && until + Duration::from_secs(5) >= expected);
    assert!(opened["open_until"].as_str().unwrap().ends_with('Z'));

    // Empty body: the default window (2h in the test config).
    let default = s.api("POST", "/api/open", "").json();
    assert!(default["remaining_seconds"].as_u64().unwrap() > 7190);

    let closed = s.api("POST", "/api/close", "").json();
    assert_eq!(
        closed,
        serde_json::json!({"open": false, "open_until": null, "remaining_seconds": 0, "storage_problem": null, "once": false, "schedule": null, "ringing": null, "max_window_minutes": 720})
    );
}

#[test]
fn no_or_wrong_token_is_401_with_an_error_and_changes_nothing() {
    let s = Server::start(base_config());
    let wrong = format!("Bearer {TOKEN}x");
    for headers in [vec![], vec![("Authorization", wrong.as_str())], vec![("Authorization", TOKEN)]] {
        for (method, path) in [("GET", "/api/status"), ("POST", "/api/open"), ("POST", "/api/close")] {
            let r = request(s.control, method, path, &headers, b"");
            assert_eq!(r.status, 401, "{method} {path} {headers:?}");
            assert!(r.json()["error"].is_string());
        }
    }
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);
}

#[test]
fn bad_minutes_are_400_and_change_nothing() {
    let s = Server::start(base_config());
    for body in [
        r#"{"minutes": 0}"#,
        r#"{"minutes": 721}"#,
        r#"{"minutes": -5}"#,
        r#"{"minutes": "ten"}"#,
        r#"{"minutes": 2.5}"#,
        "{garbage",
        "[]",
        r#"{"minutes": 99999999999999999999999}"#,
    ] {
        let r = s.api("POST", "/api/open", body);
        assert_eq!(r.status, 400, "{body}");
        assert!(r.json()["error"].as_str().unwrap().contains("minutes"), "{}", r.body);
    }
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 720}"#).status, 200);
}

#[test]
fn get_never_changes_state() {
    let s = Server::start(base_config());
    assert_eq!(s.api("GET", "/api/open", "").status, 405);
    assert_eq!(s.api("GET", "/api/open?minutes=5", "").status, 405);
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);
    s.api("POST", "/api/open", "");
    assert_eq!(s.api("GET", "/api/close", "").status, 405);
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], true);
}

#[test]
fn the_page_needs_no_token_and_holds_no_secret() {
    let s = Server::start(base_config());
    let r = request(s.control, "GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("text/html; charset=utf-8"));
    assert!(r.body.contains("<button") && r.body.contains("/api/open"));
    assert!(!r.body.contains(TOKEN));
    assert!(r.header("content-security-policy").is_some());
}

#[test]
fn control_listener_serves_no_twiml() {
    let s = Server::start(base_config());
    for path in ["/voice", "/?From=%2B15558889999", "/healthz"] {
        let r = request(s.control, "GET", path, &[], b"");
        assert!(!r.is_twiml(), "{path}: {}", r.body);
    }
    let r = request(
        s.control,
        "POST",
        "/voice",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"From=%2B15558889999",
    );
    assert_eq!(r.status, 404);
    assert!(!r.is_twiml());
}

#[test]
fn window_changes_are_logged_with_their_source() {
    let s = Server::start(base_config());
    s.api("POST", "/api/open", r#"{"minutes": 3}"#);
    assert!(s.wait_for_log("window opened for 3m"), "{}", s.logs());
    assert!(s.logs().contains("by API from 127.0.0.1"));
    assert!(!s.logs().contains(TOKEN), "the token must never be logged");
}

/// The bodies the server sends are the shared types the CLI and `doctor` read, field for
/// field: decoding into them refusing unknown fields fails on any drift.
#[test]
fn answers_decode_into_the_shared_api_types() {
    use intercom::model::api::{CodeBody, CodesBody, ErrorBody, EventsBody, StatusBody};
    fn strict<T: serde::de::DeserializeOwned + serde::Serialize>(v: serde_json::Value) -> T {
        let decoded: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
        assert_eq!(serde_json::to_value(&decoded).unwrap(), v, "a field is lost or added");
        decoded
    }
    let s = Server::start(base_config());
    let st: StatusBody = strict(s.api("GET", "/api/status", "").json());
    assert!(!st.open && st.instance.is_some());
    let opened: StatusBody = strict(s.api("POST", "/api/open", r#"{"minutes": 5}"#).json());
    assert!(opened.open && opened.instance.is_none());
    let code: CodeBody = strict(s.api("POST", "/api/codes", r#"{"label": "plumber"}"#).json());
    let list: CodesBody = strict(s.api("GET", "/api/codes", "").json());
    // The same code, but for the seconds left, which may tick between the two requests.
    let same = |c: &CodeBody| CodeBody { remaining_seconds: 0, ..c.clone() };
    assert_eq!(list.codes.iter().map(same).collect::<Vec<_>>(), [same(&code)]);
    let events: EventsBody = strict(s.api("GET", "/api/events", "").json());
    assert_eq!(events.events[0].event.name(), "window_opened");
    let refused: ErrorBody = strict(s.api("POST", "/api/open", r#"{"minutes": 5, "colour": 1}"#).json());
    assert!(refused.error.contains("colour"), "{}", refused.error);
}
