//! `rules/`: the pure decisions, functions of resolved values with no I/O and no URL (a
//! decision names the next step; `twilio/twiml.rs` makes it a URL): `call.rs` (reject /
//! unlock / forward from the entrance calling, what lets it in and who is rung, and whether
//! a guest code turns a forward into a prompt or an unlock), `codes.rs` (the guest-code
//! rules: offer the prompt? is this a right code? lock after wrong ones? the API's request
//! checks) and `window.rs` (the window's status at a time, what a change means for the
//! history), `clock.rs` (the one clock policy that every time-based rule obeys: what a
//! step of the wall clock, either way, means until the clock is confirmed again; its
//! shared `Clock` feeds the pure rule the monotonic clock and the sync signal).
//!
//! Uses: `config`, `model`, `util`.

pub mod call;
pub mod clock;
pub mod codes;
pub mod ring;
pub mod schedule;
pub mod window;
