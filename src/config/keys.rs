//! The config's keys as users see them: every key with an example (for type errors and
//! the docs, checked against the structs), and the shipped template's placeholders, which
//! `serve`, `check-config`, `doctor` and `twilio-setup` refuse by key.

use crate::config::{key_error, Config, ConfigError};
use crate::model::phone::PhoneNumber;

/// Every key the parser accepts, with an example value as JSON. A type error quotes the
/// example; docs/config.md documents each key (tests/it/docs.rs), and a test here checks
/// that this list is exactly what the structs accept, so neither can drift.
pub const KEYS: &[(&str, &str)] = &[
    ("intercom_number", r#""+15558889999""#),
    ("forward_to", r#"["+15552223333"]"#),
    ("intercoms", r#"[{"name": "street gate", "number": "+15558880001", "unlock_digits": "9"}]"#),
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
    ("notify.ntfy", r#"{"topic": "my-secret-door-topic"}"#),
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
];

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
pub fn unfilled_placeholders(c: &Config) -> Vec<ConfigError> {
    let phone = |n: &Option<PhoneNumber>| n.as_ref().map(|n| n.as_str().to_string());
    let values = |key: &str| -> Vec<String> {
        match key {
            "intercom_number" => phone(&c.intercom_number).into_iter().collect(),
            "forward_to" => c.forward_to.iter().map(|n| n.as_str().to_string()).collect(),
            "webhook.public_url" => c.webhook.public_url.clone().into_iter().collect(),
            "twilio.account_sid" => c.twilio.account_sid.clone().into_iter().collect(),
            "twilio.number" => phone(&c.twilio.number).into_iter().collect(),
            _ => Vec::new(),
        }
    };
    let mut errors = Vec::new();
    for &(key, placeholder, what) in TEMPLATE_PLACEHOLDERS {
        if values(key).iter().any(|v| v == placeholder || (key == "twilio.account_sid" && v.contains("xxxx")))
        {
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
        let errors: Vec<String> = unfilled_placeholders(&c).into_iter().map(|e| e.0).collect();
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

    /// The keys serde lists as known for a section, from the error an unknown key gives.
    fn known_keys(section: &str) -> Vec<String> {
        let unknown = r#"{"no_such_key": 1}"#.to_string();
        let text = section
            .split('.')
            .filter(|s| !s.is_empty())
            .rev()
            .fold(unknown, |inner, s| format!(r#"{{"{s}": {inner}}}"#));
        let e = err(&text);
        let list = e.split("(known here: ").nth(1).unwrap().trim_end_matches(')');
        let prefix = if section.is_empty() { String::new() } else { format!("{section}.") };
        list.split(", ").map(|k| format!("{prefix}{k}")).collect()
    }

    #[test]
    fn the_key_list_is_exactly_what_the_structs_accept() {
        let mut accepted = known_keys("");
        for section in ["webhook", "control", "twilio", "notify", "notify.ntfy", "mqtt", "limits", "ring"] {
            accepted.extend(known_keys(section));
        }
        accepted.sort();
        let mut listed: Vec<String> = KEYS.iter().map(|(k, _)| k.to_string()).collect();
        listed.sort();
        assert_eq!(listed, accepted);
        // Every example is a value the parser takes (with what its neighbours need).
        for (key, example) in KEYS {
            let value = match key.split_once('.') {
                // The mqtt section needs its host (and a password its username) beside the key.
                Some(("mqtt", k)) => {
                    let mut section = serde_json::json!({"host": "h", "username": "u"});
                    section[k] = serde_json::from_str(example).unwrap();
                    serde_json::json!({ "mqtt": section }).to_string()
                }
                Some((section, k)) => format!(r#"{{"{section}": {{"{k}": {example}}}}}"#),
                None => format!(r#"{{"{key}": {example}}}"#),
            };
            // A ring time or a quiet-hours number must be one of `forward_to`.
            let needs = r#""webhook": {"public_url": "https://d.example"}, "forward_to": ["+15552223333"], "#;
            let with = |v: &str| format!("{{{needs}{}", &v[1..]);
            let ok = parse(&value, no_env).is_ok()
                || parse(&with(&value), no_env).is_ok()
                || key.starts_with("twilio.api_key")
                || key.starts_with("notify");
            assert!(ok, "{key}: {value}: {:?}", parse(&value, no_env).err());
        }
    }
}
