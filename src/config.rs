//! The configuration file: read and checked once at start into typed structs.
//!
//! Every error names the key it is about (or the line and column for JSON syntax errors),
//! so a user can fix a bad config from one line of output. Secrets are wrapped in
//! [`Secret`], whose `Debug` and `Display` never show the value.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::phone::PhoneNumber;
use crate::record::EventKind;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/intercom/intercom.json";
const DEFAULT_UNLOCK_DIGITS: &str = "ww9";
const DEFAULT_WINDOW: Duration = Duration::from_secs(2 * 3600);
const DEFAULT_MAX_WINDOW: Duration = Duration::from_secs(12 * 3600);
const DEFAULT_STATE_DIR: &str = "/var/lib/intercom";
const DEFAULT_WEBHOOK_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_CONTROL_LISTEN: &str = "0.0.0.0:8081";
/// How long `<Dial>` rings the resident's phones. Twilio's own default is 30 s; 25 s ends
/// before most mobile voicemail picks up, so the visitor hears the fallback message.
const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(25);
const DEFAULT_NO_ANSWER_MESSAGE: &str = "Sorry, nobody is answering. Please try again later.";
/// A window is at least a minute: the API counts in minutes.
const MIN_WINDOW: Duration = Duration::from_secs(60);
/// Twilio accepts `<Dial timeout>` from 5 to 600 seconds.
const DIAL_TIMEOUT_RANGE: (u64, u64) = (5, 600);
/// Long digit strings would be a typo, not a door code; Twilio plays them slowly.
const MAX_UNLOCK_DIGITS: usize = 32;
/// `<Say>` text is spoken to a visitor; a paragraph is plenty.
const MAX_MESSAGE_CHARS: usize = 500;

/// Twilio's REST API; `twilio.api_base` replaces it (tests point it at a local server).
pub const DEFAULT_TWILIO_API_BASE: &str = "https://api.twilio.com";

pub const ENV_TWILIO_AUTH_TOKEN: &str = "INTERCOM_TWILIO_AUTH_TOKEN";
pub const ENV_CONTROL_TOKEN: &str = "INTERCOM_CONTROL_TOKEN";

/// A value that must never reach a log line or `check-config` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub intercom_number: Option<PhoneNumber>,
    pub forward_to: Vec<PhoneNumber>,
    pub unlock_digits: String,
    pub default_window: Duration,
    pub max_window: Duration,
    pub dial_timeout: Duration,
    pub no_answer_message: String,
    pub state_dir: PathBuf,
    pub log_level: log::LevelFilter,
    pub webhook: WebhookConfig,
    pub control: ControlConfig,
    pub twilio: TwilioConfig,
    pub notify: NotifyConfig,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub listen: SocketAddr,
    /// The URL Twilio calls, without a trailing slash; signatures are computed over it.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ControlConfig {
    pub listen: SocketAddr,
    pub token: Option<Secret>,
    pub token_from_env: bool,
}

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub account_sid: Option<String>,
    pub auth_token: Option<Secret>,
    pub auth_token_from_env: bool,
    /// The Twilio number SMS notifications come from.
    pub sms_from: Option<PhoneNumber>,
    /// Without a trailing slash.
    pub api_base: String,
}

/// What to tell whom, and about which events.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// A secret: ntfy topics and Home Assistant webhook ids work as passwords.
    pub webhook_url: Option<Secret>,
    pub sms_to: Vec<PhoneNumber>,
    pub events: Vec<EventKind>,
}

impl NotifyConfig {
    pub fn is_active(&self) -> bool {
        (self.webhook_url.is_some() || !self.sms_to.is_empty()) && !self.events.is_empty()
    }
}

/// A config error: one line that names the key, or the JSON position.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Key names come from the file: control characters are escaped so the error stays one
/// line and cannot drive the terminal (found by the config fuzz target).
fn key_error(key: &str, msg: impl fmt::Display) -> ConfigError {
    ConfigError(format!("config key `{}`: {msg}", key.escape_debug()))
}

/// Reads and checks the config file, then applies secrets from the environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read config {}: {e}", path.display())))?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    parse(&text, env).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
}

