//! `intercom`: answers Twilio's voice webhook for a building intercom. During an open
//! window the door tones are played; otherwise the call is forwarded to the resident;
//! a call that is not from the intercom is rejected.
//!
//! # Architecture
//!
//! Synchronous, plain threads, no async runtime. Modules and what each owns:
//!
//! - `main.rs`: argument dispatch and logging setup; nothing else. `lib.rs` only lists
//!   the modules (a library so the fuzz targets can reach the parsers).
//! - `cli.rs`: argument parsing and the client commands (`open`, `close`, `status`, `url`,
//!   `check-config`, `simulate`). Client commands talk to the running server's control
//!   API, so the server is the only writer of the state.
//! - `config.rs`: the JSON config, parsed and checked once into typed structs that are
//!   passed explicitly. Raw JSON never reaches a handler. Secrets are `Secret`s, which
//!   never print.
//! - `server.rs`: `serve`: opens the state, binds both listeners, runs them.
//! - `http.rs`: the HTTP/1.1 server (limits, timeouts, connection cap) and the one
//!   `HttpError` type that handlers return; each listener maps it to a response in one place.
//! - `webhook.rs`: the internet-facing listener: Twilio's webhook and `/healthz`. It never
//!   changes the window; it appends each decision to the history. `signature.rs` checks
//!   `X-Twilio-Signature`; `form.rs` parses form/query parameters.
//! - `control.rs` (+ `page.html`): the LAN listener: the phone page and the JSON API,
//!   token-protected.
//! - `call.rs`: the pure decision (reject / unlock / forward); `twiml.rs` renders it;
//!   `phone.rs` normalises numbers to E.164.
//! - `state.rs`: the window and the control token, in the state directory; it reports
//!   every window change to an observer, under its lock, in order.
//! - `events.rs`: the history, `state_dir/events.jsonl` (the only other file it writes
//!   there): a record per call decision and window change, flushed before the answer;
//!   `GET /api/events`; the expiry watcher thread.
//! - `notify.rs`: notifications (Twilio SMS, JSON webhook) of chosen events, through a
//!   bounded queue to one worker thread, so they never delay an answer.
//! - `tls.rs`: which CAs outbound HTTPS trusts (the system's bundle, read once); every
//!   HTTP agent takes its TLS settings from there.
//!
//! # Invariants
//!
//! - Fail closed: any doubt about the caller, the signature or the stored state means
//!   the door stays shut.
//! - The webhook listener serves no route that changes state; the control listener
//!   serves no TwiML. Routes match raw paths exactly.
//! - State changes reach the disk atomically before memory; a bad state file is moved
//!   aside, never deleted. The state mutex is never held across network I/O.
//! - Every limit (sizes, timeouts, thread caps) is a named constant with its reason.
//! - A panicking request thread answers 500 and the daemon goes on (`panic = "unwind"`).

pub mod call;
pub mod cli;
pub mod config;
pub mod control;
pub mod events;
pub mod form;
pub mod http;
pub mod notify;
pub mod phone;
pub mod server;
pub mod signature;
pub mod state;
pub mod tls;
pub mod twiml;
pub mod url;
pub mod webhook;

/// Locks a mutex even if a thread panicked while holding it. Every mutex here guards
/// state that changes in single assignments or appends whole lines, so a poisoned lock
/// holds nothing half-written, and one panicking request must not wedge the daemon.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A time as RFC 3339 UTC in whole seconds, as the state file, the API and the history write it.
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
