//! Paired devices: phones that opened a one-time pairing link and got a credential of
//! their own, each with a name, so one can be revoked without touching the others and
//! the history says who acted. The credential is two secrets: one in an `HttpOnly`
//! cookie, which scripts cannot read but every port of the host receives, and one the
//! page keeps in its origin's storage, which no other port can read (SECURITY.md).
//!
//! On disk: `state_dir/devices.json`, versioned, written atomically like the state file;
//! a corrupt file is moved aside (every phone must then pair again, which fails safe).
//! Only a SHA-256 of each secret is kept: a copy of the file lets nobody in. Version 1
//! files (devices paired before the page key) are moved aside like corrupt ones: those
//! phones hold no page key, so they must pair again.
//! Pending pairing links live in memory only: a restart voids them, which costs a new
//! `intercom pair` and never opens anything.
//!
//! Locks: the device list is never locked across a disk write. Writers take `writer` (the
//! file: one write at a time, in order), copy the list, write, then change memory.

use std::collections::HashMap;
use std::error::Error;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::store::storage::{self, Health};
use crate::store::versioned::{self, draw, Kept};
use crate::util::time::floor;
use crate::util::{constant_time_eq, hex, lock, lock_within, random_hex};

const FILE: &str = "devices.json";
const VERSION: u32 = 2;
static SPEC: versioned::Spec = versioned::Spec {
    name: FILE,
    part: "devices",
    reads: VERSION..=VERSION,
    none: "every phone must pair again",
    removable: false,
};
/// How long a pairing link works: long enough to read the QR code off a terminal with a
/// phone, short enough that a link left in a chat or a scrollback is soon worthless.
pub const PAIRING_VALID: Duration = Duration::from_secs(10 * 60);
/// Unused pairing links at once: a household pairs one phone at a time; the cap keeps a
/// loop of `pair` requests from growing memory.
pub const MAX_PENDING: usize = 16;
/// Paired devices: a household has a handful of phones; the cap bounds the file and the
/// list on the page.
pub const MAX_DEVICES: usize = 64;
/// A device's name, in characters: "Anna's phone", "Kitchen tablet".
pub const MAX_NAME_CHARS: usize = 40;
/// 256 bits for each device secret and 128 for a pairing code: far beyond guessing.
const SECRET_BYTES: usize = 32;
const CODE_BYTES: usize = 16;
/// "Last used" is kept in memory on every request but written to disk at most this
/// often per device: the page polls every few seconds, and an SD card must not be
/// written at that rate for a date shown to the minute.
const LAST_USE_SAVE_EVERY: Duration = Duration::from_secs(15 * 60);
/// How long a request waits for the device list: it is held for microseconds, never
/// across a write; a bounded wait keeps a bug from hanging every page.
const LIST_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the secret in the browser's cookie.
    secret_sha256: String,
    /// Hex SHA-256 of the key the page keeps in its origin's storage.
    page_sha256: String,
    /// Whole seconds; Unix seconds in the file.
    #[serde(with = "jiff::fmt::serde::timestamp::second::required")]
    pub paired: Timestamp,
    #[serde(default, with = "jiff::fmt::serde::timestamp::second::optional")]
    pub last_used: Option<Timestamp>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceFile {
    version: u32,
    devices: Vec<Device>,
}

struct Pending {
    name: String,
    until: Instant,
}

/// Why a pairing link was not accepted; the page says it in words.
#[derive(Debug, PartialEq, Eq)]
pub enum PairError {
    /// Unknown, spent or expired: indistinguishable on purpose.
    BadLink,
    Full,
    Disk(String),
}

impl std::fmt::Display for PairError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            PairError::BadLink => write!(f, "this pairing link is used up or too old"),
            PairError::Full => write!(f, "{MAX_DEVICES} devices are paired already; remove one first"),
            PairError::Disk(e) => write!(f, "the new device could not be saved: {e}"),
        }
    }
}

