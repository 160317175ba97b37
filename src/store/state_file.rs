//! `state_dir/state.json`: the window on disk, a versioned format of its own, kept apart
//! from the in-memory state so either can change without the other.
//!
//! Version 2 adds `boot_id`, the kernel's boot id when the window was last written (see
//! `boot.rs`). Version 1 files (no boot id) are still read; their window counts as from
//! an unknown boot. Version 3 adds `once`: the window is for the next visitor only (see
//! `Store::use_once`); older files never are. An older intercom refuses a newer version
//! and reads it as closed (fail closed), moving the file aside.

use std::error::Error;

use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::store::versioned::{self, Spec};
use crate::util::time::{ceil, floor};

pub const STATE_FILE: &str = "state.json";
const VERSION: u32 = 3;
pub static SPEC: Spec = Spec {
    name: STATE_FILE,
    what: "state file",
    part: "state",
    reads: 1..=VERSION,
    none: "the window stays closed and calls ring your phone",
    held: "the window is closed, though the disk still says open until it can be written",
    removable: true,
};

/// What the file says. A missing file says: closed, never changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// Whole seconds, rounded up; the window is open while now is before it.
    pub open_until: Option<Timestamp>,
    /// The last write, rounded up.
    pub updated_at: Option<Timestamp>,
    pub boot_id: Option<String>,
    /// The window ends at the first unlock.
    pub once: bool,
}

/// `state.json`, versions 1 to 3 (version 1 never has `boot_id`, only 3 has `once`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    /// RFC 3339 UTC, or null when closed.
    open_until: Option<Timestamp>,
    updated_at: Timestamp,
    updated_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boot_id: Option<String>,
    #[serde(default)]
    once: Option<bool>,
}

/// The file's bytes for a window ending at `open_until` (whole seconds), written at `now`
/// by `source` in boot `boot_id`.
pub fn encode(
    open_until: Option<Timestamp>,
    once: bool,
    now: Timestamp,
    source: &str,
    boot_id: Option<&str>,
) -> Vec<u8> {
    let file = StateFile {
        once: Some(once),
        version: VERSION,
        open_until,
        updated_at: floor(now),
        updated_by: source.to_string(),
        boot_id: boot_id.map(str::to_string),
    };
    versioned::encode(&file)
}

/// Reads `dir/state.json`; any doubt is an error (the caller fails closed).
pub fn load(dir: &Path) -> Result<Stored, Box<dyn Error>> {
    let Some(file) = versioned::read::<StateFile>(dir, &SPEC)? else {
        return Ok(Stored::default());
    };
    if file.version < 3 && file.once.is_some() {
        return Err(format!("corrupt state file: `once` in a version {} file", file.version).into());
    }
    Ok(Stored {
        open_until: file.open_until.map(ceil),
        updated_at: Some(ceil(file.updated_at)),
        boot_id: file.boot_id,
        once: file.once.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn round_trips_and_reads_version_1() {
        let dir = std::env::temp_dir().join(format!("intercom-statefile-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let at = |secs| Timestamp::from_second(secs).unwrap();
        let now = at(1_000);
        fs::write(dir.join(STATE_FILE), encode(Some(at(4_600)), false, now, "t", Some("boot-a"))).unwrap();
        let want = Stored {
            open_until: Some(at(4_600)),
            updated_at: Some(at(1_000)),
            boot_id: Some("boot-a".into()),
            once: false,
        };
        assert_eq!(load(&dir).unwrap(), want);
        fs::write(dir.join(STATE_FILE), encode(Some(at(4_600)), true, now, "t", None)).unwrap();
        assert!(load(&dir).unwrap().once);
        let v2 = r#"{"version": 2, "open_until": "1970-01-01T01:16:40Z", "updated_at": "1970-01-01T00:16:40Z", "updated_by": "x", "boot_id": "b"}"#;
        fs::write(dir.join(STATE_FILE), v2).unwrap();
        let want = Stored { once: false, boot_id: Some("b".into()), ..want };
        assert_eq!(load(&dir).unwrap(), want, "version 2 is still read: never once");
        let v2_once = v2.replace("\"boot_id\"", "\"once\": true, \"boot_id\"");
        fs::write(dir.join(STATE_FILE), v2_once).unwrap();
        assert!(load(&dir).is_err(), "a version 2 file knows no `once`");
        let v1 =
            r#"{"version": 1, "open_until": null, "updated_at": "1970-01-01T00:16:40Z", "updated_by": "x"}"#;
        fs::write(dir.join(STATE_FILE), v1).unwrap();
        assert_eq!(load(&dir).unwrap(), Stored { updated_at: Some(at(1_000)), ..Stored::default() });
        fs::write(dir.join(STATE_FILE), r#"{"version": 4}"#).unwrap();
        assert!(load(&dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