/// Parses config text; `env` looks up environment variables (injected for tests).
pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        ConfigError(format!(
            "line {}, column {}: invalid JSON: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        ))
    })?;
    let top = Section::root(&root)?;
    top.only(&[
        "intercom_number",
        "forward_to",
        "unlock_digits",
        "default_window",
        "max_window",
        "dial_timeout",
        "no_answer_message",
        "state_dir",
        "log_level",
        "webhook",
        "control",
        "twilio",
        "notify",
    ])?;

    let intercom_number =
        top.opt_str("intercom_number")?.map(|s| top.phone("intercom_number", s)).transpose()?;
    let forward_to = top.phone_list("forward_to")?;
    let unlock_digits = match top.opt_str("unlock_digits")? {
        Some(d) => check_digits(d).map_err(|m| top.err("unlock_digits", m))?,
        None => DEFAULT_UNLOCK_DIGITS.to_string(),
    };
    let max_window = top.opt_duration("max_window")?.unwrap_or(DEFAULT_MAX_WINDOW);
    if max_window < MIN_WINDOW {
        return Err(top.err("max_window", "must be at least 1m"));
    }
    let default_window = top.opt_duration("default_window")?.unwrap_or(DEFAULT_WINDOW.min(max_window));
    if default_window < MIN_WINDOW || default_window > max_window {
        return Err(top.err("default_window", "must be between 1m and max_window"));
    }
    let dial_timeout = top.opt_duration("dial_timeout")?.unwrap_or(DEFAULT_DIAL_TIMEOUT);
    let (lo, hi) = DIAL_TIMEOUT_RANGE;
    if dial_timeout.as_secs() < lo || dial_timeout.as_secs() > hi || dial_timeout.subsec_nanos() != 0 {
        return Err(top.err("dial_timeout", format!("must be whole seconds between {lo}s and {hi}s")));
    }
    let no_answer_message =
        top.opt_str("no_answer_message")?.unwrap_or(DEFAULT_NO_ANSWER_MESSAGE).to_string();
    if no_answer_message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(top.err("no_answer_message", format!("longer than {MAX_MESSAGE_CHARS} characters")));
    }
    let state_dir = PathBuf::from(top.opt_str("state_dir")?.unwrap_or(DEFAULT_STATE_DIR));
    if state_dir.as_os_str().is_empty() {
        return Err(top.err("state_dir", "must not be empty"));
    }
    let log_level = match top.opt_str("log_level")? {
        Some(l) => {
            l.parse().map_err(|_| top.err("log_level", "expected off, error, warn, info, debug or trace"))?
        }
        None => log::LevelFilter::Info,
    };

    let webhook = top.section("webhook")?;
    webhook.only(&["listen", "public_url"])?;
    let public_url = webhook
        .opt_str("public_url")?
        .map(|u| check_public_url(u).map_err(|m| webhook.err("public_url", m)))
        .transpose()?;
    let webhook = WebhookConfig { listen: webhook.listen(DEFAULT_WEBHOOK_LISTEN)?, public_url };

    let control = top.section("control")?;
    control.only(&["listen", "token"])?;
    let (token, token_from_env) = secret(&control, "token", env(ENV_CONTROL_TOKEN))?;
    if let Some(t) = &token {
        check_token(t.expose()).map_err(|m| control.err("token", m))?;
    }
    let control = ControlConfig { listen: control.listen(DEFAULT_CONTROL_LISTEN)?, token, token_from_env };

    let twilio = top.section("twilio")?;
    twilio.only(&["account_sid", "auth_token", "sms_from", "api_base"])?;
    let account_sid = twilio.opt_str("account_sid")?.map(str::to_string);
    let (auth_token, auth_token_from_env) = secret(&twilio, "auth_token", env(ENV_TWILIO_AUTH_TOKEN))?;
    if auth_token.is_some() && webhook.public_url.is_none() {
        return Err(key_error(
            "webhook.public_url",
            "required when twilio.auth_token is set: signatures are computed over the public URL",
        ));
    }
    let sms_from = twilio.opt_str("sms_from")?.map(|s| twilio.phone("sms_from", s)).transpose()?;
    let api_base = twilio
        .opt_str("api_base")?
        .map(|u| check_public_url(u).map_err(|m| twilio.err("api_base", m)))
        .transpose()?
        .unwrap_or_else(|| DEFAULT_TWILIO_API_BASE.to_string());
    let twilio = TwilioConfig { account_sid, auth_token, auth_token_from_env, sms_from, api_base };

    let notify = top.section("notify")?;
    notify.only(&["webhook_url", "sms_to", "events"])?;
    let webhook_url = notify
        .opt_str("webhook_url")?
        .map(|u| check_target_url(u).map_err(|m| notify.err("webhook_url", m)))
        .transpose()?
        .map(Secret::new);
    let sms_to = notify.phone_list("sms_to")?;
    let events = match notify.get("events") {
        None => EventKind::DEFAULT_NOTIFY.to_vec(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().and_then(EventKind::from_name).ok_or_else(|| {
                    let known: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
                    notify.err("events", format!("unknown event {i} (known: {})", known.join(", ")))
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(notify.err("events", "expected a list of event names")),
    };
    if !sms_to.is_empty() {
        let why = "required when notify.sms_to is set: SMS go through Twilio's API";
        if twilio.sms_from.is_none() {
            return Err(key_error("twilio.sms_from", why));
        }
        match &twilio.account_sid {
            None => return Err(key_error("twilio.account_sid", why)),
            Some(sid) if sid.is_empty() || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                return Err(key_error("twilio.account_sid", "expected letters and digits (AC…)"))
            }
            Some(_) => {}
        }
        if twilio.auth_token.is_none() {
            return Err(key_error("twilio.auth_token", why));
        }
    }
    let notify = NotifyConfig { webhook_url, sms_to, events };

    Ok(Config {
        intercom_number,
        forward_to,
        unlock_digits,
        default_window,
        max_window,
        dial_timeout,
        no_answer_message,
        state_dir,
        log_level,
        webhook,
        control,
        twilio,
        notify,
    })
}

/// A secret from the file, overridden by the environment when set there.
fn secret(sec: &Section, key: &str, from_env: Option<String>) -> Result<(Option<Secret>, bool), ConfigError> {
    let in_file = sec.opt_str(key)?.filter(|s| !s.is_empty()).map(|s| Secret::new(s.to_string()));
    Ok(match from_env {
        Some(v) => (Some(Secret::new(v)), true),
        None => (in_file, false),
    })
}

/// serde_json appends " at line L column C"; we print the position first instead.
fn strip_position(msg: &str) -> &str {
    msg.rfind(" at line ").map_or(msg, |i| &msg[..i])
}

fn check_digits(d: &str) -> Result<String, String> {
    let ok = !d.is_empty()
        && d.len() <= MAX_UNLOCK_DIGITS
        && d.chars().all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'w' | 'W'));
    if ok {
        Ok(d.to_string())
    } else {
        Err(format!("expected 1 to {MAX_UNLOCK_DIGITS} of 0-9, *, # and w (half-second pause)"))
    }
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

