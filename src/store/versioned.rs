//! The pattern every file of ours in the state directory follows: a JSON object with a
//! `version`, a format type of its own apart from the in-memory types, read only in the
//! versions this build knows (anything else fails closed), written whole and atomically,
//! and when it cannot be read, moved aside (never deleted or overwritten) or else left
//! alone with writes blocked.
//!
//! [`Kept`] is such a file as its store keeps it, under the store's lock (so writes land
//! in the order they were made). What gives access (opening the window, adding, resuming,
//! a code's use) reaches the disk before memory, and a write that fails changes nothing.
//! What takes access away ([`Kept::revoke`]) changes memory first, so the door shuts at
//! once, and always works: if the disk refuses the write, a path that needs no space
//! makes the disk say nothing, which a restart reads as "none" and fails closed: the file
//! is renamed aside (kept: it holds the resident's other data), or removed where its
//! absence means the same (a closed window). The disk watcher then writes memory's state
//! as soon as the disk takes it, which replaces the renamed file.

use std::error::Error;
use std::fmt::Display;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::storage::{self, Health};

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// One file of the state directory and what it means, in words for the log and the page.
pub struct Spec {
    pub name: &'static str,
    /// The part of the service whose disk problems it reports to [`Health`]; "the {part}
    /// file" names the file in words.
    pub part: &'static str,
    /// The versions this build reads.
    pub reads: RangeInclusive<u32>,
    /// What having no file (or an unreadable one) means: "no schedule opens the door".
    pub none: &'static str,
    /// No file means what every revocation leaves (a closed window): a revocation that
    /// cannot be written removes the file instead of renaming it aside.
    pub removable: bool,
}

/// A store's file and whether the disk says what memory says.
pub struct Kept {
    dir: PathBuf,
    spec: &'static Spec,
    health: Arc<Health>,
    /// An unreadable file that could not be moved aside: a write would overwrite it, so
    /// writes are refused, for this reason, until the disk watcher moves it.
    pub blocked: Option<String>,
    /// A write failed: the disk may not say what memory says, and the disk watcher writes
    /// memory's state until it works.
    pub stale: bool,
    /// Where a revocation that could not be written renamed the file; removed once
    /// memory's state (all it held but what was revoked) is written in its place.
    aside: Option<PathBuf>,
    /// How the disk was cleared for a revocation it did not take, for the page, until a
    /// write works.
    cleared: Option<String>,
}

impl Kept {
    /// Reads the file with `load`, which fails for any doubt. Then memory starts from
    /// `T::default()` (which must fail closed, as [`Spec::none`] says) and the file is
    /// moved aside, or if it cannot be, writes are blocked.
    pub fn open<T: Default>(
        dir: &Path,
        spec: &'static Spec,
        health: Arc<Health>,
        load: impl FnOnce(&Path) -> Result<T, Box<dyn Error>>,
    ) -> (Kept, T) {
        let mut kept = Kept {
            dir: dir.to_path_buf(),
            spec,
            health,
            blocked: None,
            stale: false,
            aside: None,
            cleared: None,
        };
        let loaded = load(dir).unwrap_or_else(|e| {
            let path = dir.join(spec.name);
            if !dir.is_dir() {
                // No directory, so no file to keep: memory's state is written once there is one.
                kept.fail(&e, spec.none);
                return T::default();
            }
            let part = spec.part;
            log::error!("{part} file {}: {e}; {}", path.display(), spec.none);
            match storage::move_aside(&path, "bad") {
                Ok(to) => log::error!("the unreadable {part} file was kept as {}", to.display()),
                Err(aside) => {
                    let why = format!("the {part} file is unreadable and could not be moved aside ({aside})");
                    kept.health.fail(part, format!("{why}: {}", spec.none));
                    kept.blocked = Some(why);
                }
            }
            T::default()
        });
        (kept, loaded)
    }

    /// Writes `bytes`, for a change that memory takes only once it is on disk; if that
    /// fails, the page says so and what it `means` ("the window stays as it was").
    pub fn write(&mut self, bytes: &[u8], means: &str) -> io::Result<()> {
        let saved = self.save(bytes);
        if let (Err(e), None) = (&saved, &self.blocked) {
            self.fail(e, means); // a blocked file is on the page already
        }
        saved
    }

    /// After memory took access away: writes `bytes` (memory's state), or else clears the
    /// file off the disk by a path that needs no space (see the module). Always works; an
    /// error says that the disk does not have memory's state yet.
    pub fn revoke(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Err(e) = self.save(bytes) else { return Ok(()) };
        if self.blocked.is_some() {
            return Err(e); // the unreadable file reads as none already
        }
        self.stale = true;
        let (spec, path) = (self.spec, self.dir.join(self.spec.name));
        let how = if spec.removable { "removed" } else { "set aside" };
        let cleared = if spec.removable {
            storage::remove(&path)
        } else {
            match storage::move_aside(&path, "unsaved") {
                // Not there: set aside by an earlier revocation, or never written.
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                moved => moved.map(|to| self.aside = Some(to)),
            }
        };
        match cleared {
            Ok(()) => {
                let (name, none) = (spec.name, spec.none);
                self.cleared = Some(format!("; meanwhile {name} is {how}, so a restart finds none ({none})"));
                self.fail(&e, "the change holds and is written when the disk works again");
            }
            Err(f) => self.fail(
                &format!("{e}; nor {how}: {f}"),
                "the change holds, though the disk says otherwise until it can be written",
            ),
        }
        Err(e)
    }

