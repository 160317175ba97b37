//! `intercom doctor`: checks the whole chain a call travels (config, the running server,
//! the tunnel to this very process, Twilio's number, disk, clock) and prints one line per
//! check: `ok`, `warn` or `FAIL`, each warning and failure with its fix in one sentence,
//! and one verdict per config key (a key that still holds the template's placeholder is
//! not checked further).
//!
//! Every network check has its own short timeout, so a hung tunnel costs one timeout and
//! doctor still ends within about half a minute. Doctor only reads: the one file it
//! writes is a probe in the state directory, removed at once.

use std::fmt::Display;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cli::client::Client;
use crate::cli::commands::command;
use crate::cli::files::{env_file, readable};
use crate::cli::out::say;
use crate::cli::setup::{self, VOICE_METHOD};
use crate::config::{self, Config};
use crate::model::api::{EventsBody, StatusBody};
use crate::model::record::Record;
use crate::system::outbound::{Agent, Failure};
use crate::twilio::rest::Rest;
use crate::util::time::{human, local};
use crate::util::{local_address, loggable, INSTANCE_HEADER};
use crate::{store::token, system::clock};

/// The server's listeners are on this machine: an answer slower than this is a fault.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(3);
/// `public_url` goes out through the internet and the tunnel; Twilio itself gives the
/// whole webhook 15 s. Long enough for a slow uplink, short enough for the 30 s total.
const PUBLIC_TIMEOUT: Duration = Duration::from_secs(8);
/// One request to Twilio's REST API.
const TWILIO_TIMEOUT: Duration = Duration::from_secs(6);
/// History lines read to find the newest call (windows and refusals come in between).
const EVENTS_LOOKED_AT: usize = 100;
/// Below this the history and state can no longer be written: calls still forward, but
/// windows fail to open.
const MIN_FREE_BYTES: u64 = 1024 * 1024;
/// Below this, warn: a log rotation or an OS update will soon fill the rest.
const LOW_FREE_BYTES: u64 = 32 * 1024 * 1024;

const OK: &str = "ok  ";
const WARN: &str = "warn";
const FAIL: &str = "FAIL";
/// Not checked because a failure above already explains it.
const SKIP: &str = "skip";

/// The lines printed so far, as far as the verdict goes.
struct Report {
    failed: bool,
    /// The config keys that still hold the template's placeholder: their one verdict.
    unfilled: Vec<String>,
}

impl Report {
    fn line(&mut self, tag: &str, text: impl Display) {
        self.failed |= tag == FAIL;
        say!("{tag} {text}");
    }

    /// The value; or `None`, after a line with `tag` and the error.
    fn or_line<T>(&mut self, tag: &str, result: Result<T, impl Display>) -> Option<T> {
        result.map_err(|e| self.line(tag, e)).ok()
    }

    /// Whether `key` has a value of its own to check (not a placeholder reported above).
    fn filled(&self, key: &str) -> bool {
        !self.unfilled.iter().any(|e| e.contains(&format!("`{key}`")))
    }
}

/// Prints the checks as they run. Returns whether none failed.
pub fn run(path: &Path) -> bool {
    let mut r = Report { failed: false, unfilled: Vec::new() };
    // A file this user may not read is not a mistake in the config.
    let check = |e| format!("{e}; fix it, then check with `intercom check-config`");
    let loaded = readable(path).and_then(|()| readable(&env_file(path)));
    let loaded = loaded.and_then(|()| config::load_with_env_file(path).map_err(check));
    let Some(config) = r.or_line(FAIL, loaded) else { return false };
    r.line(OK, format!("config {} is valid", path.display()));
    r.unfilled = config::unfilled_placeholders(&config);
    for e in r.unfilled.clone() {
        r.line(FAIL, e);
    }
    check_config(&mut r, &config, path);
    // The server is the root of the listener, tunnel and history checks: when it is down
    // they would only repeat that, so they are named as skipped instead.
    let server = check_server(&mut r, &config, path);
    if let Some((_, instance)) = &server {
        check_webhook_listener(&mut r, &config, instance.as_deref());
        check_public_url(&mut r, &config, instance.as_deref());
    } else {
        let later = "the webhook listener, the tunnel (webhook.public_url), the signature checks and the history are checked once the server runs";
        r.line(SKIP, later);
    }
    check_twilio(&mut r, &config);
    check_state_dir(&mut r, &config);
    check_clock(&mut r);
    if let Some((client, _)) = &server {
        check_newest_call(&mut r, client);
    }
    !r.failed
}

