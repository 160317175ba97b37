//! The config's value types: each checks itself as serde reads it, so its error carries
//! the dotted key it came from. The structs in `mod.rs` name them in `deserialize_with`.

use std::fmt;
use std::time::Duration;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::config::url::{check_api_base, check_public_origin, check_public_url, check_target_url};
use crate::model::phone::PhoneNumber;

/// Long digit strings would be a typo, not a door code; Twilio plays them slowly.
const MAX_UNLOCK_DIGITS: usize = 32;

/// A value that must never reach a log line or `check-config` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    pub(super) value: String,
    /// The variable that held it, when the environment (or the secrets file) gave it
    /// rather than the config file: `check-config` says where each secret came from.
    pub(super) env: Option<&'static str>,
}

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret { value, env: None }
    }
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Marks a message as ours: the error a user sees is built from the key's place and
/// example, never from serde's wording, except for these messages, written here for them.
pub(crate) const OURS: char = '\u{1}';

/// An error for a value we refuse, with our own message (see [`OURS`]).
pub trait Refuse: serde::de::Error {
    fn refuse(why: impl fmt::Display) -> Self {
        Self::custom(format_args!("{OURS}{why}"))
    }
}

impl<E: serde::de::Error> Refuse for E {}

pub fn phone<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PhoneNumber>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else { return Ok(None) };
    PhoneNumber::parse(&s).map(Some).map_err(|m| D::Error::refuse(format!("{m}: {s:?}")))
}

/// A list of numbers, or a single number as a string.
pub fn phones<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PhoneNumber>, D::Error> {
    struct OneOrMany;
    impl<'de> Visitor<'de> for OneOrMany {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a phone number or a list of them, as strings")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<String>, E> {
            Ok(vec![s.to_string()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            std::iter::from_fn(|| seq.next_element().transpose()).collect()
        }
    }
    let list = d.deserialize_any(OneOrMany)?;
    list.iter().map(|s| PhoneNumber::parse(s).map_err(|m| D::Error::refuse(format!("{m}: {s:?}")))).collect()
}

pub fn unlock_digits<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let tone = |c: char| c.is_ascii_digit() || matches!(c, '*' | '#' | 'w' | 'W');
    if s.is_empty() || s.len() > MAX_UNLOCK_DIGITS || !s.chars().all(tone) {
        let why = format!("expected 1 to {MAX_UNLOCK_DIGITS} of 0-9, *, # and w (half-second pause)");
        return Err(D::Error::refuse(why));
    }
    Ok(s)
}

/// A duration is text with a unit; a bare number gets the form it should have had.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration as text, like \"90m\"")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Duration, E> {
            parse_duration(s).map_err(E::refuse)
        }
        // Any other number (negative, fractional) gets the key's example.
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
            Err(E::refuse(format!("a duration is text with a unit: write \"{n}m\" (or \"2h\", \"1h30m\")")))
        }
    }
    d.deserialize_any(Text)
}

/// Twilio accepts `<Dial timeout>` from 5 to 600 seconds.
const DIAL_SECONDS: (u64, u64) = (5, 600);

pub fn dial_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    dial_seconds(duration(d)?).map_err(D::Error::refuse)
}

/// How long phones ring (`dial_timeout`, each of `ring.ring_times`): whole seconds that
/// Twilio accepts.
pub fn dial_seconds(t: Duration) -> Result<Duration, String> {
    let (lo, hi) = DIAL_SECONDS;
    if t.as_secs() < lo || t.as_secs() > hi || t.subsec_nanos() != 0 {
        return Err(format!("must be whole seconds between {lo}s and {hi}s"));
    }
    Ok(t)
}

pub fn log_level<'de, D: Deserializer<'de>>(d: D) -> Result<log::LevelFilter, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(|_| D::Error::refuse("expected off, error, warn, info, debug or trace"))
}

/// A secret; an empty string means unset, so a template's `""` is not a password.
pub fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()).map(Secret::new))
}

pub fn token<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    let token = secret(d)?;
    token.iter().try_for_each(|t| check_token(t.expose())).map_err(D::Error::refuse)?;
    Ok(token)
}

/// Host names the control page may be reached by besides IP literals: a handful
/// ("intercom.local", "pi.lan"); more would be a typo or a list that defeats the
/// DNS-rebinding check these names feed.
const MAX_HOST_NAMES: usize = 8;
/// The longest DNS name (RFC 1035).
const MAX_HOST_NAME_CHARS: usize = 253;

/// `control.hosts`: plain DNS names (letters, digits, `-`, `.`), lower-cased; no port.
/// `clock_sync_flags`: absolute paths, a few (each is checked every time a store asks).
pub fn sync_flags<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<std::path::PathBuf>>, D::Error> {
    /// A host runs one NTP client; a few hooks' files are plenty.
    const MAX_SYNC_FLAGS: usize = 4;
    let Some(list) = Option::<Vec<String>>::deserialize(d)? else { return Ok(None) };
    if list.is_empty() || list.len() > MAX_SYNC_FLAGS {
        let why = format!("expected 1 to {MAX_SYNC_FLAGS} file paths, such as [\"/run/ntp-synchronized\"]");
        return Err(D::Error::refuse(why));
    }
    if let Some(p) = list.iter().find(|p| !p.starts_with('/') || p.contains('\0')) {
        let why = format!("expected an absolute path such as \"/run/ntp-synchronized\", got {p:?}");
        return Err(D::Error::refuse(why));
    }
    Ok(Some(list.into_iter().map(std::path::PathBuf::from).collect()))
}