fn check_public_url(u: &str) -> Result<String, String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or("must start with https:// (or http://)")?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err("has no host".into());
    }
    if u.contains(['?', '#']) || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not hold a query, fragment or spaces".into());
    }
    Ok(u.trim_end_matches('/').to_string())
}

/// A notification target: http(s), a host, no spaces; a query is allowed (ntfy templates).
fn check_target_url(u: &str) -> Result<String, String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or("must start with https:// (or http://)")?;
    if rest.split(['/', '?', '#']).next().unwrap_or("").is_empty() {
        return Err("has no host".into());
    }
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not hold spaces".into());
    }
    Ok(u.to_string())
}

/// The part of a URL that may be logged: scheme and host, never the path or query,
/// which often hold the secret (an ntfy topic, a Home Assistant webhook id).
pub fn url_origin(u: &str) -> &str {
    let after_scheme = u.find("://").map_or(0, |i| i + 3);
    let end = u[after_scheme..].find(['/', '?', '#']).map_or(u.len(), |i| after_scheme + i);
    let origin = &u[..end];
    // user:password@host: drop the credentials too.
    match origin[after_scheme..].rfind('@') {
        Some(at) => &origin[after_scheme + at + 1..],
        None => origin,
    }
}

/// One JSON object of the config, with its dotted path for error messages.
struct Section<'a> {
    path: String,
    map: Option<&'a Map<String, Value>>,
}

