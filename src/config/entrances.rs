//! Several entrances: `intercoms: [{"name": "street gate", "number": "+1…",
//! "unlock_digits": "ww9"}, …]`, for a building with a street gate and a house door, each
//! with its own caller number and often its own tones. The single `intercom_number` (with
//! the top-level `unlock_digits`) keeps working unchanged and is one unnamed entrance.

use serde::de::Deserializer;
use serde::Deserialize;

use crate::config::values::{unlock_digits, Refuse};
use crate::model::phone::PhoneNumber;

/// A building has a few doors; a list this long is a mistake, and every call is matched
/// against each entry.
pub const MAX_INTERCOMS: usize = 10;
/// A name is shown on a phone screen and in a notification ("street gate").
pub const MAX_NAME_CHARS: usize = 40;

/// One intercom the building's doors call from. `name` is `None` only for the single
/// `intercom_number` form, whose records stay as they were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrance {
    pub name: Option<String>,
    pub number: PhoneNumber,
    pub unlock_digits: String,
}

/// Every key may be missing here: the checks below then say what the entry needs.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Entry {
    name: String,
    number: String,
    /// Empty (absent) until [`crate::config::Config`]'s check gives it the top-level digits.
    #[serde(deserialize_with = "unlock_digits")]
    unlock_digits: String,
}

/// The `intercoms` list as read: each entry checked, names and numbers unique. Entries
/// without `unlock_digits` take the top-level one, filled in by the config's check.
pub fn intercoms<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Entrance>, D::Error> {
    let entries = Vec::<Entry>::deserialize(d)?;
    if entries.is_empty() || entries.len() > MAX_INTERCOMS {
        return Err(D::Error::refuse(format!("expected 1 to {MAX_INTERCOMS} intercoms")));
    }
    let mut out: Vec<Entrance> = Vec::with_capacity(entries.len());
    for (item, e) in (1..).zip(entries) {
        let name = e.name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            let why = format!("item {item}: name must be 1 to {MAX_NAME_CHARS} printable characters");
            return Err(D::Error::refuse(why));
        }
        let number = PhoneNumber::parse(&e.number)
            .map_err(|m| D::Error::refuse(format!("item {item}: number: {m}: {:?}", e.number)))?;
        if out.iter().any(|o| o.name.as_deref() == Some(name.as_str())) {
            return Err(D::Error::refuse(format!("item {item}: the name {name:?} is used twice")));
        }
        if out.iter().any(|o| o.number == number) {
            return Err(D::Error::refuse(format!(
                "item {item}: the number {number} is used twice (one number cannot say which door)"
            )));
        }
        out.push(Entrance { name: Some(name), number, unlock_digits: e.unlock_digits });
    }
    Ok(out)
}
