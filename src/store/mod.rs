//! `store/`: everything in the state directory; nothing else touches the disk. It owns
//! the window, the guest codes and their lockout, the schedules, the paired devices, the
//! event history and the generated control token, each in a file of its own, and the
//! storage `Health` that the page and `/api/status` show. Every file is written whole and
//! atomically (the history is appended, with one flush per batch); one that cannot be
//! read fails closed and is moved aside, never deleted; what gives access reaches the disk
//! before memory, what takes it away reaches memory first and always works; and a disk
//! watcher writes memory's state once a failing disk takes it again, so a broken disk
//! never stops the intercom.
//!
//! Uses: `rules`, `system`, `config`, `model`, `util`.

pub mod codes;
pub mod devices;
pub mod history;
pub mod rotation;
pub mod schedules;
pub mod state;
pub mod storage;
pub mod token;
pub mod versioned;
