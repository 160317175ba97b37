//! Every row of the call decision, over real HTTP.

use serde_json::json;

use crate::harness::*;

fn dial_numbers(body: &str) -> Vec<String> {
    body.split("<Number>").skip(1).map(|s| s.split("</Number>").next().unwrap().to_string()).collect()
}

#[test]
fn stranger_is_rejected_and_intercom_is_forwarded_on_both_paths_and_methods() {
    let s = Server::start(base_config());
    for path in ["/", "/voice"] {
        let post = s.call("POST", path, "From=%2B15550000000&CallSid=CA1");
        assert_eq!(post.status, 200);
        assert!(post.body.contains("<Response><Reject/></Response>"), "{}", post.body);
        let get = s.call("GET", &format!("{path}?From=%2B15550000000&CallSid=CA2"), "");
        assert!(get.body.contains("<Reject/>"), "{}", get.body);

        let post = s.call("POST", path, "From=%2B15558889999&CallSid=CA3");
        assert!(post.body.contains("<Dial answerOnBridge=\"true\""), "{}", post.body);
        assert_eq!(dial_numbers(&post.body), [RESIDENT]);
        assert!(post.body.contains("action=\"/voice/next?step=1\" method=\"POST\">"), "{}", post.body);
        let get = s.call("GET", &format!("{path}?From=%2B15558889999"), "");
        assert_eq!(dial_numbers(&get.body), [RESIDENT]);
    }
}

#[test]
fn answers_are_uncacheable_xml() {
    let s = Server::start(base_config());
    let r = s.ring(INTERCOM);
    assert_eq!(r.header("content-type").as_deref(), Some("text/xml; charset=utf-8"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert!(r.body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
}

#[test]
fn open_window_unlocks_only_for_the_intercom() {
    let s = Server::start(base_config());
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5}"#).status, 200);
    let r = s.ring(INTERCOM);
    assert!(r.body.contains("<Response><Play digits=\"ww9\"/></Response>"), "{}", r.body);
    assert!(s.ring("+15550000000").body.contains("<Reject/>"));
    assert!(s.call("POST", "/voice", "CallSid=CAnofrom").body.contains("<Reject/>"));
    assert_eq!(s.api("POST", "/api/close", "").status, 200);
    assert!(s.ring(INTERCOM).body.contains("<Dial"));
}

#[test]
fn numbers_are_compared_in_e164() {
    let s = Server::start(base_config());
    for from in ["+1 555 888 9999", "+1 (555) 888-9999", "+1-555-888-9999"] {
        assert!(s.ring(from).body.contains("<Dial"), "{from}");
    }
    // Trailing digit, missing digit, no country code: not the intercom.
    for from in ["+155588899990", "+1555888999", "5558889999"] {
        assert!(s.ring(from).body.contains("<Reject/>"), "{from}");
    }
}

#[test]
fn several_forward_numbers_ring_at_once() {
    let mut c = base_config();
    c["forward_to"] = json!(["+15552223333", "+44 7700 900123", "+15554445555"]);
    let s = Server::start(c);
    assert_eq!(dial_numbers(&s.ring(INTERCOM).body), ["+15552223333", "+447700900123", "+15554445555"]);
}

#[test]
fn forward_to_as_a_single_string() {
    let mut c = base_config();
    c["forward_to"] = json!("+1 555 222 3333");
    let s = Server::start(c);
    assert_eq!(dial_numbers(&s.ring(INTERCOM).body), [RESIDENT]);
}

#[test]
fn query_overrides_replace_the_configured_numbers() {
    let s = Server::start(base_config());
    let r = s.call("POST", "/voice?PhoneNumberToDial=%2B15557776666", "From=%2B15558889999");
    assert_eq!(dial_numbers(&r.body), ["+15557776666"]);
    let r = s.call("POST", "/?ExpectedFrom=%2B15551112222", "From=%2B15558889999");
    assert!(r.body.contains("<Reject/>"), "the configured intercom is no longer expected");
    let r = s.call(
        "GET",
        "/?ExpectedFrom=%2B1+555+111+2222&PhoneNumberToDial=%2B15557776666&From=%2B15551112222",
        "",
    );
    assert_eq!(dial_numbers(&r.body), ["+15557776666"]);
    let r = s.call("GET", "/voice?PhoneNumberToDial=%2B15557776666,%2B15557776667&From=%2B15558889999", "");
    assert_eq!(dial_numbers(&r.body), ["+15557776666", "+15557776667"]);
    assert_eq!(s.call("GET", "/?ExpectedFrom=nonsense&From=%2B15558889999", "").status, 400);
}

#[test]
fn without_an_intercom_number_everyone_is_rejected() {
    let mut c = base_config();
    c.as_object_mut().unwrap().remove("intercom_number");
    let s = Server::start(c);
    assert!(s.ring(INTERCOM).body.contains("<Reject/>"));
}

#[test]
fn custom_digits_and_messages_are_escaped() {
    let mut c = base_config();
    c["unlock_digits"] = json!("w#9");
    c["no_answer_message"] = json!("Nobody's <home> & \"sorry\"");
    let s = Server::start(c);
    // Said when the dial ends unanswered.
    let r = s.call("POST", "/voice/next?step=1", "From=%2B15558889999&CallSid=CA9&DialCallStatus=no-answer");
    assert!(
        r.body.contains("<Say>Nobody&apos;s &lt;home&gt; &amp; &quot;sorry&quot;</Say><Hangup/>"),
        "{}",
        r.body
    );
    s.api("POST", "/api/open", "");
    assert!(s.ring(INTERCOM).body.contains("<Play digits=\"w#9\"/>"));
}

#[test]
fn other_paths_and_methods_never_get_twiml() {
    let s = Server::start(base_config());
    for path in ["/voice/", "/Voice", "/index.html", "/voice.xml", "/healthz/x"] {
        let r = s.call("POST", path, "From=%2B15558889999");
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.is_twiml());
    }
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = s.call(method, "/voice", "From=%2B15558889999");
        assert_eq!(r.status, 405, "{method}");
        assert!(!r.is_twiml());
    }
    let h = s.call("GET", "/healthz", "");
    assert_eq!((h.status, h.body.trim()), (200, "ok"));
}

#[test]
fn one_log_line_per_call_with_decision_and_sid() {
    let s = Server::start(base_config());
    s.call("POST", "/voice", "CallSid=CAlogged123&From=%2B15550000000");
    assert!(s.wait_for_log("call CAlogged123 from +15550000000: rejected"), "{}", s.logs());
}
