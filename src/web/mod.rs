//! `web/`: the handlers of the two listeners. `webhook.rs` is the internet-facing one:
//! Twilio's webhook, the guest-code keypad answer (`/voice/code`) and `/healthz`. It never
//! changes the window; it counts a guest code's use (or a wrong code) through the code
//! store, and appends each decision to the history before answering. `control.rs` (and
//! `page.html`) is the LAN one: the phone page and the token-protected JSON API.
//! `call_request.rs`: a webhook request read as a call, its signature checked first.
//! `replay.rs`: the webhook's recent answers by route and `CallSid` (bounded in count and
//! age), so a retried or replayed request gets the same answer and changes nothing.
//!
//! Uses: `http`, `twilio`, `store`, `rules`, `system`, `config`, `model`, `util`.

pub mod call_request;
pub mod control;
pub mod replay;
pub mod webhook;
