//! Who is rung, and in what order: `ring` in the config.
//!
//! ```json
//! "ring": {
//!   "order": "sequential",
//!   "ring_times": {"+15552223333": "20s", "+15554445555": "20s"},
//!   "quiet_hours": {"from": "22:00", "to": "07:00", "only": ["+15552223333"]}
//! }
//! ```
//!
//! `order` is `simultaneous` (the default: every `forward_to` number at once, as before)
//! or `sequential` (one after the other, in `forward_to`'s order, each for its ring time,
//! `dial_timeout` when not given). During quiet hours (local time) only the `only`
//! numbers are rung. Every number named here must be one of `forward_to`.

use std::time::Duration;

use serde::de::Deserializer;
use serde::Deserialize;

use crate::config::values::{dial_seconds, parse_clock, parse_duration, phones, Refuse};
use crate::model::phone::PhoneNumber;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    Simultaneous,
    Sequential,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RingConfig {
    pub order: Order,
    /// Per number, how long it rings before the next is tried (sequential order).
    #[serde(deserialize_with = "ring_times")]
    pub ring_times: Vec<(PhoneNumber, Duration)>,
    #[serde(deserialize_with = "quiet_hours")]
    pub quiet_hours: Option<QuietHours>,
}

/// Local times, minutes after midnight; `to` not after `from` runs past midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietHours {
    pub from: u16,
    pub to: u16,
    /// Who is still rung then, in `forward_to`'s order.
    pub only: Vec<PhoneNumber>,
}

fn ring_times<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(PhoneNumber, Duration)>, D::Error> {
    let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
    map.into_iter()
        .map(|(number, time)| {
            let n = PhoneNumber::parse(&number).map_err(|m| D::Error::refuse(format!("{m}: {number:?}")))?;
            let t = parse_duration(&time)
                .and_then(dial_seconds)
                .map_err(|m| D::Error::refuse(format!("{number}: {m}")))?;
            Ok((n, t))
        })
        .collect()
}

fn quiet_hours<'de, D: Deserializer<'de>>(d: D) -> Result<Option<QuietHours>, D::Error> {
    /// Every key may be missing here: the checks below then say which one is needed.
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Raw {
        from: String,
        to: String,
        #[serde(deserialize_with = "some_phones")]
        only: Option<Vec<PhoneNumber>>,
    }
    fn some_phones<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<PhoneNumber>>, D::Error> {
        phones(d).map(Some)
    }
    let raw = Raw::deserialize(d)?;
    let from = parse_clock(&raw.from, false).map_err(|m| D::Error::refuse(format!("from: {m}")))?;
    let to = parse_clock(&raw.to, true).map_err(|m| D::Error::refuse(format!("to: {m}")))?;
    if from == to {
        return Err(D::Error::refuse("from and to are the same time"));
    }
    let only = raw
        .only
        .ok_or_else(|| D::Error::refuse("only: required, the numbers still rung then ([] for none)"))?;
    Ok(Some(QuietHours { from, to, only }))
}

impl RingConfig {
    /// The rule that needs `forward_to`: every number named here is one of it.
    /// `Err((key, why))`.
    pub fn check(&self, forward_to: &[PhoneNumber]) -> Result<(), (&'static str, String)> {
        if let Some((n, _)) = self.ring_times.iter().find(|(n, _)| !forward_to.contains(n)) {
            return Err(("ring.ring_times", format!("{n} is not one of forward_to")));
        }
        if let Some(n) = self.quiet_hours.iter().flat_map(|q| &q.only).find(|n| !forward_to.contains(n)) {
            return Err(("ring.quiet_hours.only", format!("{n} is not one of forward_to")));
        }
        Ok(())
    }

    /// How long `n` rings in sequential order.
    pub fn ring_time(&self, n: &PhoneNumber, default: Duration) -> Duration {
        self.ring_times.iter().find(|(m, _)| m == n).map_or(default, |(_, t)| *t)
    }
}
