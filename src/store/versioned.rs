//! The pattern every file of ours in the state directory follows: a JSON object with a
//! `version`, a format type of its own apart from the in-memory types, read only in the
//! versions this build knows (anything else fails closed), written whole and atomically,
//! and when it cannot be read, moved aside (never deleted or overwritten) or else left
//! alone with writes blocked.

use std::error::Error;
use std::fs;
use std::io;
use std::ops::RangeInclusive;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::storage;

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// Reads `dir/name` as `T`: `None` if there is no file; an error for any doubt (not
/// JSON, a version outside `reads`, a field that does not fit), which the caller takes
/// for "nothing stored" and fails closed. `what` names the file in errors.
pub fn read<T: DeserializeOwned>(
    dir: &Path,
    name: &str,
    what: &str,
    reads: RangeInclusive<u32>,
) -> Result<Option<T>, Box<dyn Error>> {
    let path = dir.join(name);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(storage::context(e, "read", &path).into()),
    };
    let v: VersionOnly = serde_json::from_slice(&bytes).map_err(|e| format!("not a {what}: {e}"))?;
    if !reads.contains(&v.version) {
        return Err(format!("unsupported {what} version {}", v.version).into());
    }
    Ok(Some(serde_json::from_slice(&bytes).map_err(|e| format!("corrupt {what}: {e}"))?))
}

/// The bytes to write for `file`: pretty JSON (a person may read it), one final newline.
pub fn encode<T: Serialize>(file: &T) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(file).map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// After `error` reading `dir/name`: logs it, and moves the file aside so the next write
/// cannot overwrite it. `Err(why)` if it could not be moved: the caller must then block
/// its writes (and say so) until the disk watcher manages it.
pub fn set_aside(dir: &Path, name: &str, what: &str, error: &dyn std::fmt::Display) -> Result<(), String> {
    let path = dir.join(name);
    log::error!("{what} {}: {error}", path.display());
    match storage::move_aside(&path) {
        Ok(to) => {
            log::error!("the unreadable {what} was kept as {}", to.display());
            Ok(())
        }
        Err(e) => Err(format!("the {what} is unreadable and could not be moved aside ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        version: u32,
        n: u32,
    }

    #[test]
    fn reads_known_versions_only_and_sets_bad_files_aside() {
        let dir = std::env::temp_dir().join(format!("intercom-versioned-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let read = || read::<File>(&dir, "f.json", "test file", 1..=2);
        assert_eq!(read().unwrap(), None);
        fs::write(dir.join("f.json"), encode(&File { version: 2, n: 7 }).unwrap()).unwrap();
        assert_eq!(read().unwrap(), Some(File { version: 2, n: 7 }));
        for (bad, says) in
            [(r#"{"version": 3, "n": 1}"#, "unsupported test file version 3"), ("[", "not a test file")]
        {
            fs::write(dir.join("f.json"), bad).unwrap();
            assert!(read().unwrap_err().to_string().contains(says), "{bad}");
        }
        fs::write(dir.join("f.json"), r#"{"version": 1, "n": 1, "extra": 0}"#).unwrap();
        assert!(read().unwrap_err().to_string().contains("corrupt test file"));
        set_aside(&dir, "f.json", "test file", &"bad").unwrap();
        assert_eq!(read().unwrap(), None, "moved aside");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "and kept");
        fs::remove_dir_all(&dir).unwrap();
    }
}
