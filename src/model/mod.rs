//! `model/`: the vocabulary the layers above speak, plain data and the sentences that
//! describe it: a call's decision and record, the window's changes, the event kinds and
//! the records that the history stores, the API lists and the notifier sends; phone
//! numbers normalised to E.164; and the control API's request and answer bodies, shared
//! by server and clients.
//!
//! Uses: `util`.

pub mod api;
pub mod phone;
pub mod record;