/// `sudo ` for a command that needs root, or nothing when this already is root.
fn sudo() -> &'static str {
    match crate::util::ownership::effective_uid() == Some(0) {
        true => "",
        false => "sudo ",
    }
}

/// How to start the server: the systemd unit, or by hand outside systemd.
fn start_hint(path: &Path) -> String {
    let sudo = sudo();
    format!(
        "start it with `{sudo}systemctl start intercom` and read `{sudo}journalctl -u intercom` (outside systemd: `{}`)",
        command(path, "serve")
    )
}

fn check_config(r: &mut Report, c: &Config, path: &Path) {
    let each: Vec<String> =
        c.intercoms.iter().map(|e| format!("{} {}", e.name.as_deref().unwrap_or("?"), e.number)).collect();
    match (&c.intercom_number, each.is_empty()) {
        _ if !r.filled("intercom_number") => {}
        (Some(n), _) => r.line(OK, format!("intercom_number is {n}")),
        (None, false) => r.line(OK, format!("intercoms: {}", each.join(", "))),
        (None, true) => r.line(
            FAIL,
            "intercom_number (or intercoms) is not set, so every call is rejected: set it to the number your intercom calls from",
        ),
    }
    let to: Vec<_> = c.forward_to.iter().map(|n| n.as_str()).collect();
    match to.is_empty() {
        _ if !r.filled("forward_to") => {}
        true => r.line(FAIL, "forward_to is empty, so nobody is called: set it to your phone number"),
        false => r.line(OK, format!("forward_to is {}", to.join(", "))),
    }
    // What the files say only where `serve` would refuse them; whether signatures are
    // checked is the running server's to say (`check_signatures`).
    if c.twilio.auth_token.is_none() && !c.webhook.allow_unsigned {
        let fix = token_fix(path);
        r.line(FAIL, format!("twilio.auth_token is not set, so the server refuses to start: {fix}"));
    }
}

fn token_fix(path: &Path) -> String {
    let (var, file) = (config::ENV_TWILIO_AUTH_TOKEN, env_file(path).display().to_string());
    format!("put {var}=<the Auth Token from the Twilio console> in {file} (or run `intercom init`)")
}

/// Whether the running server checks Twilio's signatures, as it says: a token in the
/// files that a hand-started server never read must not pass for one.
fn check_signatures(r: &mut Report, c: &Config, path: &Path, checked: Option<bool>) {
    let fix = match c.twilio.auth_token {
        Some(_) => format!("it was started without the token in {}: restart it with `{}systemctl restart intercom`, which reads that file", env_file(path).display(), sudo()),
        None => format!("{}, remove webhook.allow_unsigned and restart it", token_fix(path)),
    };
    match checked {
        Some(true) => r.line(OK, "the server checks Twilio's signature on every webhook"),
        Some(false) => r.line(FAIL, format!("the server does not check Twilio's signatures (webhook.allow_unsigned), so anyone who finds the URL can fake the intercom: {fix}")),
        None => r.line(WARN, "the server does not say whether it checks Twilio's signatures: it is an older version; upgrade it"),
    }
}

/// The client of the control API, and the server's instance id, if the server answers.
fn check_server(r: &mut Report, c: &Config, path: &Path) -> Option<(Client, Option<String>)> {
    // Neither a fixed token nor the one the server makes at its first start: it never ran.
    if c.control.token.is_none() && matches!(token::read_token(&c.state_dir), Ok(None)) {
        let dir = c.state_dir.display();
        let never = format!("the server is not running (it has not started yet: no control token in {dir})");
        r.line(FAIL, format!("{never}: {}", start_hint(path)));
        return None;
    }
    let down = |e| format!("the server is not running or not reachable ({e}): {}", start_hint(path));
    let answer = Client::new(c, LOCAL_TIMEOUT)
        .map_err(|e| format!("cannot read the control token: {e}"))
        .and_then(|client| Ok((client.get::<StatusBody>("/api/status").map_err(down)?, client)));
    let (s, client) = r.or_line(FAIL, answer)?;
    let until = s.open_until.map_or("?".into(), local);
    let window = if s.open { format!("open until {until}") } else { "closed".into() };
    r.line(OK, format!("the server is running (window {window})"));
    check_signatures(r, c, path, s.signatures_checked);
    if s.instance.is_none() {
        r.line(WARN, "the server does not report an instance id: it is an older version; upgrade it");
    }
    Some((client, s.instance))
}

