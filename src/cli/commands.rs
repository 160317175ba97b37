//! The small commands: `open`, `close`, `status`, `let-in` (through the running server's
//! control API), `url` and `check-config`.

use std::error::Error;
use std::fmt::Display;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;

use crate::cli::client::Client;
use crate::cli::out::{left, say};
use crate::config::entrances::Entrance;
use crate::config::{self, Config, Secret};
use crate::model::api::{LetInRequest, OpenRequest, SchedulesBody, StatusBody};
use crate::util::local_address;
use crate::util::time::{human, local};

/// `open [DUR]`, or with `once` for the next visitor only; at most `max_window`, said in
/// its key's terms rather than the API's `minutes`.
pub fn open(api: &Client, c: &Config, request: &OpenRequest) -> Result<(), Box<dyn Error>> {
    let max = human(c.max_window);
    if request.minutes.is_some_and(|m| m * 60 > c.max_window.as_secs()) {
        return Err(format!("open: at most {max} (max_window); try {max} or raise max_window").into());
    }
    api.post("/api/open", request).map(|status| print_status(&status))
}

/// `close`; a schedule that still lets visitors in is named, with how to pause it.
pub fn close(api: &Client, path: &Path) -> Result<(), Box<dyn Error>> {
    let status: StatusBody = api.post("/api/close", &())?;
    print_status(&status);
    let list = status.schedule.is_some().then(|| api.get::<SchedulesBody>("/api/schedules")).transpose()?;
    for s in list.iter().flat_map(|l| &l.schedules).filter(|s| s.open) {
        let pause = command(path, &format!("schedule pause {}", s.id));
        say!("to shut the door before then, pause schedule {:?}: {pause}", s.label);
    }
    Ok(())
}

/// `let-in`: the call that rings now, as the page's banner does it.
pub fn let_in(api: &Client) -> Result<(), Box<dyn Error>> {
    let ringing = api.get::<StatusBody>("/api/status")?.ringing.ok_or("nobody is ringing now")?;
    let _: StatusBody = api.post("/api/let-in", &LetInRequest { call: ringing.call })?;
    say!("let in: the door tones were played at {}", ringing.entrance.as_deref().unwrap_or("the door"));
    Ok(())
}

/// The page's address; a phone needs pairing to use it, and no URL carries the token.
pub fn url(config: &Config, path: &Path) {
    say!("{}/", page_address(config));
    say!("To use it on a phone, pair the phone first: {}", command(path, "pair \"Anna's phone\""));
}

/// `intercom WORDS`, as the person should type it: with `--config` when it is not the default.
pub fn command(path: &Path, words: &str) -> String {
    match path == Path::new(config::DEFAULT_CONFIG_PATH) {
        true => format!("intercom {words}"),
        false => format!("intercom {words} --config {}", path.display()),
    }
}

/// The window as the server says it is; a storage problem goes to stderr.
pub fn print_status(status: &StatusBody) {
    match (status.open_until, &status.schedule) {
        (Some(until), _) if status.open => {
            let once = if status.once { " for the next visitor only" } else { "" };
            say!("open{once} until {} ({})", local(until), left(status.remaining_seconds));
        }
        (_, Some(s)) => {
            say!("closed, but schedule {:?} lets visitors in until {}", s.label, local(s.open_until))
        }
        _ => say!("closed"),
    }
    if let Some(r) = &status.ringing {
        let at = r.entrance.as_deref().map_or(String::new(), |e| format!(" at the {e}"));
        say!("a visitor{at} is ringing your phones since {}: `intercom let-in` lets them in", local(r.since));
    }
    // The clock's doubt covers the codes' pause when both are set.
    if let Some(why) = status.clock_doubt.as_ref().or(status.codes_paused.as_ref()) {
        say!("{why}");
    }
    if let Some(problem) = &status.storage_problem {
        eprintln!("storage problem: {problem}");
    }
}

/// `http://address:port`, where a phone on the LAN reaches the page (an IPv6 address
/// comes out bracketed, as URLs need).
pub fn page_address(config: &Config) -> String {
    format!("http://{}", lan_address(config.control.listen))
}

/// Where a phone on the LAN reaches it: the address of the interface with the default
/// route. Connecting a UDP socket only picks the route; it sends nothing.
fn lan_address(listen: SocketAddr) -> SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    match UdpSocket::bind("0.0.0.0:0").and_then(|s| s.connect("192.0.2.1:9").and(s.local_addr())) {
        Ok(local) if !local.ip().is_unspecified() => SocketAddr::new(local.ip(), listen.port()),
        _ => {
            eprintln!("intercom: no LAN address found; printing the loopback address");
            local_address(listen)
        }
    }
}

/// `a, b, c`, or `none` for no items.
fn list<T: Display>(items: impl IntoIterator<Item = T>, none: &str) -> String {
    let all: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    match all.is_empty() {
        true => none.into(),
        false => all.join(", "),
    }
}

