//! The disk as every store uses it: atomic file writes, moving bad files aside, the cause
//! of a failed operation in words a resident understands, and [`Health`], the one place
//! they all report what is wrong with the state disk (shown in `/api/status`, on the page
//! and, once per problem, in the log).
//!
//! Why a broken disk never stops the intercom: a Pi's SD card fills up, turns read-only
//! or loses its directory, and the door must then fail closed (forward every call), not
//! fail altogether. So every operation here reports the path and what it tried, callers
//! carry on without the disk, and [`watch`] retries periodically until it works again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use jiff::Timestamp;

use crate::util::lock;

/// How often a failing disk is tried again. Each try is a small write and one flush, so
/// this costs nothing on a healthy disk (nothing is tried) and little on a broken one,
/// and a fixed disk (remounted, space freed) is in use again within seconds.
pub const DISK_RETRY: Duration = Duration::from_secs(5);
/// Files moved aside under one name and second before we give up (never overwrite).
const MAX_ASIDE_NAMES: u32 = 100;

/// A part of the service that can try the disk again; [`watch`] calls it.
pub trait Retry: Send + Sync {
    /// Tries to bring the disk back in line with memory, if something failed before.
    fn retry_disk(&self, now: Timestamp);
}

/// Starts the thread that calls `retry_disk` on each part every [`DISK_RETRY`].
pub fn watch(parts: Vec<Arc<dyn Retry>>) -> io::Result<()> {
    thread::Builder::new().name("disk-retry".into()).spawn(move || loop {
        thread::sleep(DISK_RETRY);
        for part in &parts {
            part.retry_disk(Timestamp::now());
        }
    })?;
    Ok(())
}

/// What is wrong with the state disk right now, per part ("state", "history", ...).
#[derive(Default)]
pub struct Health {
    problems: Mutex<Vec<(&'static str, String)>>,
}

impl Health {
    pub fn new() -> Arc<Health> {
        Arc::new(Health::default())
    }

    /// Records that `part` has a problem. Logged when the part goes from working to
    /// failing; while it keeps failing, the message shown is updated without a log line,
    /// so a broken disk costs one error line, not one per call or per retry.
    pub fn fail(&self, part: &'static str, problem: String) {
        let mut problems = lock(&self.problems);
        match problems.iter_mut().find(|(p, _)| *p == part) {
            Some((_, old)) => {
                if *old != problem {
                    log::debug!("{problem}");
                    *old = problem;
                }
            }
            None => {
                log::error!("{problem}");
                problems.push((part, problem));
            }
        }
    }

    /// Records that `part` works again; logs the recovery if it had a problem.
    pub fn clear(&self, part: &'static str) {
        let mut problems = lock(&self.problems);
        let before = problems.len();
        problems.retain(|(p, _)| *p != part);
        if problems.len() < before {
            log::info!("the state disk works again for the {part}");
        }
    }

    pub fn has(&self, part: &'static str) -> bool {
        lock(&self.problems).iter().any(|(p, _)| *p == part)
    }

    /// Every current problem in one sentence each, or `None` when the disk is fine.
    pub fn problem(&self) -> Option<String> {
        let problems = lock(&self.problems);
        let all: Vec<&str> = problems.iter().map(|(_, m)| m.as_str()).collect();
        (!all.is_empty()).then(|| all.join("; "))
    }
}

/// Linux error numbers we name (from asm-generic/errno-base.h, the same on every Linux
/// architecture). `io::ErrorKind` names them only since Rust 1.83, above our MSRV.
pub const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const ENOSPC: i32 = 28;
const EROFS: i32 = 30;

/// The cause of a failed disk operation, in words for the page and the API.
pub fn cause(e: &io::Error) -> String {
    match (e.raw_os_error(), e.kind()) {
        (Some(ENOSPC), _) => "no space left on the state disk".into(),
        (Some(EROFS), _) => "the state disk is read-only".into(),
        (Some(EISDIR), _) => "a directory is in the way".into(),
        (Some(ENOTDIR), _) => "a file is in the way of a directory".into(),
        (_, io::ErrorKind::PermissionDenied) => "permission denied".into(),
        (_, io::ErrorKind::NotFound) => "it does not exist".into(),
        _ => e.to_string(),
    }
}

/// `e` with the operation and the path in its message, and its kind kept:
/// "write /var/lib/intercom/.state.json.tmp: no space left on the state disk".
pub fn context(e: io::Error, op: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{op} {}: {}", path.display(), cause(&e)))
}

/// Temp file in the same directory, fsync, rename over the target, fsync the directory.
/// On failure the temp file is removed (on a full disk it holds space) and the target is
/// untouched; the error names the step and the path.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let (tmp, target) = (dir.join(format!(".{name}.tmp")), dir.join(name));
    let replaced = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| context(e, "create", &tmp))?;
        f.write_all(bytes).map_err(|e| context(e, "write", &tmp))?;
        f.sync_all().map_err(|e| context(e, "flush", &tmp))?;
        fs::rename(&tmp, &target).map_err(|e| context(e, "replace", &target))
    })();
    if replaced.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    replaced.and_then(|()| sync_dir(dir))
}

