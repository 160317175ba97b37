//! The small commands: `open`, `close`, `status` (through the running server's control
//! API), `url` and `check-config`.

use std::error::Error;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::cli::client::{control_token, display_addr, Client};
use crate::cli::out::{say, say_raw};
use crate::config::{self, Config, Secret};
use crate::model::api::{OpenRequest, StatusBody};
use crate::util::local_address;
use crate::util::time::{human, local};

/// `open [DUR]` (whole minutes), or with `once` for the next visitor only.
pub fn open(config: &Config, duration: Option<Duration>, once: bool) -> Result<(), Box<dyn Error>> {
    let minutes = match duration {
        Some(d) => Some(window_minutes(d, config.max_window)?),
        None => None,
    };
    let request = OpenRequest { minutes, once: once.then_some(true) };
    print_status(&Client::new(config)?.post("/api/open", &request)?);
    Ok(())
}

pub fn close(config: &Config) -> Result<(), Box<dyn Error>> {
    print_status(&Client::new(config)?.post("/api/close", &())?);
    Ok(())
}

pub fn status(config: &Config) -> Result<(), Box<dyn Error>> {
    print_status(&Client::new(config)?.get("/api/status")?);
    Ok(())
}

pub fn url(config: &Config) -> Result<(), Box<dyn Error>> {
    let token = control_token(config)?;
    say!("http://{}/#t={}", display_addr(lan_address(config.control.listen)), token.expose());
    Ok(())
}

pub fn check_config(config: &Config) {
    say_raw!("{}", summary(config));
}

/// `open DUR` against the config's limit, in its key's terms rather than the API's `minutes`.
fn window_minutes(d: Duration, max_window: Duration) -> Result<u64, String> {
    let max = human(max_window);
    if d > max_window {
        return Err(format!("open: at most {max} (max_window); try {max} or raise max_window"));
    }
    Ok(d.as_secs() / 60)
}

fn print_status(status: &StatusBody) {
    if status.open {
        let once = if status.once { " for the next visitor only" } else { "" };
        say!(
            "open{once} until {} ({} left)",
            status.open_until.map_or("?".into(), local),
            human(Duration::from_secs(status.remaining_seconds))
        );
    } else if let Some(s) = &status.schedule {
        say!("window closed; open by schedule {:?} until {}", s.label, local(s.open_until));
    } else {
        say!("closed");
    }
    if let Some(problem) = &status.storage_problem {
        eprintln!("storage problem: {problem}");
    }
}

/// Where a phone on the LAN reaches it: the address of the interface with the default
/// route. Connecting a UDP socket only picks the route; it sends nothing.
pub(crate) fn lan_address(listen: SocketAddr) -> SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    let probe = UdpSocket::bind("0.0.0.0:0").and_then(|s| s.connect("192.0.2.1:9").and(s.local_addr()));
    match probe {
        Ok(local) if !local.ip().is_unspecified() => SocketAddr::new(local.ip(), listen.port()),
        _ => {
            eprintln!("intercom: no LAN address found; printing the loopback address");
            local_address(listen)
        }
    }
}

/// The named intercoms: `street gate +1555… (9), house door +1555… (ww9)`.
fn entrances(c: &Config) -> String {
    let named: Vec<String> = c
        .intercoms
        .iter()
        .filter_map(|e| Some(format!("{} {} ({})", e.name.as_deref()?, e.number, e.unlock_digits)))
        .collect();
    if named.is_empty() {
        "(not used)".into()
    } else {
        named.join(", ")
    }
}

/// `sequential: +1555… 20s, +1555… 25s; quiet 22:00-07:00: +1555…`.
fn ring_summary(c: &Config) -> String {
    use crate::config::ring::Order;
    use crate::config::values::format_clock;
    let mut out = match c.ring.order {
        Order::Simultaneous => "simultaneous".to_string(),
        Order::Sequential => {
            let each: Vec<String> = c
                .forward_to
                .iter()
                .map(|n| format!("{n} {}s", c.ring.ring_time(n, c.dial_timeout).as_secs()))
                .collect();
            format!("sequential: {}", each.join(", "))
        }
    };
    if let Some(q) = &c.ring.quiet_hours {
        let only: Vec<&str> = q.only.iter().map(|n| n.as_str()).collect();
        let only = if only.is_empty() { "nobody".to_string() } else { only.join(", ") };
        out.push_str(&format!("; quiet {}-{}: {only}", format_clock(q.from), format_clock(q.to)));
    }
    out
}

