//! `state_dir/codes.json`: the guest codes and the wrong-code lockout on disk, a versioned
//! format of its own, kept apart from the in-memory types (`rules/codes.rs`) so either
//! can change without the other. `store/codes.rs` decides when it is read and written.
//!
//! Version 2 added the boot each code was written in; version 1 files are still read
//! (their codes count as from an earlier boot, so they wait for a synchronized clock).

use std::collections::HashMap;
use std::error::Error;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::rules::codes::{self, Code, Lockout};
use crate::store::versioned;
use crate::util::time::{parse_rfc3339, rfc3339_unix, unix_secs};

pub const CODES_FILE: &str = "codes.json";
const VERSION: u32 = 2;

/// `codes.json`, versions 1 and 2. Kept apart from the in-memory type so the format can evolve.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodesFile {
    version: u32,
    codes: Vec<CodeV2>,
    /// RFC 3339 UTC times of recent wrong codes.
    failures: Vec<String>,
    locked_until: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeV2 {
    id: String,
    code: String,
    label: String,
    valid_until: String,
    uses_left: u32,
    /// The kernel's boot id when the code was last confirmed by a trusted clock.
    #[serde(default)]
    boot_id: Option<String>,
}

/// What the file holds: the codes, the lockout, and the boot each code was stored in.
#[derive(Debug, Default)]
pub struct Loaded {
    pub codes: Vec<Code>,
    pub lockout: Lockout,
    pub boots: HashMap<String, Option<String>>,
}

/// The file's bytes for `codes` and `lockout`; `boot_of` gives each code's boot.
pub fn encode(
    codes: &[Code],
    lockout: &Lockout,
    boot_of: impl Fn(&str) -> Option<String>,
) -> io::Result<Vec<u8>> {
    let file = CodesFile {
        version: VERSION,
        codes: codes
            .iter()
            .map(|c| CodeV2 {
                id: c.id.clone(),
                code: c.digits.clone(),
                label: c.label.clone(),
                valid_until: rfc3339_unix(c.valid_until),
                uses_left: c.uses_left,
                boot_id: boot_of(&c.id),
            })
            .collect(),
        failures: lockout.failures.iter().map(|&t| rfc3339_unix(t)).collect(),
        locked_until: lockout.locked_until.map(rfc3339_unix),
    };
    versioned::encode(&file)
}

/// Reads `dir/codes.json` (missing: no codes); any doubt is an error (the caller fails
/// closed to "no codes").
pub fn load(dir: &Path) -> Result<Loaded, Box<dyn Error>> {
    let Some(file) = versioned::read::<CodesFile>(dir, CODES_FILE, "codes file", 1..=VERSION)? else {
        return Ok(Loaded::default());
    };
    if file.codes.len() > codes::MAX_ACTIVE || file.failures.len() > codes::MAX_FAILURES {
        return Err("more codes or failures than are ever stored".into());
    }
    let time = |s: &str| parse_rfc3339(s).map(unix_secs);
    let mut out = Vec::new();
    let mut boots = HashMap::new();
    for c in file.codes {
        let well_formed = c.code.len() == codes::CODE_DIGITS && c.code.bytes().all(|b| b.is_ascii_digit());
        if !well_formed
            || c.uses_left > codes::MAX_USES
            || codes::check_label(&c.label).is_err()
            || c.id.is_empty()
        {
            return Err(format!("malformed code entry {:?}", crate::util::loggable(&c.id)).into());
        }
        boots.insert(c.id.clone(), c.boot_id);
        out.push(Code {
            valid_until: time(&c.valid_until)?,
            id: c.id,
            digits: c.code,
            label: c.label,
            uses_left: c.uses_left,
        });
    }
    let failures = file.failures.iter().map(|s| time(s)).collect::<Result<_, _>>()?;
    let locked_until = file.locked_until.as_deref().map(time).transpose()?;
    Ok(Loaded { codes: out, lockout: Lockout { failures, locked_until }, boots })
}
