//! `state_dir/codes.json`: the guest codes and the wrong-code lockout on disk, a versioned
//! format of its own, kept apart from the in-memory types (`rules/codes.rs`) so either
//! can change without the other. `store/codes.rs` decides when it is read and written.
//!
//! Version 2 added the boot each code was written in; version 1 files are still read
//! (their codes count as from an earlier boot, so they wait for a synchronized clock).
//! Version 3 added the recent calls that used a code or entered a wrong one, so a
//! repeated request of a call (Twilio's retry, a replay) is never counted twice.

use std::collections::HashMap;
use std::error::Error;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::rules::codes::{self, Code, Lockout};
use crate::store::versioned::{self, Spec};
use crate::util::time::floor;

pub const CODES_FILE: &str = "codes.json";
const VERSION: u32 = 3;
pub static SPEC: Spec = Spec {
    name: CODES_FILE,
    part: "guest codes",
    reads: 1..=VERSION,
    none: "no code works",
    removable: false,
};
/// Calls remembered in the file: far more than the lockout lets through in a day
/// (5 wrong codes per 15 minutes) plus every use of every code, and a few KiB at most.
pub const MAX_CALLS: usize = 200;
/// How long a call is remembered: a replay of a captured request a day later is as
/// harmless as a new wrong code (which the lockout bounds), and Twilio retries within
/// minutes.
pub const CALL_MEMORY: Duration = Duration::from_secs(24 * 60 * 60);
/// A `CallSid` is 34 characters; anything much longer is not Twilio's and is not kept.
pub const MAX_CALL_SID_CHARS: usize = 64;

/// `codes.json`, versions 1 to 3. Kept apart from the in-memory type so the format can evolve.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodesFile {
    version: u32,
    codes: Vec<CodeV2>,
    /// Recent wrong codes (RFC 3339 UTC, as every time in the file).
    failures: Vec<Timestamp>,
    locked_until: Option<Timestamp>,
    /// Recent calls that used a code or entered a wrong one (version 3).
    #[serde(default)]
    calls: Vec<SeenCall>,
}

/// A call the store has counted, so a repeat of it is not counted again: in memory as in
/// the file, where it is nothing but this record of the store's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeenCall {
    pub call_sid: String,
    /// Whole seconds.
    pub time: Timestamp,
    /// The label of the code it used; `None`: it entered a wrong code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeV2 {
    id: String,
    code: String,
    label: String,
    valid_until: Timestamp,
    uses_left: u32,
    /// The kernel's boot id when the code was last confirmed by a trusted clock.
    boot_id: Option<String>,
}

/// What the file holds: the codes, the lockout, and the boot each code was stored in.
#[derive(Debug, Default)]
pub struct Loaded {
    pub codes: Vec<Code>,
    pub lockout: Lockout,
    pub boots: HashMap<String, Option<String>>,
    pub calls: Vec<SeenCall>,
}

/// Keeps the newest [`MAX_CALLS`] calls of the last [`CALL_MEMORY`]. A time ahead
/// of `now` (the clock went back) is kept: forgetting early would let a repeat count.
pub fn prune_calls(calls: &mut Vec<SeenCall>, now: Timestamp) {
    calls.retain(|c| c.time + CALL_MEMORY > now);
    let excess = calls.len().saturating_sub(MAX_CALLS);
    calls.drain(..excess);
}

/// The file's bytes for `codes` and `lockout`; `boot_of` gives each code's boot.
pub fn encode(
    codes: &[Code],
    lockout: &Lockout,
    calls: &[SeenCall],
    boot_of: impl Fn(&str) -> Option<String>,
) -> Vec<u8> {
    let file = CodesFile {
        version: VERSION,
        codes: codes
            .iter()
            .map(|c| CodeV2 {
                id: c.id.clone(),
                code: c.digits.clone(),
                label: c.label.clone(),
                valid_until: c.valid_until,
                uses_left: c.uses_left,
                boot_id: boot_of(&c.id),
            })
            .collect(),
        failures: lockout.failures.clone(),
        locked_until: lockout.locked_until,
        calls: calls.to_vec(),
    };
    versioned::encode(&file)
}

/// Reads `dir/codes.json` (missing: no codes); any doubt is an error (the caller fails
/// closed to "no codes").
pub fn load(dir: &Path) -> Result<Loaded, Box<dyn Error>> {
    let Some(file) = versioned::read::<CodesFile>(dir, &SPEC)? else { return Ok(Loaded::default()) };
    if file.codes.len() > codes::MAX_ACTIVE
        || file.failures.len() > codes::MAX_FAILURES
        || file.calls.len() > MAX_CALLS
    {
        return Err("more codes or failures than are ever stored".into());
    }
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
            valid_until: floor(c.valid_until),
            id: c.id,
            digits: c.code,
            label: c.label,
            uses_left: c.uses_left,
        });
    }
    let failures = file.failures.into_iter().map(floor).collect();
    let locked_until = file.locked_until.map(floor);
    let mut calls = file.calls;
    for c in &mut calls {
        if c.call_sid.is_empty() || c.call_sid.chars().count() > MAX_CALL_SID_CHARS {
            return Err("malformed call entry".into());
        }
        c.time = floor(c.time);
    }
    Ok(Loaded { codes: out, lockout: Lockout { failures, locked_until }, boots, calls })
}

#[cfg(test)]
mod calls_tests {
    use super::*;

    #[test]
    fn remembered_calls_are_bounded_in_count_and_age() {
        let at = |secs: i64| Timestamp::from_second(1_000_000 + secs).unwrap();
        let call = |n: i64| SeenCall { call_sid: format!("CA{n}"), time: at(n), used: None };
        let mut calls: Vec<_> = (0..MAX_CALLS as i64 + 50).map(call).collect();
        prune_calls(&mut calls, at(MAX_CALLS as i64));
        assert_eq!(calls.len(), MAX_CALLS);
        assert_eq!(calls[0].call_sid, "CA50", "the oldest go first");
        prune_calls(&mut calls, at(60) + CALL_MEMORY);
        assert_eq!(calls[0].call_sid, "CA61", "a day later they are forgotten");
    }
}