fn summary(c: &Config) -> String {
    let secret = |s: &Option<Secret>, from_env: bool, var: &str, unset: &str| match s {
        Some(_) => format!("set (from {})", config::secret_origin(c, from_env, var)),
        None => unset.to_string(),
    };
    let numbers = |v: &[crate::model::phone::PhoneNumber]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
        }
    };
    let rows = [
        (
            "intercom_number",
            match (&c.intercom_number, c.intercoms.is_empty()) {
                (Some(n), _) => n.to_string(),
                (None, false) => "(not set: see intercoms)".into(),
                (None, true) => "(not set: every call is rejected)".into(),
            },
        ),
        ("intercoms", entrances(c)),
        ("ring", ring_summary(c)),
        ("forward_to", numbers(&c.forward_to)),
        ("unlock_digits", c.unlock_digits.clone()),
        ("default_window", human(c.default_window)),
        ("max_window", human(c.max_window)),
        ("dial_timeout", human(c.dial_timeout)),
        ("no_answer_message", c.no_answer_message.clone()),
        ("state_dir", c.state_dir.display().to_string()),
        ("log_level", c.log_level.to_string().to_lowercase()),
        ("webhook.listen", c.webhook.listen.to_string()),
        ("webhook.public_url", c.webhook.public_url.clone().unwrap_or("(not set)".into())),
        ("control.listen", c.control.listen.to_string()),
        (
            "control.hosts",
            if c.control.hosts.is_empty() {
                "(IP addresses only)".into()
            } else {
                c.control.hosts.join(", ")
            },
        ),
        (
            "control.token",
            secret(
                &c.control.token,
                c.control.token_from_env,
                config::ENV_CONTROL_TOKEN,
                "(not set: generated on first start into state_dir/control-token)",
            ),
        ),
        ("twilio.account_sid", c.twilio.account_sid.clone().unwrap_or("(not set)".into())),
        ("twilio.sms_from", c.twilio.sms_from.as_ref().map_or("(not set)".into(), |n| n.to_string())),
        ("twilio.api_base", c.twilio.api_base.clone()),
        ("twilio.number", c.twilio.number.as_ref().map_or("(not set)".into(), |n| n.to_string())),
        ("twilio.fallback_url", c.twilio.fallback_url.clone().unwrap_or("(not set)".into())),
        (
            "twilio.api_key_sid",
            c.twilio.api_key_sid.clone().unwrap_or("(not set: REST calls use the auth token)".into()),
        ),
        (
            "twilio.api_key_secret",
            secret(
                &c.twilio.api_key_secret,
                c.twilio.api_key_secret_from_env,
                config::ENV_TWILIO_API_KEY_SECRET,
                "(not set)",
            ),
        ),
        (
            "notify.webhook_url",
            c.notify.webhook_url.as_ref().map_or("(not set)".into(), |u| {
                format!("{}/… (path and query hidden)", crate::config::url::url_origin(u.expose()))
            }),
        ),
        ("notify.sms_to", numbers(&c.notify.sms_to)),
        ("notify.events", c.notify.events.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")),
        ("limits.connection_lifetime", human(c.limits.connection_lifetime)),
        (
            "twilio.auth_token",
            secret(
                &c.twilio.auth_token,
                c.twilio.auth_token_from_env,
                config::ENV_TWILIO_AUTH_TOKEN,
                if c.webhook.allow_unsigned {
                    "(not set: WARNING, webhook.allow_unsigned: signatures are not checked)"
                } else {
                    "(not set: `serve` refuses to start without it)"
                },
            ),
        ),
    ];
    let mut rows = rows.to_vec();
    match &c.mqtt {
        None => rows.push(("mqtt", "(not set: Home Assistant discovery is off)".into())),
        Some(m) => rows.extend([
            ("mqtt.broker", format!("{}:{}{}", m.host, m.port(), if m.tls { " (TLS)" } else { "" })),
            ("mqtt.username", m.username.clone().unwrap_or("(not set)".into())),
            (
                "mqtt.password",
                secret(&m.password, m.password_from_env, config::ENV_MQTT_PASSWORD, "(not set)"),
            ),
            ("mqtt.topic_prefix", m.topic_prefix.clone()),
            ("mqtt.discovery_prefix", m.discovery_prefix.clone()),
        ]),
    }
    let mut out = String::from("config OK\n");
    for (k, v) in rows {
        out.push_str(&format!("  {k:<20} {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_is_held_to_max_window() {
        let (max, hour) = (Duration::from_secs(12 * 3600), Duration::from_secs(3600));
        assert_eq!(window_minutes(hour + hour / 2, max), Ok(90));
        assert_eq!(window_minutes(12 * hour, max), Ok(720));
        assert_eq!(
            window_minutes(24 * hour, max).unwrap_err(),
            "open: at most 12h (max_window); try 12h or raise max_window"
        );
    }

    #[test]
    fn summary_masks_secrets() {
        let c = config::parse(
            r#"{"webhook": {"public_url": "https://d.example"}, "twilio": {"auth_token": "supersecret-auth",
                "api_key_sid": "SK1", "api_key_secret": "supersecret-key"}, "control": {"token": "supersecret-control"},
                "mqtt": {"host": "ha.local", "username": "intercom", "password": "supersecret-mqtt"}}"#,
            |_| None,
        )
        .unwrap();
        let s = summary(&c);
        assert!(!s.contains("supersecret"), "{s}");
        assert!(s.contains("twilio.auth_token") && s.contains("set"));
        assert!(s.contains("mqtt.broker") && s.contains("ha.local:1883"), "{s}");
    }
}
