//! `state_dir/state.json`: the window on disk, a versioned format of its own, kept apart
//! from the in-memory state so either can change without the other.
//!
//! Version 2 adds `boot_id`, the kernel's boot id when the window was last written (see
//! `boot.rs`). Version 1 files (no boot id) are still read; their window counts as from
//! an unknown boot. An older intercom refuses version 2 and reads it as closed (fail
//! closed), moving the file aside.

use std::error::Error;

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::store::versioned;
use crate::util::time::{parse_rfc3339, rfc3339, rfc3339_unix, unix_secs_ceil};

pub const STATE_FILE: &str = "state.json";
const VERSION: u32 = 2;
/// Versions this build reads.
const READS: std::ops::RangeInclusive<u32> = 1..=VERSION;

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

/// The file's bytes for a window ending at `open_until` (unix seconds), written at `now`
/// by `source` in boot `boot_id`.
pub fn encode(open_until: Option<u64>, now: SystemTime, source: &str, boot_id: Option<&str>) -> Vec<u8> {
    let file = StateFile {
        version: VERSION,
        open_until: open_until.map(rfc3339_unix),
        updated_at: rfc3339(now),
        updated_by: source.to_string(),
        boot_id: boot_id.map(str::to_string),
    };
    // Serializing plain strings cannot fail; an empty file would read as corrupt (closed).
    versioned::encode(&file).unwrap_or_default()
}

/// Reads `dir/state.json`; any doubt is an error (the caller fails closed).
pub fn load(dir: &Path) -> Result<Stored, Box<dyn Error>> {
    let Some(file) = versioned::read::<StateFile>(dir, STATE_FILE, "state file", READS)? else {
        return Ok(Stored::default());
    };
    let time = |s: &str| parse_rfc3339(s).map(unix_secs_ceil);
    Ok(Stored {
        open_until: file.open_until.as_deref().map(time).transpose()?,
        updated_at: Some(time(&file.updated_at)?),
        boot_id: file.boot_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::{Duration, UNIX_EPOCH};

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
