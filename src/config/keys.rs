//! The config's keys as users see them: every key with an example, and the errors built
//! from them (an unknown key, a section that is no object, a value of the wrong form),
//! and the shipped template's placeholders, which `serve`, `check-config`, `doctor` and
//! `twilio-setup` refuse by key.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::config::values::OURS;
use crate::config::{key_error, Config};
use crate::model::phone::PhoneNumber;

/// Every key the parser accepts, with an example value as JSON: an error for a value of
/// the wrong form quotes it. A key with keys below it is a section. docs/config.md
/// documents each key (tests/it/docs.rs), and a test here checks that this list is
/// exactly what the structs accept, so neither can drift.
pub const KEYS: &[(&str, &str)] = &[
    ("intercom_number", r#""+15558889999""#),
    ("forward_to", r#"["+15552223333"]"#),
    ("intercoms", r#"[{"name": "street gate", "number": "+15558880001", "unlock_digits": "9"}]"#),
    ("intercoms.name", r#""street gate""#),
    ("intercoms.number", r#""+15558880001""#),
    ("intercoms.unlock_digits", r#""9""#),
    ("unlock_digits", r#""ww9""#),
    ("default_window", r#""2h""#),
    ("max_window", r#""12h""#),
    ("dial_timeout", r#""25s""#),
    ("no_answer_message", r#""Sorry, nobody is answering. Please try again later.""#),
    ("state_dir", r#""/var/lib/intercom""#),
    ("clock_sync_flags", r#"["/run/ntp-synchronized"]"#),
    ("log_level", r#""info""#),
    ("webhook", r#"{"listen": "127.0.0.1:8080"}"#),
    ("webhook.listen", r#""127.0.0.1:8080""#),
    ("webhook.public_url", r#""https://door.example.net""#),
    ("webhook.allow_unsigned", "true"),
    ("control", r#"{"listen": "0.0.0.0:8081"}"#),
    ("control.listen", r#""0.0.0.0:8081""#),
    ("control.token", r#""a-long-random-token-0123""#),
    ("control.hosts", r#"["intercom.home.arpa"]"#),
    ("twilio", r#"{"account_sid": "AC0123456789abcdef0123456789abcdef"}"#),
    ("twilio.account_sid", r#""AC0123456789abcdef0123456789abcdef""#),
    ("twilio.auth_token", r#""0123456789abcdef0123456789abcdef""#),
    ("twilio.sms_from", r#""+15550001111""#),
    ("twilio.api_base", r#""https://api.twilio.com""#),
    ("twilio.number", r#""+15550001111""#),
    ("twilio.fallback_url", r#""https://handler.twilio.com/twiml/EH0123""#),
    ("twilio.api_key_sid", r#""SK0123456789abcdef0123456789abcdef""#),
    ("twilio.api_key_secret", r#""0123456789abcdef0123456789abcdef""#),
    ("notify", r#"{"sms_to": ["+15552223333"]}"#),
    ("notify.webhook_url", r#""https://ntfy.sh/my-secret-door-topic""#),
    ("notify.sms_to", r#"["+15552223333"]"#),
    ("notify.events", r#"["call_unlocked", "call_rejected"]"#),
    ("notify.ntfy", r#"{"url": "https://ntfy.sh", "topic": "my-secret-door-topic"}"#),
    ("notify.ntfy.url", r#""https://ntfy.sh""#),
    ("notify.ntfy.topic", r#""my-secret-door-topic""#),
    ("notify.ntfy.token", r#""tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2""#),
    ("mqtt", r#"{"host": "homeassistant.local"}"#),
    ("mqtt.host", r#""homeassistant.local""#),
    ("mqtt.port", "1883"),
    ("mqtt.username", r#""intercom""#),
    ("mqtt.password", r#""the-intercom-users-password""#),
    ("mqtt.tls", "true"),
    ("mqtt.topic_prefix", r#""intercom""#),
    ("mqtt.discovery_prefix", r#""homeassistant""#),
    ("limits", r#"{"connection_lifetime": "30s"}"#),
    ("limits.connection_lifetime", r#""30s""#),
    ("ring", r#"{"order": "sequential"}"#),
    ("ring.order", r#""sequential""#),
    ("ring.ring_times", r#"{"+15552223333": "20s"}"#),
    ("ring.quiet_hours", r#"{"from": "22:00", "to": "07:00", "only": ["+15552223333"]}"#),
    ("ring.quiet_hours.from", r#""22:00""#),
    ("ring.quiet_hours.to", r#""07:00""#),
    ("ring.quiet_hours.only", r#"["+15552223333"]"#),
];

fn example(key: &str) -> Option<&'static str> {
    KEYS.iter().find(|(k, _)| *k == key).map(|(_, e)| *e)
}

/// The keys right below `key` ("" for the top), in the list's order.
fn children(key: &str) -> Vec<&'static str> {
    let below =
        |k: &'static str| if key.is_empty() { Some(k) } else { k.strip_prefix(key)?.strip_prefix('.') };
    KEYS.iter().filter_map(|(k, _)| below(k).filter(|rest| !rest.contains('.'))).collect()
}

/// Reads the file's JSON, refusing a key written twice in one object: a JSON map would
/// keep the last silently, and a second `intercom_number` must not quietly win.
pub(crate) fn read_json(text: &str) -> Result<Value, String> {
    let twice = RefCell::new(None);
    // JSON is read from bytes everywhere (never `from_str`, never an owned `Value`), so serde's
    // code for each type is built for one reader only (33 KiB of binary when it was not).
    let mut de = serde_json::Deserializer::from_slice(text.as_bytes());
    let read = Unique(&twice).deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    read.map_err(|e| {
        let what = match (twice.take(), e.classify()) {
            (Some(key), _) => format!("the key {key:?} is written twice in one object; keep one"),
            (None, serde_json::error::Category::Eof) => "the JSON ends too early (a missing } or ]?)".into(),
            (None, _) => "not valid JSON here (a missing or extra comma, quote or bracket?)".into(),
        };
        format!("line {}, column {}: {what}", e.line(), e.column())
    })
}

/// Builds the value, noting the first key repeated within one object.
struct Unique<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let (mut object, mut seen) = (serde_json::Map::new(), HashSet::new());
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                *self.0.borrow_mut() = Some(key);
                return Err(A::Error::custom("repeated key"));
            }
            object.insert(key, map.next_value_seed(Unique(self.0))?);
        }
        Ok(Value::Object(object))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let list = std::iter::from_fn(|| seq.next_element_seed(Unique(self.0)).transpose());
        list.collect::<Result<_, _>>().map(Value::Array)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(s.into())
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// What only this list can say, before serde reads anything: every key is one of
/// [`KEYS`], and every section is an object (or, where its example is a list, a list of
/// them): serde would fill a struct from a list by position, and an absent key, not
/// `null`, is how a section is left out. `key` is "" for the whole file.
pub(crate) fn section(key: &str, item: Option<usize>, value: &Value) -> Result<(), String> {
    match value {
        // A value, not a section: serde reads it.
        _ if !key.is_empty() && children(key).is_empty() => Ok(()),
        Value::Object(map) => map.iter().try_for_each(|(name, v)| {
            let child = if key.is_empty() { name.clone() } else { format!("{key}.{name}") };
            match example(&child) {
                Some(_) => section(&child, None, v),
                None => {
                    Err(at(&child, item, format!("unknown key (known here: {})", children(key).join(", "))))
                }
            }
        }),
        Value::Array(list) if item.is_none() && example(key).is_some_and(|e| e.starts_with('[')) => {
            list.iter().enumerate().try_for_each(|(i, v)| section(key, Some(i + 1), v))
        }
        _ if key.is_empty() => Err("the config must be a JSON object".into()),
        _ => Err(expected(key, item, value)),
    }
}

/// An error serde met while reading `value`: a value type's own message (see [`OURS`]),
/// else the form the key takes. Named by the nearest key of [`KEYS`] on the path (a
/// number in `ring.ring_times` is below its key) and the list item, counted from 1.
pub(crate) fn value_error(value: &Value, e: serde_path_to_error::Error<serde_json::Error>) -> String {
    let (mut path, mut key, mut item, mut found) = (String::new(), String::new(), None, Some(value));
    for segment in e.path() {
        match segment {
            serde_path_to_error::Segment::Map { key: name } => {
                path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                if example(&path).is_some() {
                    key.clone_from(&path);
                }
                found = found.and_then(|v| v.get(name));
            }
            serde_path_to_error::Segment::Seq { index } => {
                item = Some(index + 1);
                found = found.and_then(|v| v.get(index));
            }
            _ => {}
        }
    }
    match e.into_inner().to_string().strip_prefix(OURS) {
        Some(ours) => at(&key, item, ours),
        None => expected(&key, item, found.unwrap_or(&Value::Null)),
    }
}

/// A value of the wrong form, shown as the key's example and what was there instead
/// (text as written, shortened; a list or an object by its kind).
fn expected(key: &str, item: Option<usize>, got: &Value) -> String {
    let got = match got {
        Value::String(s) => format!("{:?}", crate::util::loggable(s)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
        other => other.to_string(),
    };
    at(key, item, format!("expected a value like {}, not {got}", example(key).unwrap_or("the docs show")))
}

fn at(key: &str, item: Option<usize>, msg: impl fmt::Display) -> String {
    match item {
        Some(i) => key_error(key, format_args!("item {i}: {msg}")),
        None => key_error(key, msg),
    }
}

/// The values `configs/production.json` ships as placeholders, each with what replaces it.
/// A config that still holds one was never filled in: every real call would be rejected,
/// or Twilio pointed at a host that is not ours, while every other check says OK.
pub const TEMPLATE_PLACEHOLDERS: &[(&str, &str, &str)] = &[
    ("intercom_number", "+15550100001", "the number your intercom calls from"),
    ("forward_to", "+15550100002", "your own phone number(s)"),
    ("webhook.public_url", "https://intercom.example.com", "the https URL your tunnel serves"),
    ("twilio.account_sid", "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "your Account SID from the Twilio console"),
    ("twilio.number", "+15550100003", "your Twilio phone number"),
];

/// One error per key that still holds the shipped template's placeholder. `serve`,
/// `check-config`, `doctor` and `twilio-setup` refuse such a config; the parser does not,
/// so tests and the dev config may use any number.
pub fn unfilled_placeholders(c: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    for &(key, placeholder, what) in TEMPLATE_PLACEHOLDERS {
        let values: Vec<&str> = match key {
            "intercom_number" => c.intercom_number.iter().map(PhoneNumber::as_str).collect(),
            "forward_to" => c.forward_to.iter().map(PhoneNumber::as_str).collect(),
            "webhook.public_url" => c.webhook.public_url.iter().map(String::as_str).collect(),
            "twilio.account_sid" => c.twilio.account_sid.iter().map(String::as_str).collect(),
            "twilio.number" => c.twilio.number.iter().map(PhoneNumber::as_str).collect(),
            _ => Vec::new(),
        };
        if values.iter().any(|v| *v == placeholder || (key == "twilio.account_sid" && v.contains("xxxx"))) {
            let fix = format!("still the template's placeholder {placeholder}: replace it with {what} (or run `intercom init`)");
            errors.push(key_error(key, fix));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::config::tests::{err, no_env};

    #[test]
    fn the_shipped_template_is_refused_by_every_placeholder_key() {
        let template = include_str!("../../configs/production.json");
        let c = parse(template, no_env).unwrap();
        let errors: Vec<String> = unfilled_placeholders(&c);
        assert_eq!(errors.len(), TEMPLATE_PLACEHOLDERS.len(), "{errors:?}");
        for ((key, placeholder, _), e) in TEMPLATE_PLACEHOLDERS.iter().zip(&errors) {
            assert!(e.starts_with(&format!("config key `{key}`: still the template's placeholder")), "{e}");
            assert!(template.contains(placeholder), "{key}: {placeholder} is not in the template");
        }
        // The dev config runs as is, and so does a filled-in template.
        assert!(
            unfilled_placeholders(&parse(include_str!("../../configs/dev.json"), no_env).unwrap()).is_empty()
        );
        let filled = template
            .replace("+15550100001", "+15558889999")
            .replace("+15550100002", "+15552223333")
            .replace("+15550100003", "+15550001111")
            .replace("intercom.example.com", "door.example.net")
            .replace("ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "AC0123456789abcdef0123456789abcdef");
        assert!(unfilled_placeholders(&parse(&filled, no_env).unwrap()).is_empty());
    }

    /// The field names a struct's derived `Deserialize` asks its deserializer for: the
    /// keys it accepts.
    fn fields<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
        struct Fields(&'static [&'static str]);
        impl<'de> serde::Deserializer<'de> for &mut Fields {
            type Error = serde::de::value::Error;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(serde::de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0 = fields;
                Err(serde::de::Error::custom("only the fields were wanted"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
                option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
            }
        }
        let mut f = Fields(&[]);
        let _ = T::deserialize(&mut f);
        let mut names = f.0.to_vec();
        names.sort();
        names
    }

    #[test]
    fn the_key_list_is_exactly_what_the_structs_accept() {
        use crate::config::*;
        for (section, accepted) in [
            ("", fields::<Config>()),
            ("webhook", fields::<WebhookConfig>()),
            ("control", fields::<ControlConfig>()),
            ("twilio", fields::<TwilioConfig>()),
            ("notify", fields::<NotifyConfig>()),
            ("notify.ntfy", fields::<NtfyConfig>()),
            ("mqtt", fields::<MqttConfig>()),
            ("limits", fields::<limits::LimitsConfig>()),
            ("ring", fields::<ring::RingConfig>()),
        ] {
            let mut listed = children(section);
            listed.sort();
            assert_eq!(listed, accepted, "section {section:?}");
        }
        // Every example is a value the parser takes, set in a config that has what its
        // neighbours need (a number in forward_to, the Twilio account for SMS, …).
        let base = serde_json::json!({
            "forward_to": ["+15552223333"], "webhook": {"public_url": "https://d.example"},
            "intercoms": [{"name": "gate", "number": "+15558880001"}],
            "twilio": {"account_sid": "AC1", "sms_from": "+15550001111", "api_key_sid": "SK1", "api_key_secret": "s"},
            "mqtt": {"host": "h", "username": "u"},
            "notify": {"ntfy": {"url": "https://ntfy.sh", "topic": "t"}},
            "ring": {"quiet_hours": {"from": "22:00", "to": "07:00", "only": []}},
        });
        for (key, example) in KEYS {
            let mut c = base.clone();
            if *key == "intercom_number" {
                c.as_object_mut().unwrap().remove("intercoms");
            }
            let (parents, last) = key.rsplit_once('.').map_or(("", *key), |(p, l)| (p, l));
            let mut at = &mut c;
            for part in parents.split('.').filter(|p| !p.is_empty()) {
                let next = &mut at[part];
                at = if next.is_array() { &mut next[0] } else { next };
            }
            at[last] = serde_json::from_str(example).unwrap();
            assert!(
                parse(&c.to_string(), no_env).is_ok(),
                "{key}: {c}: {:?}",
                parse(&c.to_string(), no_env).err()
            );
        }
    }

    #[test]
    fn errors_come_from_the_key_list_and_the_value() {
        let e = err(r#"{"ring": {"quiet_hours": {"from": "22:00", "to": "07:00", "only": [], "dnd": 1}}}"#);
        assert_eq!(e, "config key `ring.quiet_hours.dnd`: unknown key (known here: from, to, only)");
        let e = err(r#"{"intercoms": [{"name": "a", "number": "+15558880001"}, {"tones": "9"}]}"#);
        assert_eq!(
            e,
            "config key `intercoms.tones`: item 2: unknown key (known here: name, number, unlock_digits)"
        );
        let e = err(r#"{"mqtt": {"host": "h", "port": 65536}}"#);
        assert_eq!(e, "config key `mqtt.port`: expected a value like 1883, not 65536");
        let e = err(r#"{"ring": {"ring_times": {"+15552223333": 20}}}"#);
        assert!(
            e.starts_with(r#"config key `ring.ring_times`: expected a value like {"#)
                && e.ends_with("not 20"),
            "{e}"
        );
        let e = err(r#"{"ring": {"order": "random\u001b[31m"}}"#);
        assert_eq!(e, r#"config key `ring.order`: expected a value like "sequential", not "random[31m""#);
        assert!(
            err(r#"{"ring": {"quiet_hours": null}}"#).contains("`ring.quiet_hours`: expected a value like {")
        );
        let e = err(r#"{"ring": {"quiet_hours": {"from": "22:00", "to": "07:00"}}}"#);
        assert!(e.starts_with("config key `ring.quiet_hours`: only: required"), "{e}");
        assert_eq!(
            err(r#"{"a": 1,}"#),
            "line 1, column 9: not valid JSON here (a missing or extra comma, quote or bracket?)"
        );
        assert!(err(r#"{"a": ["#).contains("ends too early"));
    }
}
