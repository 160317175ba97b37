//! The files the commands read: the config, and the secrets file beside it only where a
//! command needs a secret from it or can read it. A file this user may not read (root's,
//! or the service's) is named, with the fix: run it with sudo.

use std::error::Error;
use std::path::{Path, PathBuf};

use crate::config::{self, Config};

/// The config. The secrets file beside it (as systemd gives it to the service) is read
/// when this user may; with `secrets` it must be.
pub fn load(path: &Path, secrets: bool) -> Result<Config, Box<dyn Error>> {
    readable(path)?;
    match readable(&env_file(path)) {
        Ok(()) => Ok(config::load_with_env_file(path)?),
        Err(sudo) if secrets => Err(sudo.into()),
        // The config may need one of its secrets to be valid.
        Err(sudo) => {
            crate::util::ownership::check_private_file(path, None)?;
            Ok(config::load(path).map_err(|e| format!("{e} ({sudo})"))?)
        }
    }
}

/// The secrets file beside the config.
pub fn env_file(config: &Path) -> PathBuf {
    config.parent().unwrap_or(Path::new(".")).join(config::ENV_FILE)
}

/// An untouched template passes every other check while every real call would fail:
/// `serve` and the commands that act on the config's values refuse it, naming each key.
pub fn filled(path: &Path, c: Config) -> Result<Config, Box<dyn Error>> {
    let unfilled: Vec<String> =
        config::unfilled_placeholders(&c).iter().map(|e| format!("{}: {e}", path.display())).collect();
    match unfilled.is_empty() {
        true => Ok(c),
        false => Err(unfilled.join("\nintercom: ").into()),
    }
}

/// Fails, saying to use sudo, when this user may not read `file`; a file that is
/// missing is for the caller to judge.
pub fn readable(file: &Path) -> Result<(), String> {
    match std::fs::File::open(file) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(format!("{} is not readable by this user: run it with sudo", file.display()))
        }
        _ => Ok(()),
    }
}
