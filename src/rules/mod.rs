//! `rules/`: the pure decisions, functions of their inputs with no I/O: `call.rs` (reject /
//! unlock / forward from the caller, the window and the config, and whether a guest code
//! turns a forward into a prompt or an unlock), `codes.rs` (the guest-code rules: offer the
//! prompt? is this a right code? lock after wrong ones? the API's request checks) and
//! `window.rs` (the window's status at a time, what a change means for the history) and
//! `clock.rs` (the one guard against a clock that went back, which both stores use).
//!
//! Uses: `config`, `model`, `util`.

pub mod call;
pub mod clock;
pub mod codes;
pub mod window;
