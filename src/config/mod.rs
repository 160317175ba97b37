//! `config/`: the one JSON config file, read and checked once at start into typed structs.
//! Secrets are [`Secret`]s, whose `Debug` never shows the value.
//!
//! Uses: `model`, `util`.
//!
//! The structs below are the file's schema, and [`DEFAULTS`] what it leaves out. Reading
//! goes in steps, each with its own errors: the JSON (line and column), its shape against
//! the list of keys in `keys.rs` (an unknown key, a section that is no object), then
//! serde, where each value type checks itself as it is read (its own message, or else the
//! key's example), and [`Config::check`], the rules that span keys. Every error is one
//! line that names the dotted key, so a user can fix a bad config from it, and none is
//! built from serde's wording, which may change with any release.

pub mod entrances;

pub mod keys;
pub mod limits;
pub mod ring;
pub mod url;
pub mod values;

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::entrances::Entrance;
use crate::config::limits::LimitsConfig;
use crate::config::ring::RingConfig;
pub use crate::config::values::{check_token, parse_duration, whole_minutes, Secret};
use crate::model::phone::PhoneNumber;
use crate::model::record::EventKind;
use crate::util::ownership::check_private_file;

pub use keys::{unfilled_placeholders, KEYS, TEMPLATE_PLACEHOLDERS};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/intercom/intercom.json";
/// What the file leaves out, written as the file would say it, and read and checked
/// with it (a section key by key). Not here: `default_window` (unset, 2 h or `max_window`
/// if shorter, see [`Config::check`]) and what is unset when absent.
///
/// `dial_timeout`: Twilio's own default is 30 s; 25 s ends before most mobile voicemail
/// picks up, so the visitor hears the fallback message. `twilio.api_base` is Twilio's
/// REST API (tests point it at a local server). `notify.events`: someone let in (by the
/// window, a guest code, a schedule or a tap while it rang), the window's opening and end
/// (a one-shot's too), and a guesser locking the codes. `limits.connection_lifetime`: 30 s
/// lets a keep-alive client (the bench, a proxy in front) reuse its connection for
/// thousands of requests, and bounds a connection's life by
/// `http::connections::REQUEST_TIMEOUT` more (the last request still gets all of it).
const DEFAULTS: &str = r#"{
    "unlock_digits": "ww9", "max_window": "12h", "dial_timeout": "25s", "log_level": "info",
    "no_answer_message": "Sorry, nobody is answering. Please try again later.",
    "state_dir": "/var/lib/intercom",
    "webhook": {"listen": "127.0.0.1:8080"},
    "control": {"listen": "0.0.0.0:8081"},
    "twilio": {"api_base": "https://api.twilio.com"},
    "limits": {"connection_lifetime": "30s"}, "ring": {},
    "notify": {"events": ["call_unlocked", "window_opened", "window_expired", "call_unlocked_code",
        "codes_locked", "once_used", "call_unlocked_schedule", "call_let_in"]}
}"#;
const DEFAULT_WINDOW: Duration = Duration::from_secs(2 * 3600);
/// A window is at least a minute: the API counts in minutes.
const MIN_WINDOW: Duration = Duration::from_secs(60);
/// A window is at most a day. The clock-jump guard treats an expiry further away than
/// `max_window` as a moved clock, so a far-future bound would switch the guard off, and
/// an absurd one overflows the time formatter. A party does not last longer.
const MAX_WINDOW_BOUND: Duration = Duration::from_secs(24 * 3600);
/// `<Say>` text is spoken to a visitor; a paragraph is plenty.
const MAX_MESSAGE_CHARS: usize = 500;

pub const ENV_TWILIO_AUTH_TOKEN: &str = "INTERCOM_TWILIO_AUTH_TOKEN";
pub const ENV_CONTROL_TOKEN: &str = "INTERCOM_CONTROL_TOKEN";
pub const ENV_TWILIO_API_KEY_SECRET: &str = "INTERCOM_TWILIO_API_KEY_SECRET";
pub const ENV_MQTT_PASSWORD: &str = "INTERCOM_MQTT_PASSWORD";
pub const ENV_NTFY_TOKEN: &str = "INTERCOM_NTFY_TOKEN";
/// MQTT's default ports, without and with TLS (IANA).
const MQTT_PORT: u16 = 1883;
const MQTT_TLS_PORT: u16 = 8883;
/// A user name or password longer than this is a pasted file, not a credential; MQTT
/// itself allows 65535 bytes.
const MAX_MQTT_CREDENTIAL_BYTES: usize = 1024;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(default, deserialize_with = "values::phone")]
    pub intercom_number: Option<PhoneNumber>,
    #[serde(default, deserialize_with = "values::phones")]
    pub forward_to: Vec<PhoneNumber>,
    #[serde(deserialize_with = "values::unlock_digits")]
    pub unlock_digits: String,
    /// Every intercom, after [`Config::check`]: the `intercoms` list, or the single
    /// `intercom_number` as one unnamed entrance, or none.
    #[serde(default, deserialize_with = "entrances::intercoms")]
    pub intercoms: Vec<Entrance>,
    /// Zero until [`Config::check`] resolves it: unset means 2 h, or `max_window` if shorter.
    #[serde(default, deserialize_with = "values::duration")]
    pub default_window: Duration,
    #[serde(deserialize_with = "values::duration")]
    pub max_window: Duration,
    #[serde(deserialize_with = "values::dial_timeout")]
    pub dial_timeout: Duration,
    pub no_answer_message: String,
    pub state_dir: PathBuf,
    /// Files whose existence says the clock is synchronized in this boot, instead of the
    /// built-in ones (timesyncd's, OpenWrt's hook); for another NTP client's hook.
    #[serde(default, deserialize_with = "values::sync_flags")]
    pub clock_sync_flags: Option<Vec<PathBuf>>,
    #[serde(deserialize_with = "values::log_level")]
    pub log_level: log::LevelFilter,
    pub webhook: WebhookConfig,
    pub control: ControlConfig,
    pub twilio: TwilioConfig,
    pub notify: NotifyConfig,
    /// Home Assistant through an MQTT broker; absent means nothing connects.
    pub mqtt: Option<MqttConfig>,
    pub limits: LimitsConfig,
    pub ring: RingConfig,

    /// The secrets file read for this config, so `check-config` can say which secrets
    /// came from it (those the process environment does not hold).
    #[serde(skip)]
    pub env_file: Option<PathBuf>,
}

