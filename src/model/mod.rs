//! `model/`: the vocabulary the layers above speak, plain data: `record.rs` (`Decision`,
//! `CallRecord`, `WindowChange`, `EventKind` and the `Record` that the history stores, the
//! API lists and the notifier sends) and `phone.rs` (numbers normalised to E.164).
//!
//! Uses: `util`.

pub mod phone;
pub mod record;