pub struct Devices {
    list: Mutex<Vec<Device>>,
    /// Pairing codes by their SHA-256, so memory holds no usable code either.
    pending: Mutex<HashMap<String, Pending>>,
    writer: Mutex<Kept>,
    /// When each device's last use was last written (by id).
    saved_use: Mutex<HashMap<String, Timestamp>>,
}

impl Devices {
    /// Reads `devices.json`; a missing file is no devices; an unreadable one is moved
    /// aside (logged), so nobody is let in by a file we cannot read. If it cannot even be
    /// moved aside, nobody is paired and pairing is refused until it can (the file is
    /// never overwritten).
    pub fn open(dir: &Path, health: Arc<Health>) -> Devices {
        let (kept, list) = Kept::open(dir, &SPEC, health, load);
        let saved_use = list.iter().filter_map(|d| Some((d.id.clone(), d.last_used?))).collect();
        Devices {
            list: Mutex::new(list),
            pending: Mutex::new(HashMap::new()),
            writer: Mutex::new(kept),
            saved_use: Mutex::new(saved_use),
        }
    }

    pub fn list(&self) -> Vec<Device> {
        lock(&self.list).clone()
    }

    /// A new one-time pairing code for a device to be called `name` (checked).
    pub fn start_pairing(&self, name: &str, now: Instant) -> Result<String, String> {
        let name = check_name(name)?;
        let code = random_hex(CODE_BYTES).map_err(|e| e.to_string())?;
        let mut pending = lock(&self.pending);
        pending.retain(|_, p| p.until > now);
        if pending.len() >= MAX_PENDING {
            return Err(format!(
                "{MAX_PENDING} pairing links are waiting already; use one or wait a few minutes"
            ));
        }
        pending.insert(hash(&code), Pending { name, until: now + PAIRING_VALID });
        Ok(code)
    }

    /// Spends a pairing code (at most once, even if saving fails) and pairs a device:
    /// the device, the secret for its cookie and the key for its page.
    pub fn finish_pairing(
        &self,
        code: &str,
        now: Instant,
        wall: Timestamp,
    ) -> Result<(Device, String, String), PairError> {
        let pending =
            lock(&self.pending).remove(&hash(code)).filter(|p| p.until > now).ok_or(PairError::BadLink)?;
        let mut kept = lock(&self.writer);
        let mut next = self.list();
        if next.len() >= MAX_DEVICES {
            return Err(PairError::Full);
        }
        let disk = |e: io::Error| PairError::Disk(e.to_string());
        let secret = random_hex(SECRET_BYTES).map_err(disk)?;
        let page = random_hex(SECRET_BYTES).map_err(disk)?;
        // A short id to name a device on the command line (`intercom devices rm 3f9a12c4`).
        let id = draw(4, Some, |id| next.iter().any(|d| d.id == id)).map_err(disk)?;
        let device = Device {
            id,
            name: pending.name,
            secret_sha256: hash(&secret),
            page_sha256: hash(&page),
            paired: floor(wall),
            last_used: Some(floor(wall)),
        };
        next.push(device.clone());
        kept.save(&encode(&next)).map_err(disk)?;
        lock(&self.saved_use).insert(device.id.clone(), floor(wall));
        lock(&self.list).push(device.clone());
        Ok((device, secret, page))
    }

    /// The device whose cookie holds `secret` and whose page sent `page`, with its last
    /// use noted. `None`: not paired, revoked, or one of the two is wrong or missing.
    pub fn authenticate(&self, secret: &str, page: &str, wall: Timestamp) -> Option<Device> {
        if [secret, page].iter().any(|s| s.is_empty() || s.len() > 2 * SECRET_BYTES) {
            return None;
        }
        let (wanted, page) = (hash(secret), hash(page));
        let device = {
            let mut list = lock_within(&self.list, LIST_WAIT)?;
            let same = |a: &str, b: &str| constant_time_eq(a.as_bytes(), b.as_bytes());
            let d =
                list.iter_mut().find(|d| same(&d.secret_sha256, &wanted) & same(&d.page_sha256, &page))?;
            d.last_used = Some(floor(wall));
            d.clone()
        };
        self.maybe_save_use(&device, floor(wall));
        Some(device)
    }