/// The MQTT broker Home Assistant listens to, and where our topics go.
#[derive(Debug, Clone, Deserialize)]
pub struct MqttConfig {
    /// Required: empty (absent) is refused by [`Config::check`].
    #[serde(default, deserialize_with = "values::host")]
    pub host: String,
    /// Unset: 1883, or 8883 with `tls`.
    pub port: Option<NonZeroU16>,
    pub username: Option<String>,
    #[serde(default, deserialize_with = "values::secret")]
    pub password: Option<Secret>,
    /// Verify the broker against the system's CAs (as outbound HTTPS does).
    #[serde(default)]
    pub tls: bool,
    /// Our topics (`intercom/window/state`, …) and the device's id in Home Assistant.
    #[serde(default = "default_topic_prefix", deserialize_with = "values::topic_level")]
    pub topic_prefix: String,
    /// Where Home Assistant looks for discovery messages (its own default).
    #[serde(default = "default_discovery_prefix", deserialize_with = "values::topic_path")]
    pub discovery_prefix: String,
}

fn default_topic_prefix() -> String {
    "intercom".into()
}

fn default_discovery_prefix() -> String {
    "homeassistant".into()
}

impl MqttConfig {
    pub fn port(&self) -> u16 {
        self.port.map_or(if self.tls { MQTT_TLS_PORT } else { MQTT_PORT }, NonZeroU16::get)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookConfig {
    pub listen: SocketAddr,
    /// The URL Twilio calls, without a trailing slash; signatures are computed over it.
    #[serde(default, deserialize_with = "values::public_origin")]
    pub public_url: Option<String>,
    /// `serve` runs without `twilio.auth_token` only when this says so by name: a token
    /// left in a file that a hand-started `serve` does not read must not mean "unsigned".
    #[serde(default)]
    pub allow_unsigned: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ControlConfig {
    pub listen: SocketAddr,
    #[serde(default, deserialize_with = "values::token")]
    pub token: Option<Secret>,
    /// Names (besides IP addresses) a paired phone may reach the page by; any other
    /// `Host` is refused for a device, which stops DNS rebinding.
    #[serde(default, deserialize_with = "values::host_names")]
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TwilioConfig {
    #[serde(default, deserialize_with = "values::account_sid")]
    pub account_sid: Option<String>,
    #[serde(default, deserialize_with = "values::secret")]
    pub auth_token: Option<Secret>,
    /// The Twilio number SMS notifications come from.
    #[serde(default, deserialize_with = "values::phone")]
    pub sms_from: Option<PhoneNumber>,
    /// Without a trailing slash.
    #[serde(deserialize_with = "values::api_base")]
    pub api_base: String,
    /// The Twilio number the intercom calls; `twilio-setup` and `doctor` look it up.
    #[serde(default, deserialize_with = "values::phone")]
    pub number: Option<PhoneNumber>,
    /// The number's Voice Fallback URL (a TwiML Bin holding `fallback-twiml`'s output).
    #[serde(default, deserialize_with = "values::public_url")]
    pub fallback_url: Option<String>,
    /// REST credentials Twilio recommends over the auth token (SK…); used when set.
    #[serde(default, deserialize_with = "values::account_sid")]
    pub api_key_sid: Option<String>,
    #[serde(default, deserialize_with = "values::secret")]
    pub api_key_secret: Option<Secret>,
}

/// What to tell whom, and about which events.
#[derive(Debug, Clone, Deserialize)]
pub struct NotifyConfig {
    /// A secret: ntfy topics and Home Assistant webhook ids work as passwords.
    #[serde(default, deserialize_with = "values::target_url")]
    pub webhook_url: Option<Secret>,
    #[serde(default, deserialize_with = "values::phones")]
    pub sms_to: Vec<PhoneNumber>,
    pub events: Vec<EventKind>,
    pub ntfy: Option<NtfyConfig>,
}

/// An ntfy server (ntfy.sh or one's own): every ring, with a "Let them in" button, and
/// the chosen events.
#[derive(Debug, Clone, Deserialize)]
pub struct NtfyConfig {
    /// The server (`https://ntfy.sh`), not the topic's URL: messages are published as JSON
    /// to its root. Required: empty (absent) is refused by [`Config::check`], as is `topic`.
    #[serde(default, deserialize_with = "values::plain_target_url")]
    pub url: String,
    /// Treated as a secret: on ntfy.sh, whoever knows a topic can read it.
    #[serde(default, deserialize_with = "values::topic_level")]
    pub topic: String,
    /// An access token (`tk_…`), for a topic that needs one.
    #[serde(default, deserialize_with = "values::secret")]
    pub token: Option<Secret>,
}

impl NotifyConfig {
    /// Whether anything is sent at all: ntfy gets every ring, whatever the events.
    pub fn is_active(&self) -> bool {
        self.ntfy.is_some()
            || ((self.webhook_url.is_some() || !self.sms_to.is_empty()) && !self.events.is_empty())
    }
}

/// Key names come from the file: control characters are escaped so the error stays one
/// line and cannot drive the terminal (found by the config fuzz target).
pub(crate) fn key_error(key: &str, msg: impl fmt::Display) -> String {
    format!("config key `{}`: {msg}", key.escape_debug())
}

/// Reads and checks the config file, then applies secrets from the environment.
pub fn load(path: &Path) -> Result<Config, String> {
    parse_file(path, process_env)
}

/// A variable of the process environment; empty means unset.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_file(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    parse(&text, env).map_err(|e| format!("{}: {e}", path.display()))
}

/// The service's secrets file beside the config (systemd's `EnvironmentFile=`, mode 0600).
pub const ENV_FILE: &str = "intercom.env";

/// For the commands an admin runs by hand (`sudo intercom doctor`, `twilio-setup`): like
/// [`load`], but a secret missing from the environment is also looked up in
/// [`ENV_FILE`] beside the config, so they see the same secrets as the service.
///
/// Both files must be root's or the invoking user's and writable by nobody else: these
/// commands send the secrets to the addresses the config names.
pub fn load_with_env_file(path: &Path) -> Result<Config, String> {
    check_private_file(path, None)?;
    let file_path = path.parent().unwrap_or(Path::new(".")).join(ENV_FILE);
    let file = match file_path.symlink_metadata() {
        Ok(_) => {
            check_private_file(&file_path, None)?;
            let text = std::fs::read_to_string(&file_path);
            env_file(&text.map_err(|e| format!("cannot read {}: {e}", file_path.display()))?)
        }
        Err(_) => Vec::new(),
    };
    let env = |name: &str| {
        let from_file = || file.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.clone());
        process_env(name).or_else(from_file)
    };
    let mut config = parse_file(path, env)?;
    config.env_file = Some(file_path);
    Ok(config)
}

/// Where a secret came from (the config file, the environment, the secrets file), for
/// `check-config`.
pub fn secret_origin(c: &Config, secret: &Secret) -> String {
    match (secret.env, &c.env_file) {
        (None, _) => "the config file".to_string(),
        (Some(var), Some(file)) if process_env(var).is_none() => format!("{var} in {}", file.display()),
        (Some(var), _) => format!("{var} in the environment"),
    }
}

/// `KEY=value` lines as systemd reads them: `#` and `;` start comments, and one pair of
/// quotes around the value is removed.
fn env_file(text: &str) -> Vec<(String, String)> {
    let unquote = |v: &str| {
        for q in ['"', '\''] {
            if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
                return v[1..v.len() - 1].to_string();
            }
        }
        v.to_string()
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), unquote(v.trim())))
        .collect()
}

