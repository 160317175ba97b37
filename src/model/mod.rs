//! `model/`: the vocabulary the layers above speak, plain data: `record.rs` (`Decision`,
//! `CallRecord`, `WindowChange`, `EventKind` and the `Record` that the history stores, the
//! API lists and the notifier sends), `phone.rs` (numbers normalised to E.164) and
//! `api.rs` (the control API's request and answer bodies, shared by server and clients).
//!
//! Uses: `util`.

pub mod api;
pub mod phone;
pub mod record;
