//! `intercom`: answers Twilio's voice webhook for a building intercom. During an open
//! window the door tones are played; otherwise the call is forwarded to the resident;
//! a call that is not from the intercom is rejected.
//!
//! # Architecture
//!
//! Synchronous, plain threads, no async runtime. `src/` is a folder per layer; each
//! folder's `mod.rs` says what it owns and which folders it may use. Uses point down this
//! table only (a folder may use those listed in its row, never one above it), and the
//! files inside a folder form no cycle; `tests/it/layers.rs` reads the folders' rows from
//! their `mod.rs` files and fails CI on an upward use or a cycle.
//!
//! | folder | owns | may use |
//! |---|---|---|
//! | `main.rs` | the binary: parses the command line, sets up logging, dispatches | everything |
//! | `cli/` | the commands a person types (all but `serve`) | `twilio`, `store`, `rules`, `system`, `config`, `model`, `util` |
//! | `daemon/` | `serve`: wiring the services and listeners, expiry, notifications | every folder below |
//! | `web/` | the two listeners' handlers: webhook and control (page, JSON API) | `http`, `twilio`, `store`, `rules`, `system`, `config`, `model`, `util` |
//! | `mqtt/` | Home Assistant through an MQTT broker (cargo feature `mqtt`): discovery, state topics, commands | `store`, `system`, `config`, `model`, `util` |
//! | `store/` | everything on disk: window state, codes, history, token, paired devices | `rules`, `system`, `config`, `model`, `util` |
//! | `twilio/` | Twilio's side: signatures, TwiML, the REST client | `rules`, `system`, `config`, `model`, `util` |
//! | `rules/` | the decisions, with no file or network I/O: the call, guest codes, the window, the one clock policy (which logs when its doubt begins or ends) | `config`, `model`, `util` |
//! | `config/` | the config file, read once into typed structs | `model`, `util` |
//! | `system/` | the machine: boot id, clock sync, time zone, watchdog, TLS roots | `util` |
//! | `model/` | the vocabulary: records, events, phone numbers, the API's bodies | `util` |
//! | `http/` | HTTP/1.1 on the wire, connections, threads; knows no route | `util` |
//! | `util/` | locks, time, random hex, log-safe text, rate-limited logs, the drop-oldest queue, a socket with one deadline, which files we trust | nothing |
//!
//! # Invariants
//!
//! - Fail closed: any doubt about the caller, the signature or the stored state means
//!   the door stays shut, and the resident still gets the call (forward).
//! - Only `store/` reads and writes the files in the state directory. Others only check
//!   who may write it (`util/ownership.rs`), and `intercom doctor` writes a probe file of
//!   its own there and removes it at once, to show that the directory is writable.
//! - Services never see HTTP: the listeners translate requests into calls on them;
//!   `daemon/server.rs` joins them with callbacks.
//! - The webhook listener serves no route that changes state, except that a call from the
//!   intercom spends a one-shot window or a guest code's use (or counts a wrong code), that
//!   each call's decision is appended to the history, and that a notification's one-time
//!   link (128 random bits, 3 minutes, once) lets in the call it was made for while that
//!   call rings; the control listener serves no TwiML. Routes match the raw path, never a
//!   decoded one.
//! - Opening the window reaches the disk atomically before memory; closing reaches memory
//!   first and then the disk by a path that needs no space. Taking a right away (pausing
//!   or deleting a schedule, deleting a guest code, removing a paired phone) likewise
//!   holds in memory at once; a disk that refuses the write gets its file set aside, so a
//!   restart does not bring the right back (each store's header says how). A bad state file is moved aside, never deleted. A broken state disk never stops the server: it starts, forwards
//!   every call and says what is wrong. No lock is held across network I/O, and a call
//!   waits for a lock that a disk write may hold only within a bound.
//! - Every limit (sizes, timeouts, thread caps) is a named constant with its reason.
//! - A panicking request thread answers 500 and the daemon goes on (`panic = "unwind"`).
//! - No `unsafe` code of our own (`forbid(unsafe_code)`, here and in `main.rs`).

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod daemon;
pub mod http;
pub mod model;
#[cfg(feature = "mqtt")]
pub mod mqtt;
pub mod rules;
pub mod store;
pub mod system;
pub mod twilio;
pub mod util;
pub mod web;
