//! `web/`: the handlers of the two listeners. They hold nothing that outlives a request
//! but the webhook's memory of recent answers and the calls that ring now.
//!
//! The webhook listener faces the internet: Twilio's voice webhook (each request read
//! once into a call, its signature checked first), the guest-code keypad answer, a ring
//! order's next step, a notification's one-time let-in link and `/healthz`. Of the state
//! it changes only what a call from the intercom spends (a one-shot window, a guest
//! code's use or a wrong code's count), a ringing call let in through its link, and the
//! history, which gets each decision before it is answered. A repeated request of a call
//! gets the first answer and changes nothing again.
//!
//! The control listener is the LAN one: the phone page and its assets, and the JSON API
//! (window, guest codes, schedules, events, paired devices, letting a ringing call in),
//! which takes the token, or a paired device's cookie with the page key.
//!
//! Uses: `http`, `twilio`, `store`, `rules`, `system`, `config`, `model`, `util`.

pub mod call_request;
pub mod control;
pub mod pairing;
pub mod replay;
pub mod ringing;
pub mod schedules;
pub mod webhook;

use serde::Serialize;

use crate::http::Response;
use crate::model::api::ErrorBody;

/// A JSON answer of the control API; never cached, as it says how things are now.
pub fn json(status: u16, body: &impl Serialize) -> Response {
    // Serializing our own plain structs cannot fail; an empty object would still be JSON.
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    Response::new(status, "application/json", format!("{text}\n")).with_header("Cache-Control", "no-store")
}

/// `204 No Content`: done, nothing to say.
pub fn no_content() -> Response {
    Response::new(204, "application/json", "").with_header("Cache-Control", "no-store")
}

/// An error of the control API (also one refused before its handler: too large,
/// malformed, …): JSON like every other answer of the API, so clients parse one shape.
pub fn refusal(status: u16, reason: &str) -> Response {
    json(status, &ErrorBody { error: reason.to_string() })
}
