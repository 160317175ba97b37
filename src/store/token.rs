//! The control token when the config has none: `state_dir/control-token`, made with fresh
//! randomness on first start (mode 0600) and read at every start after.
//!
//! When the state disk fails: a token file that can still be read (a read-only SD card)
//! is used as usual. If there is none and none can be written, a token is made in memory
//! and never logged (secrets never are), so the page and the API are unusable while the
//! disk is broken, unless `control.token` is set; calls are forwarded meanwhile. The
//! disk watcher saves that token as soon as the disk takes it, so the CLI then works
//! without a restart.

use jiff::Timestamp;
use std::error::Error;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::config::Secret;
use crate::store::storage;
use crate::util::lock;

pub const TOKEN_FILE: &str = "control-token";
/// 256 bits: far beyond guessing; 64 hex digits in a URL.
const TOKEN_BYTES: usize = 32;

/// Keeps the token file of one state directory.
pub struct Keeper {
    dir: PathBuf,
    /// A token made in memory because the disk would not keep it; saved when it does.
    unsaved: Mutex<Option<Secret>>,
}

impl Keeper {
    pub fn new(dir: &Path) -> Keeper {
        Keeper { dir: dir.to_path_buf(), unsaved: Mutex::new(None) }
    }

    /// The token from `control-token`, created with fresh randomness on first start. If
    /// the disk can neither give nor keep one, the token lives in memory (so nobody can
    /// use the API until the disk takes it, or `control.token` is set) and is saved by
    /// the disk watcher as soon as the disk works, for the CLI to read.
    pub fn load_or_create(&self) -> Result<Secret, Box<dyn Error>> {
        let path = self.dir.join(TOKEN_FILE);
        match read_token(&self.dir) {
            Ok(Some(t)) => {
                let mode = fs::metadata(&path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    log::warn!("{} was readable by others; setting its mode to 0600", path.display());
                    if let Err(e) = fs::set_permissions(&path, fs::Permissions::from_mode(0o600)) {
                        log::error!("cannot set the mode of {}: {}", path.display(), storage::cause(&e));
                    }
                }
                return Ok(t);
            }
            Ok(None) => {}
            // No file to move aside (its directory is missing or unusable): make one.
            Err(_) if fs::symlink_metadata(&path).is_err() => {}
            Err(e) => match storage::move_aside(&path, "bad") {
                Ok(to) => log::error!("{e}; kept it as {} and made a new token", to.display()),
                Err(aside) => {
                    log::error!("{e}, and it cannot be moved aside ({aside}): {}", NO_TOKEN_HELP);
                    return new_token();
                }
            },
        }
        let token = new_token()?;
        match self.save(&token) {
            Ok(()) => log::info!("generated a new control token in {}", path.display()),
            Err(e) => {
                log::error!("cannot keep a new control token ({e}): {NO_TOKEN_HELP}");
                *lock(&self.unsaved) = Some(token.clone());
            }
        }
        Ok(token)
    }

    fn save(&self, token: &Secret) -> io::Result<()> {
        storage::create_private_dir(&self.dir)?;
        storage::write_atomically(&self.dir, TOKEN_FILE, format!("{}\n", token.expose()).as_bytes(), 0o600)
    }
}

impl storage::Retry for Keeper {
    fn retry_disk(&self, _now: Timestamp) {
        let mut unsaved = lock(&self.unsaved);
        let Some(token) = unsaved.clone() else { return };
        let path = self.dir.join(TOKEN_FILE);
        // Only into an empty place: a token file that appeared meanwhile is kept.
        if !path.exists() && self.save(&token).is_ok() {
            *unsaved = None;
            log::info!("saved the control token to {}: the CLI can use it", path.display());
        }
    }
}

const NO_TOKEN_HELP: &str = "the control page and API accept no token until the state disk works (the token is then saved for the CLI) or control.token / INTERCOM_CONTROL_TOKEN is set; calls are forwarded meanwhile";

fn new_token() -> Result<Secret, Box<dyn Error>> {
    let token = crate::util::random_hex(TOKEN_BYTES).map_err(|e| format!("no control token: {e}"))?;
    Ok(Secret::new(token))
}

/// Reads the token file without creating it (for the CLI). `Ok(None)`: no file yet.
pub fn read_token(dir: &Path) -> Result<Option<Secret>, Box<dyn Error>> {
    let path = dir.join(TOKEN_FILE);
    let Some(bytes) = storage::read_if_any(&path)? else { return Ok(None) };
    // Not UTF-8: the replacement characters fail the check below.
    let text = String::from_utf8_lossy(&bytes);
    let token = text.trim();
    crate::config::check_token(token).map_err(|m| format!("the token file {} {m}", path.display()))?;
    Ok(Some(Secret::new(token.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("intercom-token-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn token_is_created_once_private_and_url_safe() {
        let dir = tempdir("token");
        let keeper = Keeper::new(&dir);
        let t = keeper.load_or_create().unwrap();
        assert!(t.expose().len() >= 43 && crate::config::check_token(t.expose()).is_ok());
        let mode = fs::metadata(dir.join(TOKEN_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(Keeper::new(&dir).load_or_create().unwrap(), t);
        assert_eq!(read_token(&dir).unwrap().unwrap(), t);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_token_the_disk_will_not_keep_lives_in_memory_until_it_does() {
        let base = tempdir("nodir");
        fs::create_dir_all(base.parent().unwrap()).unwrap();
        fs::write(&base, "a file where the directory should be").unwrap();
        let keeper = Keeper::new(&base.join("state"));
        let token = keeper.load_or_create().unwrap();
        assert!(crate::config::check_token(token.expose()).is_ok());
        storage::Retry::retry_disk(&keeper, Timestamp::now());
        assert!(lock(&keeper.unsaved).is_some(), "still not saved");
        fs::remove_file(&base).unwrap();
        storage::Retry::retry_disk(&keeper, Timestamp::now());
        assert_eq!(read_token(&base.join("state")).unwrap(), Some(token), "saved once the disk works");
        fs::remove_dir_all(&base).unwrap();
    }
}
