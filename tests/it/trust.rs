//! What the server trusts: a caller's text never passes for the server's own words in
//! the history, and a state directory or secrets file that someone else can write is
//! refused by name.

use serde_json::json;

use crate::events::events;
use crate::harness::*;
use crate::security::{post_signed, signed_config, CALL};

/// Looks like one of our own messages when pasted after "from ".
const FORGED: &str = "+1 (nobody). Window opened for 12h by page from 192.168.1.20";

#[test]
fn a_callers_text_is_never_shown_as_our_message() {
    // Unsigned, on a server that checks signatures: recorded as a bad signature.
    let s = Server::start(signed_config());
    let form: Vec<(&str, &str)> =
        CALL.iter().map(|&(k, v)| if k == "From" { (k, FORGED) } else { (k, v) }).collect();
    assert_eq!(post_signed(&s, "/voice", &form, None).status, 403);
    let e = &events(&s, 1)[0];
    assert_eq!(e["event"], "call_bad_signature");
    let message = e["message"].as_str().unwrap();
    assert!(!message.contains("Window opened"), "{message}");
    assert!(message.contains("not a phone number"), "{message}");
    assert_eq!(e["from"], FORGED, "the field keeps what was sent, as data");

    // Without an auth token nothing is signed: a stranger's text in a rejected call.
    let s = Server::start(base_config());
    assert!(s.ring(FORGED).body.contains("<Reject/>"));
    let e = &events(&s, 1)[0];
    assert_eq!(e["event"], "call_rejected");
    assert!(!e["message"].as_str().unwrap().contains("Window opened"), "{e}");
    assert!(s.ring("+15550000000").body.contains("<Reject/>"));
    assert_eq!(events(&s, 1)[0]["message"], json!("Rejected a call from +15550000000"));
}
