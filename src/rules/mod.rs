//! `rules/`: the decisions, as functions of resolved values with no I/O and no URL (a
//! decision names the next step; `twilio/twiml.rs` makes it a URL): reject, unlock or
//! forward a call from the entrance calling and what lets it in; who is rung, and in what
//! order (quiet hours, one at a time); the guest-code rules (offer the prompt? a right
//! code? lock after wrong ones? the API's request checks); schedules in local time; the
//! window's status at a time and what a change means for the history; and the one clock
//! policy that every time-based rule obeys (what a step of the wall clock, either way,
//! means until the clock is confirmed again).
//!
//! All of it is pure but the clock policy's one shared `Clock`: it reads the monotonic
//! clock and asks the sync signal it was given beside each reading, so that every store
//! judges the same readings alike, and logs each step and each confirmation once.
//!
//! Uses: `config`, `model`, `util`.

pub mod call;
pub mod clock;
pub mod codes;
pub mod ring;
pub mod schedule;
pub mod window;
