//! Home Assistant through MQTT: with an `mqtt` section in the config, the daemon keeps a
//! connection to the broker and appears in Home Assistant as one device, "Intercom",
//! by MQTT discovery (no YAML): a switch for the open window, buttons "Let the next
//! visitor in" and "Let the ringing visitor in", sensors for the time left and the last
//! event, binary sensors for a storage problem, paused guest codes and a call that rings,
//! and an event entity for each call. Without the section nothing connects. The cargo
//! feature `mqtt` (on by default) leaves all of it out of a build that does not want it.
//!
//! What it owns: the MQTT 3.1.1 wire format (pure: bytes in, bytes out), one connection
//! with its timeouts and keep-alive (plain or TLS), the topics and discovery payloads
//! (pure), and the thread that ties them to the daemon.
//!
//! What it may use: the state and the guest codes (to read them and to open and close the
//! window exactly as the control API does, with source `home-assistant`, so the history
//! and notifications follow through the state's observer), the history's newest record,
//! the record vocabulary, the config, and the crate's TLS roots. Nothing uses it but
//! `daemon/server.rs`, which hands it the records the history writes and the call that
//! rings.
//!
//! Invariants: no call ever waits for the broker (records reach the bridge through a
//! bounded queue that never blocks); every wait on the network is bounded by a named
//! timeout; a retained command is never acted on (it would replay at each reconnect), nor
//! more than a few a second (a flood would push the resident's records out); the
//! will (`offline`, retained) tells Home Assistant when the daemon is gone, including
//! after `kill -9`. DISCONNECT is never sent: a daemon that stops is gone, and its will
//! should say so.
//!
//! Uses: `store`, `system`, `config`, `model`, `util`.

mod bridge;
mod client;
mod codec;
mod discovery;

pub use bridge::{Bridge, RingHooks};
