//! Rotation of the event history (`history.rs` owns the files and calls this with its
//! writer lock held and `events.jsonl` closed).
//!
//! Noise never pushes out what the resident needs: when the old file is replaced, its
//! records of strangers (rejected calls, refused signatures) go, and the rest (unlocks,
//! code uses, window changes, forwards) are kept in front of the file's lines, as far
//! as the bound allows; only then the oldest noise, and last the oldest records, are
//! dropped. So a flood of strangers' calls, however long, leaves every other record of
//! the last file's size (`history::ROTATE_AT_BYTES`) in place. The new `events.jsonl.1` is written atomically
//! before `events.jsonl` is removed; a power cut between leaves the file's lines twice,
//! which the next start notices (the old file ends with the whole current one) and
//! finishes the rotation.

use std::fs;
use std::io;
use std::path::Path;

use crate::model::record::{EventKind, Record};
use crate::store::storage::{self, context, read_if_any};

/// Moves the lines of `dir/current` to `dir/old`, keeping the old file's records that are
/// not noise in front of them, within `bound` bytes.
pub fn rotate(dir: &Path, current: &str, old_name: &str, bound: u64) -> io::Result<()> {
    let (path, rotated) = (dir.join(current), dir.join(old_name));
    let old = read_if_any(&rotated)?.unwrap_or_default();
    let kept = keep_within(&old, &fs::read(&path).map_err(|e| context(e, "read", &path))?, bound);
    storage::write_atomically(dir, old_name, &kept, 0o600)?;
    fs::remove_file(&path).map_err(|e| context(e, "rotate", &path))?;
    storage::sync_dir(dir)
}

/// A power cut between writing the old file and removing the current one leaves the
/// current file's lines at the end of the old file too: remove the current file.
pub fn finish(dir: &Path, current: &str, old_name: &str) -> io::Result<()> {
    let (path, rotated) = (dir.join(current), dir.join(old_name));
    let current = read_if_any(&path)?.unwrap_or_default();
    if !current.is_empty() && read_if_any(&rotated)?.unwrap_or_default().ends_with(&current) {
        log::warn!("the event log's last rotation was interrupted (a power cut?); finishing it");
        fs::remove_file(&path).map_err(|e| context(e, "rotate", &path))?;
        storage::sync_dir(dir)?;
    }
    Ok(())
}

/// The lines of `bytes` that are not blank.
pub fn lines(bytes: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    bytes.split(|c| *c == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace))
}

/// Records of strangers: a flood of them must not push the resident's records out.
fn is_noise(line: &[u8]) -> bool {
    serde_json::from_slice::<Record>(line)
        .map_or(true, |r| matches!(r.event, EventKind::CallRejected | EventKind::CallBadSignature))
}

/// The new old file: the old file's records that are not noise, then every line of the
/// current file, within `bound` bytes: dropping the oldest noise first, then the
/// oldest lines. Unreadable lines count as noise.
fn keep_within(old: &[u8], current: &[u8], bound: u64) -> Vec<u8> {
    let mut all: Vec<(bool, Vec<u8>)> =
        lines(old).filter(|l| !is_noise(l)).map(|l| (false, l.to_vec())).collect();
    all.extend(lines(current).map(|l| (is_noise(l), l.to_vec())));
    let mut size: u64 = all.iter().map(|(_, l)| l.len() as u64 + 1).sum();
    let mut keep = vec![true; all.len()];
    // The oldest noise goes first, then the oldest of the rest.
    for noise_only in [true, false] {
        for (i, (noise, line)) in all.iter().enumerate() {
            if size <= bound {
                break;
            }
            if keep[i] && (*noise || !noise_only) {
                keep[i] = false;
                size -= line.len() as u64 + 1;
            }
        }
    }
    let kept = all.into_iter().zip(keep).filter(|(_, k)| *k);
    kept.flat_map(|((_, line), _)| line.into_iter().chain([b'\n'])).collect()
}
