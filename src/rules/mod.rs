//! `rules/`: the pure decisions, functions of resolved values with no I/O and no URL (a
//! decision names the next step; `twilio/twiml.rs` makes it a URL): `call.rs` (reject /
//! unlock / forward from the entrance calling, what lets it in and who is rung, and whether
//! a guest code turns a forward into a prompt or an unlock), `codes.rs` (the guest-code
//! rules: offer the prompt? is this a right code? lock after wrong ones? the API's request
//! checks) and `window.rs` (the window's status at a time, what a change means for the
//! history), `clock.rs` (the one guard against a clock that went back, which both stores
//! use) and `clock_steps.rs` (how long a step back pauses guest codes: at most as long as
//! the clock had read ahead).
//!
//! Uses: `config`, `model`, `util`.

pub mod call;
pub mod clock;
pub mod clock_steps;
pub mod codes;
pub mod ring;
pub mod schedule;
pub mod window;
