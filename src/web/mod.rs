//! `web/`: the handlers of the two listeners. `webhook.rs` is the internet-facing one:
//! Twilio's webhook, the guest-code keypad answer (`/voice/code`), the ring order's
//! `/voice/next` and `/healthz`. Of the window it only ever ends a one-shot window that
//! let a visitor in; it counts a guest code's use (or a wrong code) through the code
//! store, and appends each decision to the history before answering. `webhook/next.rs`
//! holds its household decisions (schedules, one-shot window, quiet hours) and
//! `/voice/next`; `call_request.rs` reads a webhook request as a call, its signature
//! checked first; `replay.rs` keeps the recent answers by route and `CallSid` (bounded in
//! count and age), so a retried request gets the same answer, and every answered call
//! (from the history at start), so no request of one changes anything again. `control.rs` (and `page.html`, the manifest and the icon) is the LAN one: the
//! phone page and the JSON API, which takes the token or a paired device's cookie, with
//! the schedules' routes in `schedules.rs`; `pairing.rs` is its paired-device side: the
//! cookie, the same-origin checks a cookie's requests pass, the pairing exchange and the
//! device routes. `ringing.rs` knows which forwarded calls ring now and lets one in while
//! it rings (for the page, the API, Home Assistant and a notification's one-time link,
//! which the webhook listener serves).
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