/// `/healthz` at `url`: whether it answered, and with which instance id.
fn healthz(url: &str, timeout: Duration) -> Result<(u16, Option<String>), String> {
    // The public URL is usually https: verified against the system's CA bundle.
    let answer = Agent::https(timeout).send("GET", url, &[], None).map_err(|e| match e {
        Failure::TimedOut => format!("no answer within {}s", timeout.as_secs()),
        e => e.to_string(),
    })?;
    Ok((answer.status, answer.header(INSTANCE_HEADER).map(loggable)))
}

fn check_webhook_listener(r: &mut Report, c: &Config, instance: Option<&str>) {
    let addr = local_address(c.webhook.listen);
    match (healthz(&format!("http://{addr}/healthz"), LOCAL_TIMEOUT), instance) {
        (Ok((200, Some(id))), Some(ours)) if id == ours => r.line(OK, format!("the webhook listener answers on {addr}")),
        (Ok((200, Some(_))), Some(_)) => r.line(FAIL, format!("another intercom process answers on {addr}: stop it, then restart the server")),
        (Ok((200, _)), None) => r.line(WARN, format!("something answers on {addr} but the server does not: start the server as above")),
        (Ok((status, _)), _) => r.line(FAIL, format!("{addr} answers /healthz with HTTP {status}, so it is not intercom: free webhook.listen or choose another port")),
        (Err(e), _) => r.line(FAIL, format!("the webhook listener {addr} does not answer ({e}): start the server, or fix webhook.listen")),
    }
}

fn check_public_url(r: &mut Report, c: &Config, instance: Option<&str>) {
    let Some(public) = c.webhook.public_url.as_ref().filter(|_| r.filled("webhook.public_url")) else {
        if c.webhook.public_url.is_none() {
            r.line(FAIL, "webhook.public_url is not set: set it to the https URL your tunnel serves");
        }
        return;
    };
    let url = format!("{public}/healthz");
    let tunnel =
        format!("point the tunnel (or reverse proxy) at this machine's webhook.listen, {}", c.webhook.listen);
    match healthz(&url, PUBLIC_TIMEOUT) {
        Err(e) => r.line(FAIL, format!("{url} does not answer ({e}): check the tunnel with `systemctl status intercom-tunnel` and {tunnel}")),
        Ok((200, Some(id))) => match instance {
            Some(ours) if id == ours => r.line(OK, format!("{url} reaches this very server process")),
            Some(_) => r.line(FAIL, format!("{url} is answered by another intercom process (a stale tunnel or an old install): {tunnel}")),
            None => r.line(WARN, format!("{url} answers as an intercom, but without a running server here it cannot be this one: start the server")),
        },
        Ok((200, None)) => r.line(FAIL, format!("{url} is answered by another HTTP server, not intercom: {tunnel}")),
        Ok((status, _)) => r.line(FAIL, format!("{url} answers HTTP {status}, so Twilio's calls fail: {tunnel}")),
    }
}

fn check_twilio(r: &mut Report, c: &Config) {
    if !r.filled("twilio.number") || !r.filled("twilio.account_sid") {
        return; // Twilio would only be asked about the template's placeholders
    }
    let Some(number) = &c.twilio.number else {
        return r.line(WARN, "twilio.number is not set, so Twilio's side is not checked: set it to the number your intercom calls");
    };
    let rest = Rest::new(&c.twilio, TWILIO_TIMEOUT)
        .map_err(|e| format!("no Twilio REST credentials, so Twilio's side is not checked: {e}"));
    let Some(rest) = r.or_line(WARN, rest) else { return };
    let Some(n) = r.or_line(FAIL, setup::look_up(&rest, number)) else { return };
    if let Some(why) = n.routed_elsewhere() {
        return r.line(FAIL, why);
    }
    let fix = "run `intercom twilio-setup`";
    let want = c.webhook.public_url.as_deref().map(setup::voice_url);
    let (url, method) = (n.voice_url.as_deref().unwrap_or(""), n.voice_method.as_deref().unwrap_or(""));
    let now = if url.is_empty() { "no URL".into() } else { format!("{:?}", loggable(url)) };
    match want {
        Some(want) if url != want => r.line(FAIL, format!("Twilio sends {number}'s calls to {now}, not {want}, so signatures fail or calls go elsewhere: {fix}")),
        _ if !method.eq_ignore_ascii_case(VOICE_METHOD) => r.line(FAIL, format!("Twilio calls {number}'s voice URL with {:?}, not POST: {fix}", loggable(method))),
        _ => r.line(OK, format!("Twilio sends {number}'s calls to {url} with POST")),
    }
    match (n.voice_fallback_url.as_deref().filter(|u| !u.is_empty()), c.twilio.fallback_url.as_deref()) {
        (None, _) => r.line(WARN, format!("{number} has no fallback URL, so visitors hear an error while this machine is down: put `intercom fallback-twiml` in a TwiML Bin, set twilio.fallback_url to its URL and {fix}")),
        (Some(have), Some(want)) if have != want => r.line(WARN, format!("{number}'s fallback URL is {}, not twilio.fallback_url: {fix}", loggable(have))),
        (Some(have), _) => r.line(OK, format!("{number}'s fallback URL is {}", loggable(have))),
    }
}