/// The value, or what its absence means.
fn or<T: Display>(value: Option<T>, unset: &str) -> String {
    value.map_or(unset.into(), |v| v.to_string())
}

/// `sequential: +1555… 20s, +1555… 25s; quiet 22:00-07:00: +1555…`.
fn ring_summary(c: &Config) -> String {
    use crate::config::ring::Order;
    use crate::config::values::format_clock;
    let each = c.forward_to.iter().map(|n| format!("{n} {}s", c.ring.ring_time(n, c.dial_timeout).as_secs()));
    let mut out = match c.ring.order {
        Order::Simultaneous => "simultaneous".to_string(),
        Order::Sequential => format!("sequential: {}", list(each, "")),
    };
    if let Some(q) = &c.ring.quiet_hours {
        let (from, to) = (format_clock(q.from), format_clock(q.to));
        out.push_str(&format!("; quiet {from}-{to}: {}", list(&q.only, "nobody")));
    }
    out
}

/// What `check-config` prints: every key's value, secrets masked.
pub fn summary(c: &Config) -> String {
    const UNSET: &str = "(not set)";
    let secret = |s: &Option<Secret>, unset: &str| {
        or(s.as_ref().map(|s| format!("set (from {})", config::secret_origin(c, s))), unset)
    };
    let intercom =
        if c.intercoms.is_empty() { "(not set: every call is rejected)" } else { "(not set: see intercoms)" };
    let named = |e: &Entrance| Some(format!("{} {} ({})", e.name.as_deref()?, e.number, e.unlock_digits));
    let hidden = |u: &Secret| format!("{}/… (path and query hidden)", config::url::url_origin(u.expose()));
    // The topic is a secret too.
    let ntfy = c.notify.ntfy.as_ref().map(|n| {
        let token = secret(&n.token, "not set");
        format!("{} (topic hidden), token {token}", n.url)
    });
    let generated = "(not set: generated on first start into state_dir/control-token)";
    let unsigned = match c.webhook.allow_unsigned {
        true => "(not set: WARNING, webhook.allow_unsigned: signatures are not checked)",
        false => "(not set: `serve` refuses to start without it)",
    };
    let t = &c.twilio;
    let mut rows = vec![
        ("intercom_number", or(c.intercom_number.as_ref(), intercom)),
        ("intercoms", list(c.intercoms.iter().filter_map(named), "(not used)")),
        ("ring", ring_summary(c)),
        ("forward_to", list(&c.forward_to, "(none)")),
        ("unlock_digits", c.unlock_digits.clone()),
        ("default_window", human(c.default_window)),
        ("max_window", human(c.max_window)),
        ("dial_timeout", human(c.dial_timeout)),
        ("no_answer_message", c.no_answer_message.clone()),
        ("state_dir", c.state_dir.display().to_string()),
        ("log_level", c.log_level.to_string().to_lowercase()),
        ("webhook.listen", c.webhook.listen.to_string()),
        ("webhook.public_url", or(c.webhook.public_url.as_ref(), UNSET)),
        ("control.listen", c.control.listen.to_string()),
        ("control.hosts", list(&c.control.hosts, "(IP addresses only)")),
        ("control.token", secret(&c.control.token, generated)),
        ("twilio.account_sid", or(t.account_sid.as_ref(), UNSET)),
        ("twilio.sms_from", or(t.sms_from.as_ref(), UNSET)),
        ("twilio.api_base", t.api_base.clone()),
        ("twilio.number", or(t.number.as_ref(), UNSET)),
        ("twilio.fallback_url", or(t.fallback_url.as_ref(), UNSET)),
        ("twilio.api_key_sid", or(t.api_key_sid.as_ref(), "(not set: REST calls use the auth token)")),
        ("twilio.api_key_secret", secret(&t.api_key_secret, UNSET)),
        ("notify.webhook_url", or(c.notify.webhook_url.as_ref().map(hidden), UNSET)),
        ("notify.sms_to", list(&c.notify.sms_to, "(none)")),
        ("notify.events", list(c.notify.events.iter().map(|e| e.name()), "")),
        ("notify.ntfy", or(ntfy, UNSET)),
        ("limits.connection_lifetime", human(c.limits.connection_lifetime)),
        ("twilio.auth_token", secret(&t.auth_token, unsigned)),
    ];
    match &c.mqtt {
        None => rows.push(("mqtt", "(not set: Home Assistant discovery is off)".into())),
        Some(m) => rows.extend([
            ("mqtt.broker", format!("{}:{}{}", m.host, m.port(), if m.tls { " (TLS)" } else { "" })),
            ("mqtt.username", or(m.username.as_ref(), UNSET)),
            ("mqtt.password", secret(&m.password, UNSET)),
            ("mqtt.topic_prefix", m.topic_prefix.clone()),
            ("mqtt.discovery_prefix", m.discovery_prefix.clone()),
        ]),
    }
    rows.iter().fold(String::from("config OK\n"), |out, (k, v)| out + &format!("  {k:<20} {v}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
