//! Whose files we trust, as ssh does: a file that someone other than root or this user
//! can write could hold a config, secrets or guest codes that person planted. The state
//! directory and the files an admin's command reads (config, `intercom.env`, the control
//! token) must be owned by root or by the user intercom runs as, and be writable by
//! nobody else. Uses nothing of ours: only file metadata.

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Write permission for the group and for others.
const GROUP_OTHER_WRITE: u32 = 0o022;
/// Any permission for the group and for others.
const GROUP_OTHER_ANY: u32 = 0o077;
/// The sticky bit: others may create files in such a directory, but not replace ours.
const STICKY: u32 = 0o1000;
/// The account the installers create for the service (OpenWrt, `make deploy`).
const SERVICE_ACCOUNT: &str = "intercom";

/// The user this process runs as: the owner of its `/proc/self` (std has no `geteuid`,
/// and this crate forbids the unsafe code a direct call needs). `None` without `/proc`.
pub fn effective_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

fn writable_by_others(m: &Metadata) -> bool {
    m.mode() & GROUP_OTHER_WRITE != 0
}

/// The uid of the service account named in `/etc/passwd`, if there is one.
fn service_account_uid() -> Option<u32> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    // name:password:uid:...
    passwd
        .lines()
        .find_map(|l| l.strip_prefix(SERVICE_ACCOUNT)?.strip_prefix(':')?.split(':').nth(1)?.parse().ok())
}

/// Whether only root can reach `dir`: one of the directories above it is root's and
/// closed to everyone else (systemd's `/var/lib/private`, which holds a `DynamicUser`
/// service's `StateDirectory`, owned by a uid that exists only while the service runs).
fn behind_a_root_only_directory(dir: &Path) -> bool {
    dir.ancestors()
        .skip(1)
        .any(|a| fs::metadata(a).is_ok_and(|m| m.uid() == 0 && m.is_dir() && m.mode() & GROUP_OTHER_ANY == 0))
}

/// The existing state directory may hold only what root or the service wrote: owned by
/// root, by this user, or by the service account, and writable by nobody else. A missing
/// directory is fine (the server makes it, owned by itself). The error names the
/// directory and the fix.
pub fn check_state_dir(dir: &Path) -> Result<(), String> {
    // Missing, or unreadable (a broken disk, a file in the way): nothing can be read from
    // it either, and the storage layer reports it while calls are forwarded.
    let Ok(m) = fs::metadata(dir) else { return Ok(()) };
    let fix = "chown it to the user intercom runs as and `chmod 0700` it, or point state_dir elsewhere";
    if writable_by_others(&m) {
        return Err(format!(
            "the state directory {} is writable by its group or by others (mode {:04o}), so anyone could plant guest codes there: {fix}",
            dir.display(),
            m.mode() & 0o7777
        ));
    }
    let me = effective_uid();
    let owner_ok = |uid: u32| uid == 0 || Some(uid) == me || Some(uid) == service_account_uid();
    let real = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !owner_ok(m.uid()) && !behind_a_root_only_directory(&real) {
        let me = me.map_or("?".to_string(), |u| u.to_string());
        return Err(format!(
            "the state directory {} is owned by uid {}, not by root or the user intercom runs as (uid {me}), so its files may be planted: {fix}",
            dir.display(),
            m.uid()
        ));
    }
    // Whoever can write the directory above can swap this one for a directory of theirs.
    if let Some(parent) = real.parent() {
        let Ok(p) = fs::metadata(parent) else { return Ok(()) };
        if !owner_ok(p.uid()) || (writable_by_others(&p) && p.mode() & STICKY == 0) {
            return Err(format!(
                "the state directory {} is in {}, which another user can write, so they could replace it: move state_dir elsewhere",
                dir.display(),
                parent.display()
            ));
        }
    }
    Ok(())
}

/// A file an admin's command reads secrets or settings from must be owned by root or
/// the invoking user (or `also`, the service that wrote it) and writable by nobody else;
/// so must a symbolic link on the way and the directory holding the file (unless sticky,
/// like `/tmp`). The error names the file.
pub fn check_private_file(path: &Path, also: Option<u32>) -> Result<(), String> {
    let me = effective_uid();
    let trusted = |uid: u32| uid == 0 || Some(uid) == me || Some(uid) == also;
    let refuse = |what: &Path, why: String| {
        Err(format!(
            "refusing to read {}: {} {why} (like ssh, intercom reads secrets only from files that root or you own and nobody else can write)",
            path.display(),
            if what == path { "it is".to_string() } else { format!("{} is", what.display()) }
        ))
    };
    let unreadable = |at: &Path, e: std::io::Error| format!("cannot read {} ({e})", at.display());
    let link = fs::symlink_metadata(path).map_err(|e| unreadable(path, e))?;
    if link.file_type().is_symlink() && !trusted(link.uid()) {
        return refuse(path, format!("a symbolic link owned by uid {}", link.uid()));
    }
    let real: PathBuf = fs::canonicalize(path).map_err(|e| unreadable(path, e))?;
    let m = fs::metadata(&real).map_err(|e| unreadable(path, e))?;
    if !trusted(m.uid()) {
        return refuse(&real, format!("owned by uid {}", m.uid()));
    }
    if writable_by_others(&m) {
        return refuse(&real, format!("writable by its group or others (mode {:04o})", m.mode() & 0o7777));
    }
    if let Some(parent) = real.parent() {
        let d = fs::metadata(parent).map_err(|e| unreadable(parent, e))?;
        if !trusted(d.uid()) || (writable_by_others(&d) && d.mode() & STICKY == 0) {
            return refuse(parent, "a directory that someone else can write".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("intercom-own-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn modes_that_others_can_write_are_refused() {
        let d = tempdir("modes");
        let state = d.join("state");
        assert!(check_state_dir(&state).is_ok(), "missing: made by the server");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_state_dir(&state).is_ok());
        for mode in [0o777, 0o1777, 0o770] {
            fs::set_permissions(&state, fs::Permissions::from_mode(mode)).unwrap();
            let e = check_state_dir(&state).unwrap_err();
            assert!(e.contains(&state.display().to_string()) && e.contains("chmod 0700"), "{e}");
        }
        // A private directory in one that others can write (without the sticky bit).
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_state_dir(&state).unwrap_err().contains("could replace it"));
        fs::set_permissions(&d, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(check_state_dir(&state).is_ok(), "sticky, like /tmp: nobody else can rename it");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        let env = d.join("intercom.env");
        fs::write(&env, "X=1").unwrap();
        fs::set_permissions(&env, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_private_file(&env, None).is_ok());
        fs::set_permissions(&env, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(check_private_file(&env, None).unwrap_err().contains("intercom.env"));
        fs::set_permissions(&env, fs::Permissions::from_mode(0o600)).unwrap();
        // Through a link into a directory anyone can write: the directory is named.
        fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
        fs::rename(&env, state.join("intercom.env")).unwrap();
        symlink(state.join("intercom.env"), &env).unwrap();
        let e = check_private_file(&env, None).unwrap_err();
        assert!(e.contains(&format!("{} is a directory", state.display())), "{e}");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_root_only_parent_covers_a_dynamic_users_directory() {
        let d = tempdir("private");
        let inner = d.join("private/intercom");
        fs::create_dir_all(&inner).unwrap();
        fs::set_permissions(d.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
        // Only meaningful where the test runs as root (the parent is then root's).
        if effective_uid() == Some(0) {
            assert!(behind_a_root_only_directory(&inner));
        }
        fs::set_permissions(d.join("private"), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!behind_a_root_only_directory(&inner));
        let _ = fs::remove_dir_all(&d);
    }
}
