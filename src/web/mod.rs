//! `web/`: the handlers of the two listeners. `webhook.rs` is the internet-facing one:
//! Twilio's webhook, the guest-code keypad answer (`/voice/code`), `/voice/next` and
//! `/healthz`. Of the window it only ever ends a one-shot window that lets a visitor in;
//! it counts a guest code's use (or a wrong code) through the code store, and appends
//! each decision to the history before answering. `control.rs` (and
//! `page.html`) is the LAN one: the phone page and the token-protected JSON API, with
//! the schedules' routes in `schedules.rs`. `webhook/next.rs` holds the webhook's
//! household decisions (schedules, one-shot window, quiet hours) and `/voice/next`.
//!
//! Uses: `http`, `twilio`, `store`, `rules`, `system`, `config`, `model`, `util`.

pub mod control;
pub mod schedules;
pub mod webhook;
