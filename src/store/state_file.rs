//! `state_dir/state.json`: the window on disk, a versioned format of its own, kept apart
//! from the in-memory state so either can change without the other.
//!
//! Version 2 adds `boot_id`, the kernel's boot id when the window was last written (see
//! `boot.rs`). Version 1 files (no boot id) are still read; their window counts as from
//! an unknown boot. An older intercom refuses version 2 and reads it as closed (fail
//! closed), moving the file aside.

use std::error::Error;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::rules::window::ceil_secs;
use crate::util::rfc3339;

pub const STATE_FILE: &str = "state.json";
const VERSION: u32 = 2;
/// Versions this build reads.
const READS: [u32; 2] = [1, VERSION];

/// What the file says. A missing file says: closed, never changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// Unix seconds, rounded up; the window is open while now is before it.
    pub open_until: Option<u64>,
    /// Unix seconds of the last write.
    pub updated_at: Option<u64>,
    pub boot_id: Option<String>,
}

/// `state.json`, versions 1 and 2 (version 1 never has `boot_id`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    /// RFC 3339 UTC, or null when closed.
    open_until: Option<String>,
    updated_at: String,
    updated_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boot_id: Option<String>,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// The file's bytes for a window ending at `open_until` (unix seconds), written at `now`
/// by `source` in boot `boot_id`.
pub fn encode(open_until: Option<u64>, now: SystemTime, source: &str, boot_id: Option<&str>) -> Vec<u8> {
    let file = StateFile {
        version: VERSION,
        open_until: open_until.map(|s| rfc3339(UNIX_EPOCH + Duration::from_secs(s))),
        updated_at: rfc3339(now),
        updated_by: source.to_string(),
        boot_id: boot_id.map(str::to_string),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Reads `dir/state.json`; any doubt is an error (the caller fails closed).
pub fn load(dir: &Path) -> Result<Stored, Box<dyn Error>> {
    let path = dir.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Stored::default()),
        Err(e) => return Err(crate::store::storage::context(e, "read", &path).into()),
    };
    let v: VersionOnly = serde_json::from_slice(&bytes).map_err(|e| format!("not a state file: {e}"))?;
    if !READS.contains(&v.version) {
        return Err(format!("unsupported state file version {}", v.version).into());
    }
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| format!("corrupt state file: {e}"))?;
    let time =
        |s: &str| humantime::parse_rfc3339(s).map(unix_secs_ceil).map_err(|e| format!("bad time {s:?}: {e}"));
    Ok(Stored {
        open_until: file.open_until.as_deref().map(time).transpose()?,
        updated_at: Some(time(&file.updated_at)?),
        boot_id: file.boot_id,
    })
}

pub fn unix_secs_ceil(t: SystemTime) -> u64 {
    ceil_secs(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_version_1() {
        let dir = std::env::temp_dir().join(format!("intercom-statefile-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        fs::write(dir.join(STATE_FILE), encode(Some(4_600), now, "t", Some("boot-a"))).unwrap();
        let want =
            Stored { open_until: Some(4_600), updated_at: Some(1_000), boot_id: Some("boot-a".into()) };
        assert_eq!(load(&dir).unwrap(), want);
        let v1 =
            r#"{"version": 1, "open_until": null, "updated_at": "1970-01-01T00:16:40Z", "updated_by": "x"}"#;
        fs::write(dir.join(STATE_FILE), v1).unwrap();
        assert_eq!(load(&dir).unwrap(), Stored { updated_at: Some(1_000), ..Stored::default() });
        fs::write(dir.join(STATE_FILE), r#"{"version": 3}"#).unwrap();
        assert!(load(&dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