/// Fills in from [`DEFAULTS`] what the file leaves out, within a section key by key.
fn fill_defaults(file: &mut serde_json::Value) {
    use serde_json::Value::Object;
    let (Object(file), Ok(Object(defaults))) = (file, serde_json::from_slice(DEFAULTS.as_bytes())) else {
        return;
    };
    for (key, default) in defaults {
        match (file.get_mut(&key), default) {
            (Some(Object(section)), Object(keys)) => keys.into_iter().for_each(|(k, v)| {
                section.entry(k).or_insert(v);
            }),
            (Some(_), _) => {}
            (None, default) => {
                file.insert(key, default);
            }
        }
    }
}

/// Parses config text; `env` looks up environment variables (injected for tests).
pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let mut value = keys::read_json(text)?;
    keys::section("", None, &value)?;
    fill_defaults(&mut value);
    let mut config: Config =
        serde_path_to_error::deserialize(&value).map_err(|e| keys::value_error(&value, e))?;
    let t = &mut config.twilio;
    let mut secrets = vec![
        (ENV_CONTROL_TOKEN, &mut config.control.token),
        (ENV_TWILIO_AUTH_TOKEN, &mut t.auth_token),
        (ENV_TWILIO_API_KEY_SECRET, &mut t.api_key_secret),
    ];
    secrets.extend(config.mqtt.as_mut().map(|m| (ENV_MQTT_PASSWORD, &mut m.password)));
    secrets.extend(config.notify.ntfy.as_mut().map(|n| (ENV_NTFY_TOKEN, &mut n.token)));
    for (var, secret) in secrets {
        let Some(value) = env(var) else { continue };
        if var == ENV_CONTROL_TOKEN {
            check_token(&value).map_err(|m| format!("{var}: {m}"))?;
        }
        *secret = Some(Secret { value, env: Some(var) });
    }
    config.check()?;
    Ok(config)
}

