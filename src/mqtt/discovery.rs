//! Our topics and what Home Assistant's MQTT discovery reads from them: one device
//! "Intercom" with a switch, two buttons, two sensors, three binary sensors and an event
//! entity. Pure: names and JSON in, no I/O.
//!
//! Keys are Home Assistant's documented ones, unabbreviated (`state_topic`, not `stat_t`)
//! so a user reading the broker sees what is meant. Every entity shares the device and
//! the availability topic, whose last will says `offline` when the daemon is gone.

use serde_json::{json, Value};

use crate::model::record::{EventKind, Record};

pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";
pub const ON: &str = "ON";
pub const OFF: &str = "OFF";
pub const PRESS: &str = "PRESS";
/// Home Assistant keeps at most 255 characters of a state.
const MAX_STATE_CHARS: usize = 255;
/// The calls the event entity fires for: someone rang and was let in, forwarded or
/// refused. Guest-code keypad mistakes and window changes have their own sensors.
pub const RING_EVENTS: [EventKind; 4] =
    [EventKind::CallForwarded, EventKind::CallUnlocked, EventKind::CallUnlockedCode, EventKind::CallRejected];

/// The topics, made from the configured prefixes. An entity's own are
/// `<topic prefix>/<object id>/<kind>` ([`Topics::of`]), the same for discovery and the
/// bridge.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Also Home Assistant's `node_id` and the start of every `unique_id`.
    pub node: String,
    discovery: String,
    pub availability: String,
    /// Home Assistant's birth and will: `online` after it starts, when it wants
    /// discovery again.
    pub ha_status: String,
}

impl Topics {
    /// `prefix` and `discovery` are checked by the config (letters, digits, `_`, `-`;
    /// the discovery prefix also `/`), so no wildcard can reach a topic.
    pub fn new(prefix: &str, discovery: &str) -> Topics {
        Topics {
            node: prefix.to_string(),
            discovery: discovery.to_string(),
            availability: format!("{prefix}/availability"),
            ha_status: format!("{discovery}/status"),
        }
    }

    /// One of an entity's topics: `of("window", "set")` is `<topic prefix>/window/set`.
    pub fn of(&self, object: &str, kind: &str) -> String {
        format!("{}/{object}/{kind}", self.node)
    }

    /// What the bridge subscribes to.
    pub fn subscriptions(&self) -> [String; 4] {
        let press = |object| self.of(object, "press");
        [self.of("window", "set"), press("next_visitor"), press("let_in"), self.ha_status.clone()]
    }
}

/// Keys: each a key and its value; a value starting with `~/` is one of the entity's
/// topics, under `<topic prefix>/<object id>/` as in [`Topics`].
type Keys = &'static [(&'static str, &'static str)];
/// The keys every entity gets, besides its names, topics, device and origin.
const EVERY: Keys = &[("payload_available", ONLINE), ("payload_not_available", OFFLINE)];
/// The keys every entity of a platform gets.
const PLATFORMS: [(&str, Keys); 5] = [
    (
        "switch",
        &[
            ("command_topic", "~/set"),
            ("state_topic", "~/state"),
            ("payload_on", ON),
            ("payload_off", OFF),
            ("state_on", ON),
            ("state_off", OFF),
        ],
    ),
    ("button", &[("command_topic", "~/press"), ("payload_press", PRESS)]),
    ("sensor", &[("state_topic", "~/state")]),
    ("binary_sensor", &[("state_topic", "~/state"), ("payload_on", ON), ("payload_off", OFF)]),
    // Its `event_types` (a list) is added in code.
    ("event", &[("state_topic", "~/event")]),
];

/// Each entity: platform, object id, name, and keys of its own. Tables rather than `json!`
/// literals: the same payloads in less than half the binary's code (BENCHMARKS.md).
const ENTITIES: [(&str, &str, &str, Keys); 9] = [
    ("switch", "window", "Open window", &[("icon", "mdi:door-open")]),
    ("button", "next_visitor", "Let the next visitor in", &[("icon", "mdi:account-arrow-right")]),
    (
        "sensor",
        "time_left",
        "Time left",
        &[("device_class", "duration"), ("unit_of_measurement", "min"), ("icon", "mdi:timer-outline")],
    ),
    (
        "sensor",
        "last_event",
        "Last event",
        &[("json_attributes_topic", "~/attributes"), ("icon", "mdi:history")],
    ),
    (
        "binary_sensor",
        "storage_problem",
        "Storage problem",
        &[("device_class", "problem"), ("entity_category", "diagnostic")],
    ),
    ("binary_sensor", "codes_paused", "Guest codes paused", &[("icon", "mdi:lock-clock")]),
    ("binary_sensor", "ringing", "Ringing", &[("json_attributes_topic", "~/attributes")]),
    ("button", "let_in", "Let the ringing visitor in", &[("icon", "mdi:door-open")]),
    ("event", "ring", "Call", &[("device_class", "doorbell")]),
];

