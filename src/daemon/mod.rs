//! `daemon/`: `intercom serve`, the only folder that knows all the services. It binds
//! both listeners and serves at once, opens the stores on a thread of their own (a state
//! disk that hangs at start must not stop calls), wires them (every window change
//! becomes a history record, every record goes on to the notifications and Home
//! Assistant), ends windows whose time has come, and sends notifications (Twilio SMS, a
//! JSON webhook, ntfy) through a bounded queue and a worker per target, so that they
//! never delay an answer and a hanging target never delays another.
//!
//! Uses: `web`, `mqtt`, `http`, `twilio`, `store`, `rules`, `system`, `config`, `model`, `util`.

pub mod expiry;
pub mod notify;
pub mod server;