    /// For the disk watcher: moves a file that blocks writes aside, then writes memory's
    /// state (`bytes`) if the disk may not have it. Whether it wrote.
    pub fn retry(&mut self, bytes: impl FnOnce() -> Vec<u8>) -> bool {
        if let Some(why) = &self.blocked {
            match storage::move_aside(&self.dir.join(self.spec.name), "bad") {
                Ok(to) => log::info!("the unreadable {} file was kept as {}", self.spec.part, to.display()),
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    log::debug!("still {why}: {e}");
                    return false;
                }
                Err(_) => {} // gone meanwhile
            }
            self.blocked = None;
            self.stale = true;
        }
        if !self.stale {
            return false;
        }
        let saved = self.save(&bytes());
        if let Err(e) = &saved {
            log::debug!("the {} file is still not saved: {e}", self.spec.part);
        }
        saved.is_ok()
    }

    /// Memory is ahead of the disk: the page says why and what that `means`.
    fn fail(&mut self, e: &dyn Display, means: &str) {
        self.stale = true;
        let cleared = self.cleared.as_deref().unwrap_or("");
        self.health.fail(
            self.spec.part,
            format!("the {} file cannot be saved ({e}): {means}{cleared}", self.spec.part),
        );
    }

    /// Writes `bytes`; a failure is the caller's to report (it refuses its change).
    pub fn save(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(why) = &self.blocked {
            return Err(io::Error::other(why.clone()));
        }
        storage::create_private_dir(&self.dir)?;
        storage::write_atomically(&self.dir, self.spec.name, bytes, 0o600)?;
        self.stale = false;
        self.cleared = None;
        self.health.clear(self.spec.part);
        if let Some(aside) = self.aside.take() {
            if let Err(e) = storage::remove(&aside) {
                log::warn!("{e}; it held nothing that is not saved now");
            }
        }
        Ok(())
    }
}

/// Reads `dir/name` as `T`: `None` if there is no file; an error for any doubt (not
/// JSON, a version outside `spec.reads`, a field that does not fit), which the caller
/// takes for "nothing stored" and fails closed.
pub fn read<T: DeserializeOwned>(dir: &Path, spec: &Spec) -> Result<Option<T>, Box<dyn Error>> {
    let Some(bytes) = storage::read_if_any(&dir.join(spec.name))? else { return Ok(None) };
    let part = spec.part;
    let v: VersionOnly = serde_json::from_slice(&bytes).map_err(|e| format!("not a {part} file: {e}"))?;
    if !spec.reads.contains(&v.version) {
        return Err(format!("unsupported {part} file version {}", v.version).into());
    }
    Ok(Some(serde_json::from_slice(&bytes).map_err(|e| format!("corrupt {part} file: {e}"))?))
}

/// Why an entry (a guest code, a schedule) was not added or changed, in words for the
/// page: there are as many as may be (the API answers 409), or it was not saved.
#[derive(Debug)]
pub enum AddError {
    Full(String),
    Io(String),
}

impl Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let (AddError::Full(why) | AddError::Io(why)) = self;
        f.write_str(why)
    }
}

/// Fresh draws before giving up on a value that no entry has: among at most a few dozen
/// entries and millions of values, one draw almost always does; this bound only stops a
/// broken random source.
const MAX_DRAWS: usize = 100;

/// A new entry's id or secret that no entry has yet (`taken`): `bytes` random bytes as
/// hex, which `make` turns into the value (`None`: draw again). An error only if the OS
/// has no randomness, or gives the same values again and again.
pub fn draw(
    bytes: usize,
    make: impl Fn(String) -> Option<String>,
    taken: impl Fn(&str) -> bool,
) -> io::Result<String> {
    for _ in 0..MAX_DRAWS {
        if let Some(v) = make(crate::util::random_hex(bytes)?).filter(|v| !taken(v)) {
            return Ok(v);
        }
    }
    Err(io::Error::other("could not draw a fresh value"))
}

/// The bytes to write for `file`: pretty JSON (a person may read it), one final newline.
/// Our formats hold strings, numbers and times, which cannot fail to serialize; if one
/// did, the empty file would read as corrupt, which fails closed.
pub fn encode<T: Serialize>(file: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(file).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        version: u32,
        n: u32,
    }

    static TEST: Spec =
        Spec { name: "f.json", part: "test", reads: 1..=2, none: "nothing is stored", removable: false };

    #[test]
    fn reads_known_versions_only_and_sets_bad_files_aside() {
        let dir = std::env::temp_dir().join(format!("intercom-versioned-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let read = || read::<File>(&dir, &TEST);
        assert_eq!(read().unwrap(), None);
        fs::write(dir.join("f.json"), encode(&File { version: 2, n: 7 })).unwrap();
        assert_eq!(read().unwrap(), Some(File { version: 2, n: 7 }));
        for (bad, says) in
            [(r#"{"version": 3, "n": 1}"#, "unsupported test file version 3"), ("[", "not a test file")]
        {
            fs::write(dir.join("f.json"), bad).unwrap();
            assert!(read().unwrap_err().to_string().contains(says), "{bad}");
        }
        fs::write(dir.join("f.json"), r#"{"version": 1, "n": 1, "extra": 0}"#).unwrap();
        assert!(read().unwrap_err().to_string().contains("corrupt test file"));
        let (kept, loaded) = Kept::open(&dir, &TEST, Health::new(), |d| super::read::<File>(d, &TEST));
        assert!(loaded.is_none() && kept.blocked.is_none());
        assert_eq!(read().unwrap(), None, "moved aside");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "and kept");
        fs::remove_dir_all(&dir).unwrap();
    }
}