/// The retained discovery messages: (config topic, payload), one per entity.
pub fn configs(t: &Topics) -> Vec<(String, Value)> {
    let version = env!("CARGO_PKG_VERSION");
    let device = json!({
        "identifiers": [format!("intercom_{}", t.node)],
        "name": "Intercom",
        "manufacturer": "intercom",
        "model": "Twilio door intercom",
        "sw_version": version,
    });
    let origin = json!({"name": "intercom", "sw_version": version});
    let text = |s: &str| Value::String(s.to_string());
    ENTITIES
        .iter()
        .map(|(component, object, name, own)| {
            let mut p = serde_json::Map::new();
            p.insert("name".into(), text(name));
            p.insert("unique_id".into(), Value::String(format!("intercom_{}_{object}", t.node)));
            p.insert("availability_topic".into(), text(&t.availability));
            p.insert("device".into(), device.clone());
            p.insert("origin".into(), origin.clone());
            let platform = PLATFORMS.iter().filter(|(c, _)| c == component).flat_map(|(_, keys)| keys.iter());
            for (key, value) in EVERY.iter().chain(platform).chain(own.iter()) {
                let value = match value.strip_prefix("~/") {
                    Some(kind) => t.of(object, kind),
                    None => value.to_string(),
                };
                p.insert(key.to_string(), Value::String(value));
            }
            if *component == "event" {
                p.insert("event_types".into(), RING_EVENTS.iter().map(|k| text(k.name())).collect());
            }
            (format!("{}/{component}/{}/{object}/config", t.discovery, t.node), Value::Object(p))
        })
        .collect()
}

/// The last-event sensor's state: the record's sentence, as long as a state may be.
pub fn last_event_state(r: &Record) -> String {
    r.message.chars().take(MAX_STATE_CHARS).collect()
}

/// The event entity's message for a record, if it is a ring event: `event_type` is
/// what Home Assistant reads; the rest become the event's attributes.
pub fn ring_event(r: &Record) -> Option<Value> {
    RING_EVENTS.contains(&r.event).then(|| {
        let mut v = json!({"event_type": r.event.name(), "message": r.message, "time": r.time});
        if let Some(from) = &r.from {
            v["from"] = json!(from);
        }
        v
    })
}

pub fn on_off(on: bool) -> &'static str {
    if on {
        ON
    } else {
        OFF
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    #[test]
    fn every_entity_has_the_keys_its_platform_requires() {
        let t = Topics::new("door", "homeassistant");
        let configs = configs(&t);
        assert_eq!(configs.len(), 9);
        for (topic, p) in &configs {
            let component = topic.split('/').nth(1).unwrap();
            assert!(topic.starts_with("homeassistant/") && topic.ends_with("/config"), "{topic}");
            assert_eq!(topic.split('/').nth(2), Some("door"), "node id");
            assert!(p["unique_id"].as_str().unwrap().starts_with("intercom_door_"));
            assert_eq!(p["availability_topic"], "door/availability");
            assert_eq!(p["device"]["name"], "Intercom");
            let required: &[&str] = match component {
                "switch" | "button" => &["command_topic"],
                "sensor" | "binary_sensor" => &["state_topic"],
                "event" => &["state_topic", "event_types"],
                other => panic!("unexpected platform {other}"),
            };
            for key in required {
                assert!(p.get(key).is_some(), "{topic} lacks {key}");
            }
        }
        let unique: std::collections::HashSet<_> =
            configs.iter().map(|(_, p)| p["unique_id"].clone()).collect();
        assert_eq!(unique.len(), configs.len());
        assert_eq!(
            t.subscriptions(),
            ["door/window/set", "door/next_visitor/press", "door/let_in/press", "homeassistant/status"]
        );
    }

    #[test]
    fn ring_events_carry_their_type_and_others_none() {
        let t = Timestamp::UNIX_EPOCH;
        let mut r = Record::new(t, EventKind::CallRejected, "Rejected a call from +15550001111".into());
        r.from = Some("+15550001111".into());
        let v = ring_event(&r).unwrap();
        assert_eq!(
            (v["event_type"].as_str(), v["from"].as_str()),
            (Some("call_rejected"), Some("+15550001111"))
        );
        assert!(ring_event(&Record::new(t, EventKind::WindowOpened, "x".into())).is_none());
        let long = Record::new(t, EventKind::CallForwarded, "é".repeat(300));
        assert_eq!(last_event_state(&long).chars().count(), 255);
    }
}
