//! `twilio/`: Twilio's side of the wire: `signature.rs` computes and checks
//! `X-Twilio-Signature`; `twiml.rs` renders a decision as TwiML, with the only code that
//! builds the action URLs bringing Twilio back to us; `rest.rs` is the REST
//! client (credentials, requests, error classes) that SMS, `twilio-setup` and `doctor`
//! share; `retry_after.rs` reads a `Retry-After` header.
//!
//! Uses: `rules`, `system`, `config`, `model`, `util`.

pub mod rest;
pub mod retry_after;
pub mod signature;
pub mod twiml;
