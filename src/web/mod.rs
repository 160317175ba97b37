//! `web/`: the handlers of the two listeners. `webhook.rs` is the internet-facing one:
//! Twilio's webhook, the guest-code keypad answer (`/voice/code`) and `/healthz`. It never
//! changes the window; it counts a guest code's use (or a wrong code) through the code
//! store, and appends each decision to the history before answering. `control.rs` (and
//! `page.html`) is the LAN one: the phone page and the token-protected JSON API.
//!
//! Uses: `http`, `twilio`, `store`, `rules`, `system`, `config`, `model`, `util`.

pub mod control;
pub mod webhook;