impl<'a> Section<'a> {
    fn root(v: &'a Value) -> Result<Section<'a>, ConfigError> {
        match v {
            Value::Object(m) => Ok(Section { path: String::new(), map: Some(m) }),
            _ => Err(ConfigError("the config must be a JSON object".into())),
        }
    }

    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn err(&self, key: &str, msg: impl fmt::Display) -> ConfigError {
        key_error(&self.key(key), msg)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }

    /// Unknown keys are errors: a typo must not silently fall back to a default.
    fn only(&self, known: &[&str]) -> Result<(), ConfigError> {
        for k in self.map.into_iter().flat_map(|m| m.keys()) {
            if !known.contains(&k.as_str()) {
                return Err(key_error(
                    &self.key(k),
                    format!("unknown key (known here: {})", known.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn section(&self, key: &str) -> Result<Section<'a>, ConfigError> {
        let path = self.key(key);
        match self.get(key) {
            None => Ok(Section { path, map: None }),
            Some(Value::Object(m)) => Ok(Section { path, map: Some(m) }),
            Some(_) => Err(key_error(&path, "expected an object")),
        }
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(key, "expected a string")),
        }
    }

    fn phone(&self, key: &str, s: &str) -> Result<PhoneNumber, ConfigError> {
        PhoneNumber::parse(s).map_err(|m| self.err(key, format!("{m}: {s:?}")))
    }

    /// A list of numbers, or a single number as a string.
    fn phone_list(&self, key: &str) -> Result<Vec<PhoneNumber>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![self.phone(key, s)?]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => self.phone(key, s),
                    _ => Err(self.err(key, "expected phone numbers as strings")),
                })
                .collect(),
            Some(_) => Err(self.err(key, "expected a phone number or a list of them")),
        }
    }

    fn opt_duration(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        self.opt_str(key)?.map(|s| parse_duration(s).map_err(|m| self.err(key, m))).transpose()
    }

    fn listen(&self, default: &str) -> Result<SocketAddr, ConfigError> {
        let s = self.opt_str("listen")?.unwrap_or(default);
        s.parse().map_err(|_| {
            self.err("listen", format!("expected an IP address and port like {default}, got {s:?}"))
        })
    }
}

/// Parses "90m", "2h", "1h30m", "45s". Zero is refused: no window or timeout is empty.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); write it like 90m, 2h or 1h30m"))?;
    if d.is_zero() {
        return Err(format!("invalid duration {s:?}: must be more than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn err(text: &str) -> String {
        parse(text, no_env).unwrap_err().0
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
        assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e}");
        assert!(e.contains("co\\ntrol"), "{e}");
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = err("{\n  \"forward_to\": [\"+1555\",]\n}");
        assert!(e.starts_with("line 2, column"), "{e}");
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
        assert_eq!(c.control.token.unwrap().expose(), "from-the-environment-123");
        assert!(c.control.token_from_env);
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
    fn public_url_loses_its_trailing_slash() {
        let c = parse(r#"{"webhook": {"public_url": "https://door.example.com/"}}"#, no_env).unwrap();
        assert_eq!(c.webhook.public_url.unwrap(), "https://door.example.com");
    }

    #[test]
    fn notify_keys_default_and_check() {
        let c = parse("{}", no_env).unwrap();
        assert_eq!(c.notify.events, EventKind::DEFAULT_NOTIFY);
        assert!(!c.notify.is_active());
        assert_eq!(c.twilio.api_base, "https://api.twilio.com");
        let c = parse(
            r#"{"notify": {"webhook_url": "https://ntfy.sh/secret-topic?tpl=1", "events": ["call_rejected"]}}"#,
            no_env,
        )
        .unwrap();
        assert!(c.notify.is_active() && c.notify.events == [EventKind::CallRejected]);
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
    fn url_origins_hide_paths_queries_and_credentials() {
        assert_eq!(url_origin("https://ntfy.sh/topic?x=1"), "https://ntfy.sh");
        assert_eq!(url_origin("http://ha.local:8123/api/webhook/id"), "http://ha.local:8123");
        assert_eq!(url_origin("https://user:pw@host.example/p"), "host.example");
        assert_eq!(url_origin("https://host.example"), "https://host.example");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("0m").is_err());
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("").is_err());
    }
}