    /// Writes the last uses when this device's on disk is stale, unless another write is
    /// under way (then the next request does it): a request never queues behind the disk.
    fn maybe_save_use(&self, device: &Device, now: Timestamp) {
        let stale = lock(&self.saved_use)
            .get(&device.id)
            .map_or(true, |t| now.duration_since(*t).unsigned_abs() >= LAST_USE_SAVE_EVERY);
        if !stale {
            return;
        }
        let Ok(mut kept) = self.writer.try_lock() else { return };
        let snapshot = self.list();
        if kept.save(&encode(&snapshot)).is_ok() {
            let mut saved = lock(&self.saved_use);
            for d in &snapshot {
                if let Some(t) = d.last_used {
                    saved.insert(d.id.clone(), t);
                }
            }
        }
    }

    /// Revokes a device: gone from memory at once (its next request is refused), then
    /// from the disk by a path that needs no space (see `versioned.rs`), so a restart on a
    /// failing disk never lets a revoked phone back in. Always works; `false`: no such
    /// device.
    pub fn remove(&self, id: &str) -> bool {
        let mut kept = lock(&self.writer);
        let next = {
            let mut list = lock(&self.list);
            let before = list.len();
            list.retain(|d| d.id != id);
            if list.len() == before {
                return false;
            }
            list.clone()
        };
        lock(&self.saved_use).remove(id);
        let _ = kept.revoke(&encode(&next)); // what is wrong is on the page (Health)
        true
    }
}

impl storage::Retry for Devices {
    fn retry_disk(&self, _now: Timestamp) {
        let Ok(mut kept) = self.writer.try_lock() else { return };
        if kept.retry(|| encode(&self.list())) {
            log::info!("the removal of a device is saved now");
        }
    }
}

fn encode(list: &[Device]) -> Vec<u8> {
    versioned::encode(&DeviceFile { version: VERSION, devices: list.to_vec() })
}

