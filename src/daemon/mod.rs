//! `daemon/`: `intercom serve`. `server.rs` opens the stores and the notifier, wires them
//! (every window change becomes a history record, every record goes to the notifier),
//! binds both listeners and runs them: the only module that knows all the services.
//! `expiry.rs`: the thread that ends windows whose time has come. `notify.rs`:
//! notifications (Twilio SMS, JSON webhook) of chosen events, through a bounded queue and a
//! worker per target, so they never delay an answer and a hanging target never delays
//! another. Home Assistant's MQTT bridge (`mqtt/`) gets the same records.
//!
//! Uses: `web`, `mqtt`, `http`, `twilio`, `store`, `rules`, `system`, `config`, `model`, `util`.

pub mod expiry;
pub mod notify;
pub mod server;