pub fn host_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    if list.len() > MAX_HOST_NAMES {
        return Err(D::Error::refuse(format!("at most {MAX_HOST_NAMES} host names")));
    }
    let name = |h: &&String| {
        !h.is_empty()
            && h.len() <= MAX_HOST_NAME_CHARS
            && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !h.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    };
    if let Some(h) = list.iter().find(|h| !name(h)) {
        return Err(D::Error::refuse(format!(
            "expected a host name such as \"intercom.local\" (letters, digits, - and ., no port), got {h:?}"
        )));
    }
    Ok(list.iter().map(|h| h.to_ascii_lowercase()).collect())
}

pub fn account_sid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Some(sid) = Option::<String>::deserialize(d)? else { return Ok(None) };
    // It goes into REST API paths: letters and digits only, so it cannot walk them.
    if sid.is_empty() || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(D::Error::refuse("expected letters and digits (AC…)"));
    }
    Ok(Some(sid))
}

pub fn public_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)?.map(|u| check_public_url(&u)).transpose().map_err(D::Error::refuse)
}

/// `webhook.public_url`: scheme and host only.
pub fn public_origin<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)?.map(|u| check_public_origin(&u)).transpose().map_err(D::Error::refuse)
}

pub fn api_base<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    check_api_base(&String::deserialize(d)?).map_err(D::Error::refuse)
}

pub fn target_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    let url = Option::<String>::deserialize(d)?.map(|u| check_target_url(&u)).transpose();
    Ok(url.map_err(D::Error::refuse)?.map(Secret::new))
}

/// A URL we send to (`notify.ntfy.url`), as [`target_url`] checks it, that is no secret.
pub fn plain_target_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    check_target_url(&String::deserialize(d)?).map_err(D::Error::refuse)
}

/// A host name or IP address of a broker: what DNS and IP literals are made of, so a
/// URL or a stray space is refused here rather than failing at each connect.
pub fn host<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':' || b == b'_';
    if s.is_empty() || s.len() > MAX_HOST_NAME_CHARS || !s.bytes().all(ok) {
        return Err(D::Error::refuse(format!(
            "expected a host name or IP address like 192.168.1.10 or homeassistant.local, got {:?}",
            crate::util::loggable(&s)
        )));
    }
    Ok(s)
}

/// One MQTT topic level made of letters, digits, `_` and `-`: it is also Home
/// Assistant's discovery `node_id`, which allows nothing else, and it can hold no
/// wildcard (`+`, `#`) or level separator.
pub fn topic_level<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    check_topic(String::deserialize(d)?, false).map_err(D::Error::refuse)
}

/// Topic levels as in [`topic_level`], joined by single `/`.
pub fn topic_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    check_topic(String::deserialize(d)?, true).map_err(D::Error::refuse)
}

fn check_topic(s: String, levels: bool) -> Result<String, String> {
    /// Topics are built from it; Home Assistant's own prefixes are a word or two.
    const MAX_TOPIC_CHARS: usize = 64;
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (levels && b == b'/');
    // An empty level: an empty text, or a `/` at either end or twice in a row.
    if s.len() > MAX_TOPIC_CHARS || !s.bytes().all(ok) || s.split('/').any(str::is_empty) {
        let what = if levels { "topic levels separated by /" } else { "one topic level" };
        return Err(format!(
            "expected {what} of letters, digits, _ and - (at most {MAX_TOPIC_CHARS} characters), got {:?}",
            crate::util::loggable(&s)
        ));
    }
    Ok(s)
}

pub fn check_token(t: &str) -> Result<(), String> {
    if t.len() < 16 {
        return Err("must be at least 16 characters".into());
    }
    if !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b'~') {
        return Err("may only hold letters, digits and - _ . ~ (it goes into a URL)".into());
    }
    Ok(())
}

/// Parses "90m", "2h", "1h30m", "45s", "1d" (`util::time::parse_human`). Zero is
/// refused: no window or timeout is empty.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{t} has no unit: write {t}m (minutes), or 2h, 1h30m"));
    }
    let d = crate::util::time::parse_human(t)
        .ok_or_else(|| format!("invalid duration {s:?}; write it like 90m, 2h or 1h30m"))?;
    if d.is_zero() {
        return Err(format!("invalid duration {s:?}: must be more than zero"));
    }
    Ok(d)
}

/// A length typed on the command line, in whole minutes (the API counts them): the forms
/// of `util::time::parse_human`, a bare number too. "90s" would silently round, so it is
/// refused.
pub fn whole_minutes(text: &str) -> Result<u64, String> {
    let d = crate::util::time::parse_human(text).ok_or_else(|| {
        format!("{:?} is not a length of time: write 90m, 2h, 1h30, 2 hours or 90 (minutes)", text.trim())
    })?;
    if d.as_secs() % 60 != 0 || d.subsec_nanos() != 0 || d.is_zero() {
        return Err(format!("{:?} is not a whole number of minutes (at least 1m)", text.trim()));
    }
    Ok(d.as_secs() / 60)
}

/// Minutes in a day: a time of day is 0..MINUTES_PER_DAY, and an end may be exactly it.
pub const MINUTES_PER_DAY: u16 = 24 * 60;

/// `HH:MM` as minutes after midnight; `24:00` only where `allow_midnight_end`.
pub fn parse_clock(s: &str, allow_midnight_end: bool) -> Result<u16, String> {
    let bad = || format!("time {:?}: use HH:MM from 00:00 to 23:59", crate::util::loggable(s));
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !matches!(h.len(), 1 | 2) || m.len() != 2 || !digits(h) || !digits(m) {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (24, 0) if allow_midnight_end => Ok(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

pub fn format_clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}
