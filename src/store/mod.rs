//! `store/`: everything in the state directory; nothing else touches the disk.
//! `storage.rs` is what the stores share (atomic writes, moving bad files aside, a failed
//! operation's cause in words, the storage `Health` that the page and `/api/status` show,
//! the thread that retries a failing disk). `state.rs` holds the window (it reports every
//! change to an observer, under its lock, in order; closing always works, even on a broken
//! disk) in the versioned format of `state_file.rs`. `codes.rs`: the guest codes and the
//! wrong-code lockout, in the format of `codes_file.rs`; a use is on disk before the door
//! opens.
//! `history.rs`: `events.jsonl` with rotation; a record is on disk before the answer
//! (group commit), and it decides nothing about what is recorded. `rotation.rs`: how a
//! full file moves aside, keeping the resident's records ahead of strangers'. `token.rs`: the
//! generated control token. `versioned.rs`: the versioned-file pattern they all follow
//! (version gate, whole atomic writes, bad files moved aside). `devices.rs`: the paired
//! phones in `devices.json` (names, hashes of their secrets, last use) and the pending
//! one-time pairing codes (memory only).
//!
//! Uses: `rules`, `system`, `config`, `model`, `util`.

pub mod codes;
pub mod codes_file;
pub mod devices;
pub mod history;
pub mod schedules;

pub mod rotation;
pub mod state;
pub mod storage;
pub mod token;
pub mod versioned;