/// A file's bytes; `None` if it does not exist.
pub fn read_if_any(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        other => other.map(Some).map_err(|e| context(e, "read", path)),
    }
}

/// Removes `path` (a missing file is fine) and flushes the directory. Needs no free space,
/// which is why closing the window falls back to it.
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(context(e, "remove", path)),
    }
}

/// The directory `path` is in ("." for a bare name), to flush after changing its entries.
pub fn parent(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| context(e, "flush the directory", dir))
}

/// Creates the state directory (mode 0700) if it is not there.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(context(io::Error::from_raw_os_error(ENOTDIR), "use the state directory", dir)),
        // Its name flushed too, or a power cut may take it with every file written in it.
        Err(_) => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| context(e, "create the state directory", dir))
            .and_then(|()| sync_dir(parent(dir))),
    }
}

/// Renames `path` (a file, or a directory in a file's place) to `path.<why>-<unix
/// time>[-n]` (`why`: `bad`, unreadable; `unsaved`, set aside by a change the disk did not
/// take), never over an existing name. We are the only writer of the state directory, so
/// checking the name first is enough.
pub fn move_aside(path: &Path, why: &str) -> io::Result<PathBuf> {
    let stamp = Timestamp::now().as_second().max(0);
    for n in 0..MAX_ASIDE_NAMES {
        let suffix = if n == 0 { format!("{why}-{stamp}") } else { format!("{why}-{stamp}-{n}") };
        let mut to = path.as_os_str().to_owned();
        to.push(format!(".{suffix}"));
        let to = PathBuf::from(to);
        if fs::symlink_metadata(&to).is_ok() {
            continue;
        }
        fs::rename(path, &to).map_err(|e| context(e, "move aside", path))?;
        sync_dir(parent(path))?;
        return Ok(to);
    }
    Err(io::Error::other(format!("move aside {}: too many files already moved aside", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_logs_once_and_clears() {
        let h = Health::new();
        assert_eq!(h.problem(), None);
        h.fail("state", "cannot write x".into());
        h.fail("history", "cannot write y".into());
        assert!(h.has("state"));
        assert_eq!(h.problem().unwrap(), "cannot write x; cannot write y");
        h.clear("state");
        assert!(!h.has("state"));
        h.clear("history");
        assert_eq!(h.problem(), None);
    }

    #[test]
    fn causes_in_words_keep_the_kind() {
        let e = context(io::Error::from_raw_os_error(ENOSPC), "write", Path::new("/s/x"));
        assert_eq!(e.kind(), io::Error::from_raw_os_error(ENOSPC).kind());
        assert_eq!(e.to_string(), "write /s/x: no space left on the state disk");
    }

    #[test]
    fn the_directory_of_a_bare_name_is_the_current_one() {
        assert_eq!(parent(Path::new("state")), Path::new("."));
        assert_eq!(parent(Path::new("/var/lib/intercom/state.json")), Path::new("/var/lib/intercom"));
        assert_eq!(parent(Path::new("/")), Path::new("."));
    }

    #[test]
    fn a_directory_in_a_files_place_is_moved_aside() {
        let dir = std::env::temp_dir().join(format!("intercom-storage-aside-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("state.json/inner")).unwrap();
        let to = move_aside(&dir.join("state.json"), "bad").unwrap();
        assert!(to.join("inner").is_dir() && !dir.join("state.json").exists());
        write_atomically(&dir, "state.json", b"{}", 0o600).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