impl Config {
    /// The rules that span keys, and the bounds that need a neighbour's value.
    fn check(&mut self) -> Result<(), String> {
        if self.max_window < MIN_WINDOW || self.max_window > MAX_WINDOW_BOUND {
            return Err(key_error("max_window", "must be between 1m and 24h"));
        }
        if self.default_window.is_zero() {
            self.default_window = DEFAULT_WINDOW.min(self.max_window);
        }
        if self.default_window < MIN_WINDOW || self.default_window > self.max_window {
            return Err(key_error("default_window", "must be between 1m and max_window"));
        }
        self.ring.check(&self.forward_to).map_err(|(key, why)| key_error(key, why))?;
        if self.no_answer_message.chars().count() > MAX_MESSAGE_CHARS {
            let why = format!("longer than {MAX_MESSAGE_CHARS} characters");
            return Err(key_error("no_answer_message", why));
        }
        match (&self.intercom_number, self.intercoms.is_empty()) {
            (Some(_), false) => {
                let why = "set either intercoms or intercom_number, not both (intercoms replaces it)";
                return Err(key_error("intercoms", why));
            }
            (Some(n), true) => {
                let unlock_digits = self.unlock_digits.clone();
                self.intercoms = vec![Entrance { name: None, number: n.clone(), unlock_digits }]
            }
            // Entries without their own tones play the top-level ones.
            (None, _) => self.intercoms.iter_mut().filter(|e| e.unlock_digits.is_empty()).for_each(|e| {
                e.unlock_digits.clone_from(&self.unlock_digits);
            }),
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(key_error("state_dir", "must not be empty"));
        }
        if self.twilio.auth_token.is_some() && self.webhook.public_url.is_none() {
            let why = "required when twilio.auth_token is set: signatures are computed over the public URL";
            return Err(key_error("webhook.public_url", why));
        }
        let t = &self.twilio;
        if t.api_key_sid.is_some() != t.api_key_secret.is_some() {
            let (sid, secret) = ("twilio.api_key_sid", "twilio.api_key_secret");
            let (key, other) = if t.api_key_sid.is_some() { (secret, sid) } else { (sid, secret) };
            return Err(key_error(key, format!("required when {other} is set: an API key is a pair")));
        }
        if !self.notify.sms_to.is_empty() {
            let why = "required when notify.sms_to is set: SMS go through Twilio's API";
            let no_credentials = t.api_key_sid.is_none() && t.auth_token.is_none();
            let or_api_key = " (or an API key: twilio.api_key_sid and api_key_secret)";
            for (key, missing, or) in [
                ("twilio.sms_from", t.sms_from.is_none(), ""),
                ("twilio.account_sid", t.account_sid.is_none(), ""),
                ("twilio.auth_token", no_credentials, or_api_key),
            ] {
                if missing {
                    return Err(key_error(key, format!("{why}{or}")));
                }
            }
        }
        if let Some(n) = &self.notify.ntfy {
            for (key, missing) in
                [("notify.ntfy.url", n.url.is_empty()), ("notify.ntfy.topic", n.topic.is_empty())]
            {
                if missing {
                    return Err(key_error(key, "required with notify.ntfy"));
                }
            }
            if n.token.is_some() && n.url.starts_with("http://") && !url::is_loopback(&n.url) {
                let why = "with a token: https://, so it does not cross the network in clear";
                return Err(key_error("notify.ntfy.url", why));
            }
        }
        if let Some(m) = &self.mqtt {
            if m.host.is_empty() {
                return Err(key_error("mqtt.host", "required: the broker's host name or IP address"));
            }
            if m.password.is_some() && m.username.is_none() {
                // MQTT 3.1.1 (3.1.2.9): no password without a user name.
                return Err(key_error("mqtt.username", "required when mqtt.password is set"));
            }
            let bad = |v: &str| v.len() > MAX_MQTT_CREDENTIAL_BYTES || v.contains(char::is_control);
            let why = format!("at most {MAX_MQTT_CREDENTIAL_BYTES} bytes, no control characters");
            if m.username.as_deref().is_some_and(bad) {
                return Err(key_error("mqtt.username", why));
            }
            if m.password.as_ref().is_some_and(|p| bad(p.expose())) {
                return Err(key_error("mqtt.password", why));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No secret in the environment (also for the other config modules' tests).
    pub(super) fn no_env(_: &str) -> Option<String> {
        None
    }

    /// The error a config gives, as the user reads it.
    pub(super) fn err(text: &str) -> String {
        parse(text, no_env).unwrap_err()
    }

    #[test]
    fn empty_object_gives_defaults() {
        let c = parse("{}", no_env).unwrap();
        assert_eq!(c.unlock_digits, "ww9");
        assert_eq!(c.default_window, Duration::from_secs(7200));
        assert_eq!(c.max_window, Duration::from_secs(43200));
        assert_eq!(c.webhook.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.control.listen.to_string(), "0.0.0.0:8081");
        assert!(c.intercom_number.is_none() && c.forward_to.is_empty());
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        assert!(err(r#"{"intercom_numbr": "+15558889999"}"#).contains("`intercom_numbr`: unknown key"));
        assert!(err(r#"{"webhook": {"listen": "127.0.0.1:1", "port": 2}}"#).contains("`webhook.port`"));
    }

    #[test]
    fn odd_key_names_stay_on_one_line() {
        let e = err(r#"{"co\ntrol\u001b[31m": 1}"#);
        assert!(!e.contains('\n') && !e.contains('\u{1b}') && e.contains("[31m`: unknown key"), "{e}");
        assert!(e.contains("co\\ntrol"), "{e}");
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = err("{\n  \"forward_to\": [\"+1555\",]\n}");
        assert!(e.starts_with("line 2, column"), "{e}");
        assert!(err("{} {}").starts_with("line 1, column 4"), "trailing text");
    }

    #[test]
    fn a_key_written_twice_is_refused_with_its_place() {
        let e = err("{\"intercom_number\": \"+15550000001\",\n \"intercom_number\": \"+15550000002\"}");
        assert!(e.starts_with("line 2,") && e.contains("\"intercom_number\" is written twice"), "{e}");
        let nested = err(r#"{"webhook": {"listen": "127.0.0.1:8080", "listen": "127.0.0.1:9090"}}"#);
        assert!(nested.contains("\"listen\" is written twice"), "{nested}");
    }

    #[test]
    fn wrong_types_and_values_name_the_key() {
        assert!(err(r#"{"forward_to": 5}"#).contains("`forward_to`"));
        assert!(err(r#"{"forward_to": ["+1 555", "nonsense"]}"#).contains("`forward_to`"));
        assert!(err(r#"{"unlock_digits": "9a"}"#).contains("`unlock_digits`"));
        assert!(err(r#"{"default_window": "13h"}"#).contains("`default_window`"));
        assert!(err(r#"{"max_window": "soon"}"#).contains("`max_window`"));
        assert!(err(r#"{"max_window": "0s"}"#).contains("`max_window`"));
        assert!(err(r#"{"dial_timeout": "2s"}"#).contains("`dial_timeout`"));
        assert!(err(r#"{"control": {"listen": "8081"}}"#).contains("`control.listen`"));
        assert!(err(r#"{"control": {"token": "short"}}"#).contains("`control.token`"));
        for bad in [
            r#"["a:80"]"#,
            r#"["10.0.0.1"]"#,
            r#"[""]"#,
            r#"["a b"]"#,
            r#""x""#,
            r#"["a","b","c","d","e","f","g","h","i"]"#,
        ] {
            let text = format!(r#"{{"control": {{"hosts": {bad}}}}}"#);
            assert!(err(&text).contains("`control.hosts`"), "{bad}: {}", err(&text));
        }
        let c = parse(r#"{"control": {"hosts": ["Intercom.LOCAL"]}}"#, |_| None).unwrap();
        assert_eq!(c.control.hosts, ["intercom.local"]);
        assert!(err(r#"{"webhook": {"public_url": "ftp://x"}}"#).contains("`webhook.public_url`"));
        assert!(err(r#"{"log_level": "loud"}"#).contains("`log_level`"));
        assert!(err(r#"{"webhook": []}"#).contains("`webhook`"));
        assert!(err("[]").contains("JSON object"));
    }

    #[test]
    fn auth_token_needs_public_url() {
        let e = err(r#"{"twilio": {"auth_token": "abc"}}"#);
        assert!(e.contains("`webhook.public_url`"), "{e}");
        assert!(!e.contains("abc"));
    }

    #[test]
    fn forward_to_takes_a_string_or_a_list() {
        let one = parse(r#"{"forward_to": "+1 (555) 222-3333"}"#, no_env).unwrap();
        assert_eq!(one.forward_to[0].as_str(), "+15552223333");
        let two = parse(r#"{"forward_to": ["+15552223333", "+447700900123"]}"#, no_env).unwrap();
        assert_eq!(two.forward_to.len(), 2);
    }

    #[test]
    fn environment_secrets_override_the_file() {
        let env = |k: &str| match k {
            ENV_CONTROL_TOKEN => Some("from-the-environment-123".to_string()),
            _ => None,
        };
        let c = parse(r#"{"control": {"token": "from-the-file-123456"}}"#, env).unwrap();
        assert_eq!(c.control.token.as_ref().unwrap().expose(), "from-the-environment-123");
        assert_eq!(c.control.token.unwrap().env, Some(ENV_CONTROL_TOKEN));
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let c = parse(
            r#"{"webhook": {"public_url": "https://x.example"}, "twilio": {"auth_token": "hunter2hunter2"}}"#,
            no_env,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn mqtt_section_defaults_bounds_and_password_from_the_environment() {
        assert!(parse("{}", no_env).unwrap().mqtt.is_none());
        let m = parse(r#"{"mqtt": {"host": "192.168.1.10"}}"#, no_env).unwrap().mqtt.unwrap();
        assert_eq!(
            (m.port(), m.topic_prefix.as_str(), m.discovery_prefix.as_str()),
            (1883, "intercom", "homeassistant")
        );
        let m = parse(r#"{"mqtt": {"host": "ha.local", "tls": true}}"#, no_env).unwrap().mqtt.unwrap();
        assert_eq!(m.port(), 8883);
        let env = |k: &str| (k == ENV_MQTT_PASSWORD).then(|| "from-env".to_string());
        let m = parse(r#"{"mqtt": {"host": "h", "username": "u", "password": "file"}}"#, env)
            .unwrap()
            .mqtt
            .unwrap();
        assert_eq!(m.password.map(|p| (p.value, p.env)), Some(("from-env".into(), Some(ENV_MQTT_PASSWORD))));
        for (bad, key) in [
            (r#"{"mqtt": {}}"#, "`mqtt.host`: required"),
            (r#"{"mqtt": null}"#, "`mqtt`"),
            (r#"{"mqtt": {"host": "h", "prot": 1}}"#, "`mqtt.prot`"),
            (r#"{"mqtt": {"host": "mqtt://h"}}"#, "`mqtt.host`"),
            (r#"{"mqtt": {"host": ""}}"#, "`mqtt.host`"),
            (r#"{"mqtt": {"host": "h", "port": 0}}"#, "`mqtt.port`"),
            (r#"{"mqtt": {"host": "h", "port": 65536}}"#, "`mqtt.port`"),
            (r#"{"mqtt": {"host": "h", "topic_prefix": "a/b"}}"#, "`mqtt.topic_prefix`"),
            (r##"{"mqtt": {"host": "h", "topic_prefix": "#"}}"##, "`mqtt.topic_prefix`"),
            (r#"{"mqtt": {"host": "h", "discovery_prefix": "ha/"}}"#, "`mqtt.discovery_prefix`"),
            (r#"{"mqtt": {"host": "h", "discovery_prefix": "a/+/b"}}"#, "`mqtt.discovery_prefix`"),
            (r#"{"mqtt": {"host": "h", "password": "secret-pw"}}"#, "`mqtt.username`"),
            (r#"{"mqtt": {"host": "h", "username": "a\nb"}}"#, "`mqtt.username`"),
        ] {
            let e = err(bad);
            assert!(e.contains(key) && !e.contains("secret-pw"), "{bad}: {e}");
        }
    }

    #[test]
    fn public_url_loses_its_trailing_slash() {
        let c = parse(r#"{"webhook": {"public_url": "https://door.example.com/"}}"#, no_env).unwrap();
        assert_eq!(c.webhook.public_url.unwrap(), "https://door.example.com");
    }

    #[test]
    fn notify_keys_default_and_check() {
        let c = parse("{}", no_env).unwrap();
        use EventKind::*;
        let events = [CallUnlocked, WindowOpened, WindowExpired, CallUnlockedCode, CodesLocked, OnceUsed];
        assert_eq!(c.notify.events, [&events[..], &[CallUnlockedSchedule, CallLetIn]].concat());
        assert!(!c.notify.is_active());
        assert_eq!(c.twilio.api_base, "https://api.twilio.com");
        let c = parse(
            r#"{"notify": {"webhook_url": "https://ntfy.sh/secret-topic?tpl=1", "events": ["call_rejected"]}}"#,
            no_env,
        )
        .unwrap();
        assert!(c.notify.is_active() && c.notify.events == [EventKind::CallRejected]);
        // ntfy: its server and topic are required; a token comes from the environment too,
        // and never travels in clear text.
        let e = err(r#"{"notify": {"ntfy": {"url": "https://ntfy.sh"}}}"#);
        assert_eq!(e, "config key `notify.ntfy.topic`: required with notify.ntfy");
        let e = err(r#"{"notify": {"ntfy": {"url": "http://ntfy.lan", "topic": "t", "token": "tk_1"}}}"#);
        assert!(e.starts_with("config key `notify.ntfy.url`: with a token: https://"), "{e}");
        assert!(err(r#"{"notify": {"ntfy": {"url": "https://ntfy.sh", "topic": "a b"}}}"#)
            .contains("notify.ntfy.topic"));
        let ntfy = r#"{"notify": {"events": [], "ntfy": {"url": "https://ntfy.sh", "topic": "door-7f3k"}}}"#;
        let n = parse(ntfy, |k| (k == ENV_NTFY_TOKEN).then(|| "tk_from_env".to_string())).unwrap().notify;
        assert!(n.is_active(), "ntfy gets every ring, whatever the events");
        let n = n.ntfy.unwrap();
        assert!(n.token.is_some_and(|t| t.env.is_some() && t.expose() == "tk_from_env"));
        assert!(!format!("{c:?}").contains("secret-topic"));
        assert!(
            err(r#"{"notify": {"events": ["call_unlocked", "door_opened"]}}"#).contains("`notify.events`")
        );
        assert!(err(r#"{"notify": {"events": "call_unlocked"}}"#).contains("`notify.events`"));
        assert!(err(r#"{"notify": {"webhook_url": "ntfy.sh/x"}}"#).contains("`notify.webhook_url`"));
        assert!(err(r#"{"notify": {"sms": []}}"#).contains("`notify.sms`"));
        assert!(err(r#"{"notify": {"sms_to": ["nope"]}}"#).contains("`notify.sms_to`"));
        assert!(err(r#"{"twilio": {"api_base": "localhost:1"}}"#).contains("`twilio.api_base`"));
        assert!(err(r#"{"twilio": {"sms_from": "x"}}"#).contains("`twilio.sms_from`"));
    }

    #[test]
    fn sms_needs_the_twilio_account() {
        let full = r#"{"notify": {"sms_to": "+15552223333"}, "webhook": {"public_url": "https://d.example"},
            "twilio": {"account_sid": "AC1", "auth_token": "tok-secret", "sms_from": "+15550001111"}}"#;
        let c = parse(full, no_env).unwrap();
        assert_eq!(c.notify.sms_to[0].as_str(), "+15552223333");
        for (key, drop) in [
            ("twilio.sms_from", r#""sms_from": "+15550001111""#),
            ("twilio.account_sid", r#""account_sid": "AC1""#),
            ("twilio.auth_token", r#""auth_token": "tok-secret""#),
        ] {
            let text = full.replace(&format!("{drop}, "), "").replace(&format!(", {drop}"), "");
            let e = err(&text);
            assert!(e.contains(&format!("`{key}`")) && !e.contains("tok-secret"), "{key}: {e}");
        }
        assert!(err(&full.replace("AC1", "AC/../x")).contains("`twilio.account_sid`"));
    }

    #[test]
    fn every_duration_is_bounded_and_names_its_key() {
        assert!(err(r#"{"max_window": "25h"}"#).contains("`max_window`: must be between 1m and 24h"));
        assert!(err(r#"{"max_window": "100000000000h"}"#).contains("`max_window`"));
        assert!(err(r#"{"max_window": "30s"}"#).contains("`max_window`"));
        assert!(err(r#"{"max_window": "2h", "default_window": "3h"}"#).contains("`default_window`"));
        assert!(err(r#"{"dial_timeout": "601s"}"#).contains("`dial_timeout`"));
        let c = parse(r#"{"max_window": "24h", "default_window": "24h"}"#, no_env).unwrap();
        assert_eq!(c.default_window, Duration::from_secs(86400));
        // Unset, the default window shrinks to a shorter max_window rather than failing.
        assert_eq!(
            parse(r#"{"max_window": "1h"}"#, no_env).unwrap().default_window,
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn sections_must_be_objects_and_list_items_are_numbered() {
        let e = err(r#"{"notify": [["+15552223333"]]}"#);
        assert!(
            e.starts_with("config key `notify`: expected a value like {") && e.ends_with("not a list"),
            "{e}"
        );
        assert!(err(r#"{"twilio": "AC1"}"#).contains("`twilio`"));
        let e = err(r#"{"notify": {"events": ["call_unlocked", "door_opened"]}}"#);
        assert!(e.contains("`notify.events`: item 2: ") && e.ends_with(r#"not "door_opened""#), "{e}");
        assert!(err("{} x").starts_with("line 1, column"), "{}", err("{} x"));
    }

    #[test]
    fn null_means_unset_for_optional_keys() {
        let c = parse(r#"{"intercom_number": null, "webhook": {"public_url": null}}"#, no_env).unwrap();
        assert!(c.intercom_number.is_none() && c.webhook.public_url.is_none());
        assert!(err(r#"{"max_window": null}"#).contains("`max_window`"));
    }

    #[test]
    fn twilio_setup_keys() {
        let c = parse(
            r#"{"twilio": {"number": "+1 555 000 1111", "fallback_url": "https://handler.twilio.com/twiml/EH1/",
                "api_key_sid": "SK1", "api_key_secret": "key-secret-1"}}"#,
            no_env,
        )
        .unwrap();
        assert_eq!(c.twilio.number.as_ref().unwrap().as_str(), "+15550001111");
        assert_eq!(c.twilio.fallback_url.as_deref(), Some("https://handler.twilio.com/twiml/EH1"));
        assert!(!format!("{:?}", c.twilio).contains("key-secret-1"));
        assert!(err(r#"{"twilio": {"api_key_sid": "SK1"}}"#).contains("`twilio.api_key_secret`: required"));
        assert!(err(r#"{"twilio": {"api_key_secret": "s"}}"#).contains("`twilio.api_key_sid`: required"));
        assert!(err(r#"{"twilio": {"api_key_sid": "SK/1", "api_key_secret": "s"}}"#)
            .contains("`twilio.api_key_sid`"));
        assert!(
            err(r#"{"twilio": {"fallback_url": "handler.twilio.com"}}"#).contains("`twilio.fallback_url`")
        );
        let env = |k: &str| (k == ENV_TWILIO_API_KEY_SECRET).then(|| "from-env".to_string());
        let c = parse(r#"{"twilio": {"api_key_sid": "SK1"}}"#, env).unwrap();
        assert!(c.twilio.api_key_secret.is_some_and(|s| s.env.is_some() && s.expose() == "from-env"));
        // An API key is enough for SMS.
        let sms = r#"{"notify": {"sms_to": "+15552223333"}, "twilio": {"account_sid": "AC1",
            "sms_from": "+15550001111", "api_key_sid": "SK1", "api_key_secret": "s"}}"#;
        assert!(parse(sms, no_env).is_ok());
    }

    #[test]
    fn env_files_read_like_systemd() {
        let text = "# secrets\n; also a comment\nINTERCOM_TWILIO_AUTH_TOKEN=\"quoted value\"\n\n  INTERCOM_CONTROL_TOKEN = plain-token-0123456789\nnot a pair\n";
        assert_eq!(
            env_file(text),
            [
                ("INTERCOM_TWILIO_AUTH_TOKEN".to_string(), "quoted value".to_string()),
                ("INTERCOM_CONTROL_TOKEN".to_string(), "plain-token-0123456789".to_string())
            ]
        );
    }

    #[test]
    fn type_errors_give_the_expected_form() {
        let e = err(r#"{"default_window": 90}"#);
        assert!(e.starts_with("config key `default_window`: ") && e.contains(r#"write "90m""#), "{e}");
        assert!(err(r#"{"max_window": "90"}"#).contains("write 90m"));
        let e = err(r#"{"intercom_number": 15558889999}"#);
        assert!(e.contains("`intercom_number`") && e.contains(r#"like "+15558889999""#), "{e}");
        let e = err(r#"{"webhook": {"listen": 8080}}"#);
        assert!(e.contains("`webhook.listen`") && e.contains(r#"like "127.0.0.1:8080""#), "{e}");
        let e = err(r#"{"forward_to": [15552223333]}"#);
        assert!(e.contains("`forward_to`") && e.contains("+15552223333"), "{e}");
    }

    #[test]
    fn public_url_with_a_path_is_refused_with_the_fix() {
        let e = err(r#"{"webhook": {"public_url": "https://door.example.com/voice"}}"#);
        assert!(e.starts_with("config key `webhook.public_url`: ") && e.ends_with("remove /voice"), "{e}");
        // The fallback URL is a TwiML Bin's: it has a path.
        assert!(
            parse(r#"{"twilio": {"fallback_url": "https://handler.twilio.com/twiml/EH1"}}"#, no_env).is_ok()
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(whole_minutes("1h30m").unwrap(), 90);
        assert_eq!(whole_minutes("120s").unwrap(), 2);
        assert!(whole_minutes("90s").is_err());
        assert!(whole_minutes("30s").is_err());
        assert!(whole_minutes("soon").is_err());
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("0m").is_err());
        assert!(parse_duration("-5m").is_err());
        assert_eq!(parse_duration("90").unwrap_err(), "90 has no unit: write 90m (minutes), or 2h, 1h30m");
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn several_intercoms_each_with_its_tones() {
        let c = parse(
            r#"{"unlock_digits": "ww9", "intercoms": [
                {"name": "street gate", "number": "+15558880001", "unlock_digits": "9"},
                {"name": "house door", "number": "+15558880002"}]}"#,
            no_env,
        )
        .unwrap();
        let got: Vec<_> =
            c.intercoms.iter().map(|e| (e.name.clone().unwrap(), e.unlock_digits.clone())).collect();
        assert_eq!(got, [("street gate".into(), "9".into()), ("house door".to_string(), "ww9".to_string())]);

        // The single form is one unnamed entrance, exactly as before.
        let c = parse(r#"{"intercom_number": "+15558889999", "unlock_digits": "1"}"#, no_env).unwrap();
        assert_eq!(c.intercoms.len(), 1);
        assert_eq!((c.intercoms[0].name.clone(), c.intercoms[0].unlock_digits.as_str()), (None, "1"));
        assert!(parse("{}", no_env).unwrap().intercoms.is_empty());

        let one = r#"{"name": "gate", "number": "+15558880001"}"#;
        for (bad, says) in [
            (format!(r#"{{"intercom_number": "+15558880009", "intercoms": [{one}]}}"#), "`intercoms`: set either"),
            (r#"{"intercoms": []}"#.to_string(), "expected 1 to 10"),
            (format!(r#"{{"intercoms": [{one}, {one}]}}"#), "used twice"),
            (
                r#"{"intercoms": [{"name": "a", "number": "+15558880001"}, {"name": "b", "number": "+1 555 888 0001"}]}"#.into(),
                "number +15558880001 is used twice",
            ),
            (r#"{"intercoms": [{"name": "", "number": "+15558880001"}]}"#.into(), "name must be"),
            (r#"{"intercoms": [{"name": "a", "number": "gate"}]}"#.into(), "item 1: number"),
            (r#"{"intercoms": [{"name": "a", "number": "+15558880001", "unlock_digits": "9x"}]}"#.into(), "`intercoms"),
            (r#"{"intercoms": [{"name": "a", "number": "+15558880001", "tones": "9"}]}"#.into(), "unknown"),
            (r#"{"intercoms": {"name": "a"}}"#.into(), "`intercoms`"),
        ] {
            let e = err(&bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
        let eleven: Vec<String> =
            (0..11).map(|i| format!(r#"{{"name": "d{i}", "number": "+155588800{i:02}"}}"#)).collect();
        assert!(err(&format!(r#"{{"intercoms": [{}]}}"#, eleven.join(","))).contains("expected 1 to 10"));
    }
}