fn check_state_dir(r: &mut Report, c: &Config) {
    let dir = c.state_dir.display();
    // Unreadable to this user: the write probe below says to use sudo.
    if std::fs::metadata(&c.state_dir).is_ok() {
        match crate::util::ownership::check_state_dir(&c.state_dir) {
            Ok(()) => r.line(OK, format!("nobody but root and intercom can write to {dir}")),
            Err(e) => r.line(FAIL, format!("{e}; `intercom serve` refuses to start on it")),
        }
    }
    // Written as the store writes its files: a temporary file, flushed and renamed.
    let probe = format!(".doctor-probe-{}", std::process::id());
    let written = crate::store::storage::write_atomically(&c.state_dir, &probe, b"probe\n", 0o600);
    let _ = std::fs::remove_file(c.state_dir.join(&probe));
    match written {
        Ok(()) => r.line(OK, format!("the state directory {dir} is writable")),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !sudo().is_empty() => r.line(
            WARN,
            format!("cannot write to {dir} as this user ({e}): run `sudo intercom doctor` to check it"),
        ),
        Err(e) => {
            let why = "the window cannot open; fix the disk or state_dir";
            return r.line(FAIL, format!("cannot write to the state directory {dir} ({e}): {why}"));
        }
    }
    match free_bytes(&c.state_dir) {
        Some(free) if free < MIN_FREE_BYTES => r.line(
            FAIL,
            format!(
                "only {} KiB free on the state disk, so windows cannot open: free some space",
                free / 1024
            ),
        ),
        Some(free) if free < LOW_FREE_BYTES => r.line(
            WARN,
            format!("only {} MiB free on the state disk: free some space before it fills up", free >> 20),
        ),
        Some(free) => r.line(OK, format!("{} MiB free on the state disk", free >> 20)),
        None => r.line(WARN, "cannot tell the state disk's free space (no `df`): check it with `df -h`"),
    }
}

/// Free bytes for an unprivileged writer, from POSIX `df` (std has no statvfs, and this
/// crate forbids the unsafe code a direct call needs).
fn free_bytes(dir: &Path) -> Option<u64> {
    // output() gives df no stdin (it would read none anyway).
    let out = Command::new("df").arg("-Pk").arg(dir).stderr(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Filesystem 1024-blocks Used Available Capacity Mounted-on
    let kib: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

fn check_clock(r: &mut Report) {
    let flag = clock::TIMESYNC_FLAG;
    match clock::synchronized() {
        Some(true) => r.line(OK, "the system clock is synchronized"),
        Some(false) => r.line(WARN, "the system clock is not synchronized, so times may be wrong and a window from before a reboot stays closed: enable NTP with `sudo timedatectl set-ntp true`"),
        None => r.line(WARN, format!("cannot tell whether the clock is synchronized (no {flag} and no answer from timedatectl): run an NTP client such as systemd-timesyncd")),
    }
}

fn check_newest_call(r: &mut Report, client: &Client) {
    match client.get::<EventsBody>(&format!("/api/events?limit={EVENTS_LOOKED_AT}")) {
        Ok(events) => {
            let newest = events.events.iter().find(|e| e.event.name().starts_with("call_"));
            r.line(OK, newest.map_or("no call in the history yet".into(), describe_call))
        }
        Err(e) => r.line(WARN, format!("cannot read the history ({e}): see `journalctl -u intercom`")),
    }
}

fn describe_call(e: &Record) -> String {
    let ago = Duration::try_from(jiff::Timestamp::now().duration_since(e.time))
        .map(|d| format!(" ({} ago)", human(Duration::from_secs(d.as_secs() / 60 * 60))))
        .unwrap_or_default();
    let from = e.from.as_deref().map(|f| format!(" from {}", loggable(f))).unwrap_or_default();
    let what = e.event.name().trim_start_matches("call_");
    format!("newest call: {}{ago}{from}, {what}", local(e.time))
}