/// Reads `devices.json` (missing: no devices) and checks what serde cannot: each
/// device's hashes and name. Any doubt is an error (the caller pairs nobody).
fn load(dir: &Path) -> Result<Vec<Device>, Box<dyn Error>> {
    let devices = versioned::read::<DeviceFile>(dir, &SPEC)?.map_or(Vec::new(), |f| f.devices);
    for d in &devices {
        let hex_ok = [&d.secret_sha256, &d.page_sha256]
            .iter()
            .all(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !hex_ok || check_name(&d.name).is_err() || d.id.is_empty() {
            return Err(format!("device {:?} is malformed", crate::util::loggable(&d.id)).into());
        }
    }
    Ok(devices)
}

/// A device name as typed: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no control characters.
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("give the device a name, such as \"Anna's phone\"".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("the name is longer than {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("the name has control characters".into());
    }
    Ok(name.to_string())
}

fn hash(s: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("intercom-devices-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_code_pairs_once_and_a_revoked_secret_stops_working() {
        let d = dir("once");
        let devices = Devices::open(&d, Health::new());
        let now = Instant::now();
        let code = devices.start_pairing("  Anna's phone ", now).unwrap();
        let (dev, secret, page) = devices.finish_pairing(&code, now, Timestamp::now()).unwrap();
        assert_eq!(dev.name, "Anna's phone");
        assert_eq!(devices.finish_pairing(&code, now, Timestamp::now()).unwrap_err(), PairError::BadLink);
        assert_eq!(devices.authenticate(&secret, &page, Timestamp::now()).unwrap().id, dev.id);
        // Either secret alone, or the two swapped, is nobody.
        for (s, p) in [("nope", page.as_str()), (&secret, ""), (&secret, "nope"), (&page, &secret)] {
            assert!(devices.authenticate(s, p, Timestamp::now()).is_none(), "{s} {p}");
        }
        // Survives a restart; the file holds no secret.
        let text = std::fs::read_to_string(d.join(FILE)).unwrap();
        assert!(!text.contains(&secret) && text.contains(&hash(&secret)));
        assert!(!text.contains(&page) && text.contains(&hash(&page)));
        let again = Devices::open(&d, Health::new());
        assert_eq!(again.authenticate(&secret, &page, Timestamp::now()).unwrap().name, "Anna's phone");
        assert!(again.remove(&dev.id));
        assert!(again.authenticate(&secret, &page, Timestamp::now()).is_none());
        assert!(!again.remove(&dev.id));
        assert!(Devices::open(&d, Health::new()).authenticate(&secret, &page, Timestamp::now()).is_none());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_old_code_is_refused_and_pending_codes_are_capped() {
        let d = dir("old");
        let devices = Devices::open(&d, Health::new());
        let now = Instant::now();
        let code = devices.start_pairing("x", now).unwrap();
        let later = now + PAIRING_VALID + Duration::from_secs(1);
        assert_eq!(devices.finish_pairing(&code, later, Timestamp::now()).unwrap_err(), PairError::BadLink);
        for _ in 0..MAX_PENDING {
            devices.start_pairing("y", now).unwrap();
        }
        assert!(devices.start_pairing("z", now).is_err());
        // Expired ones make room.
        assert!(devices.start_pairing("z", later).is_ok());
        assert!(
            check_name("").is_err() && check_name(&"x".repeat(41)).is_err() && check_name("a\nb").is_err()
        );
        assert!(!d.exists(), "nothing is written before a device pairs");
    }

    #[test]
    fn last_use_is_written_at_most_every_quarter_hour_and_long_secrets_are_not_hashed() {
        let d = dir("last-use");
        let devices = Devices::open(&d, Health::new());
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let code = devices.start_pairing("x", Instant::now()).unwrap();
        let (_, secret, page) = devices.finish_pairing(&code, Instant::now(), t0).unwrap();
        let on_disk = || Devices::open(&d, Health::new()).list()[0].last_used;
        devices.authenticate(&secret, &page, t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(devices.list()[0].last_used, Some(t0 + Duration::from_secs(60)), "memory has every use");
        assert_eq!(on_disk(), Some(t0), "the disk is not written for it");
        devices.authenticate(&secret, &page, t0 + LAST_USE_SAVE_EVERY).unwrap();
        assert_eq!(on_disk(), Some(t0 + LAST_USE_SAVE_EVERY));
        let file = std::fs::read_to_string(d.join(FILE)).unwrap();
        assert!(file.contains(&format!("\"paired\": {}", t0.as_second())), "Unix seconds on disk: {file}");
        assert!(devices.authenticate(&"x".repeat(65), &page, t0).is_none());
        assert!(devices.authenticate(&secret, &"x".repeat(65), t0).is_none());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_corrupt_file_or_one_from_before_page_keys_is_moved_aside_and_nobody_is_paired() {
        // A device paired before page keys: a well-formed version 1 file.
        let old = format!(
            r#"{{"version": 1, "devices": [{{"id": "3f9a12c4", "name": "Anna", "secret_sha256": "{}", "paired": 1800000000}}]}}"#,
            hash("old-secret")
        );
        for (n, text) in [r#"{"version": 2, "devices": [{"id": 1}]}"#, &old].iter().enumerate() {
            let d = dir(&format!("corrupt-{n}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(FILE), text).unwrap();
            let devices = Devices::open(&d, Health::new());
            assert!(devices.list().is_empty());
            assert!(devices.authenticate("old-secret", "", Timestamp::now()).is_none());
            let aside: Vec<_> = std::fs::read_dir(&d)
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("devices.json.bad-"))
                .collect();
            assert_eq!(aside.len(), 1);
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
