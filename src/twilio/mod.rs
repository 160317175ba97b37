//! `twilio/`: Twilio's side of the wire: computing and checking `X-Twilio-Signature` (and
//! the control listener's proof, made with the same MAC), TwiML for a decision with the
//! only code that builds the action URLs bringing Twilio back to us, the REST client
//! (credentials, requests, error classes) that SMS, let-in, `twilio-setup` and `doctor`
//! share, and reading a `Retry-After` header.
//!
//! Uses: `rules`, `system`, `config`, `model`, `util`.

pub mod rest;
pub mod retry_after;
pub mod signature;
pub mod twiml;
