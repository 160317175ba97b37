//! `intercom doctor`: checks the whole chain a call travels (config, the running server,
//! the tunnel to this very process, Twilio's number, disk, clock) and prints one line per
//! check: `ok`, `warn` or `FAIL`, each warning and failure with its fix in one sentence.
//!
//! Every network check has its own short timeout, so a hung tunnel costs one timeout and
//! doctor still ends within about half a minute. Doctor only reads: the one file it
//! writes is a probe in the state directory, removed at once.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::model::api::{EventsBody, StatusBody};
use crate::model::record::Record;

use crate::cli::client::{display_addr, Client};
use crate::cli::setup::{self, VOICE_METHOD};
use crate::config::{self, Config};
use crate::twilio::rest::Rest;
use crate::util::local_address;
use crate::{system::clock, util::loggable, util::time::local, util::INSTANCE_HEADER};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
    /// Not checked because a failure above already explains it.
    Skip,
}

/// Prints the checks as they run. Returns whether none failed.
pub fn run(path: &Path) -> bool {
    let mut report = Report { failed: false, server_running: false };
    let config = match config::load_with_env_file(path) {
        Ok(c) => {
            report.line(Level::Ok, format!("config {} is valid", path.display()));
            c
        }
        Err(e) => {
            report.line(Level::Fail, format!("{e}; fix it, then check with `intercom check-config`"));
            return false;
        }
    };
    for e in config::unfilled_placeholders(&config) {
        report.line(Level::Fail, e.to_string());
    }
    check_config(&mut report, &config);
    // The server is the root of the listener, tunnel and history checks: when it is down
    // they would only repeat that, so they are named as skipped instead.
    match check_server(&mut report, &config, path) {
        Some(instance) => {
            check_webhook_listener(&mut report, &config, instance.as_deref());
            check_public_url(&mut report, &config, instance.as_deref());
        }
        None => report.line(
            Level::Skip,
            "the webhook listener, the tunnel (webhook.public_url), the signature checks and the history are checked once the server runs".into(),
        ),
    }
    check_twilio(&mut report, &config);
    check_state_dir(&mut report, &config);
    check_clock(&mut report);
    if report.server_running {
        check_newest_call(&mut report, &config);
    }
    !report.failed
}

/// The secrets file this config's commands read, as a path to show.
fn env_file_of(c: &Config) -> String {
    c.env_file.as_ref().map_or(config::ENV_FILE.to_string(), |(path, _)| path.display().to_string())
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// `sudo ` for a command that needs root, or nothing when this already is root.
fn sudo() -> &'static str {
    if is_root() {
        ""
    } else {
        "sudo "
    }
}

/// How to start the server: the systemd unit, or by hand outside systemd.
fn start_hint(path: &Path) -> String {
    let sudo = sudo();
    format!(
        "start it with `{sudo}systemctl start intercom` and read `{sudo}journalctl -u intercom` (outside systemd: `intercom serve --config {}`)",
        path.display()
    )
}

struct Report {
    failed: bool,
    server_running: bool,
}

impl Report {
    fn line(&mut self, level: Level, text: String) {
        let tag = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
            Level::Skip => "skip",
        };
        self.failed |= level == Level::Fail;
        println!("{tag} {text}");
    }
}

fn check_config(r: &mut Report, c: &Config) {
    match (&c.intercom_number, c.intercoms.as_slice()) {
        (Some(n), _) => r.line(Level::Ok, format!("intercom_number is {n}")),
        (None, list @ [_, ..]) => {
            let each: Vec<String> =
                list.iter().map(|e| format!("{} {}", e.name.as_deref().unwrap_or("?"), e.number)).collect();
            r.line(Level::Ok, format!("intercoms: {}", each.join(", ")))
        }
        (None, []) => r.line(
            Level::Fail,
            "intercom_number (or intercoms) is not set, so every call is rejected: set it to the number your intercom calls from".into(),
        ),
    }
    if c.forward_to.is_empty() {
        r.line(Level::Fail, "forward_to is empty, so nobody is called: set it to your phone number".into());
    } else {
        let to: Vec<_> = c.forward_to.iter().map(|n| n.as_str()).collect();
        r.line(Level::Ok, format!("forward_to is {}", to.join(", ")));
    }
    // What the files say only where `serve` would refuse them; whether signatures are
    // checked is the running server's to say (below).
    if c.twilio.auth_token.is_none() && !c.webhook.allow_unsigned {
        r.line(
            Level::Fail,
            format!("twilio.auth_token is not set, so the server refuses to start: {}", token_fix(c)),
        );
    }
}

fn token_fix(c: &Config) -> String {
    let (var, file) = (config::ENV_TWILIO_AUTH_TOKEN, env_file_of(c));
    format!("put {var}=<the Auth Token from the Twilio console> in {file} (or run `intercom init`)")
}

/// Whether the running server checks Twilio's signatures, as it says: a token in the
/// files that a hand-started server never read must not pass for one.
fn check_signatures(r: &mut Report, c: &Config, checked: Option<bool>) {
    let fix = match c.twilio.auth_token {
        Some(_) => format!("it was started without the token in {}: restart it with `{}systemctl restart intercom`, which reads that file", env_file_of(c), sudo()),
        None => format!("{}, remove webhook.allow_unsigned and restart it", token_fix(c)),
    };
    match checked {
        Some(true) => r.line(Level::Ok, "the server checks Twilio's signature on every webhook".into()),
        Some(false) => r.line(Level::Fail, format!("the server does not check Twilio's signatures (webhook.allow_unsigned), so anyone who finds the URL can fake the intercom: {fix}")),
        None => r.line(Level::Warn, "the server does not say whether it checks Twilio's signatures: it is an older version; upgrade it".into()),
    }
}

/// The control API's status, with the server's instance id, if the server answers.
fn check_server(r: &mut Report, c: &Config, path: &Path) -> Option<Option<String>> {
    let client = match crate::store::token::read_token(&c.state_dir) {
        // Neither a fixed token nor the one the server makes at its first start: it never ran.
        Ok(None) if c.control.token.is_none() => {
            r.line(
                Level::Fail,
                format!(
                    "the server is not running (it has not started yet: no control token in {}): {}",
                    c.state_dir.display(),
                    start_hint(path)
                ),
            );
            return None;
        }
        Err(e) if c.control.token.is_none() => {
            let fix = if is_root() {
                "set control.token"
            } else {
                "run `sudo intercom doctor`, or set control.token"
            };
            r.line(Level::Fail, format!("cannot read the control token ({e}): {fix}"));
            return None;
        }
        _ => match Client::with_timeout(c, LOCAL_TIMEOUT) {
            Ok(client) => client,
            Err(e) => {
                r.line(Level::Fail, format!("cannot read the control token ({e}): set control.token"));
                return None;
            }
        },
    };
    match client.get::<StatusBody>("/api/status") {
        Ok(s) => {
            let window = match (s.open, &s.open_until) {
                (true, until) => format!("open until {}", until.map_or("?".into(), local)),
                (false, _) => "closed".into(),
            };
            r.line(Level::Ok, format!("the server is running (window {window})"));
            r.server_running = true;
            check_signatures(r, c, s.signatures_checked);
            let instance = s.instance;
            if instance.is_none() {
                r.line(
                    Level::Warn,
                    "the server does not report an instance id: it is an older version; upgrade it".into(),
                );
            }
            Some(instance)
        }
        Err(e) => {
            r.line(
                Level::Fail,
                format!("the server is not running or not reachable ({e}): {}", start_hint(path)),
            );
            None
        }
    }
}

/// `/healthz` at `url`: whether it answered, and with which instance id.
fn healthz(url: &str, timeout: Duration) -> Result<(u16, Option<String>), String> {
    // The public URL is usually https: verified against the system's CA bundle.
    let agent = crate::system::tls::https_agent(timeout);
    let resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Timeout(_) => format!("no answer within {}s", timeout.as_secs()),
        e => e.to_string(),
    })?;
    let instance = resp.headers().get(INSTANCE_HEADER).and_then(|v| v.to_str().ok()).map(loggable);
    Ok((resp.status().as_u16(), instance))
}

fn check_webhook_listener(r: &mut Report, c: &Config, instance: Option<&str>) {
    let addr = display_addr(local_address(c.webhook.listen));
    match (healthz(&format!("http://{addr}/healthz"), LOCAL_TIMEOUT), instance) {
        (Ok((200, Some(id))), Some(ours)) if id == ours => {
            r.line(Level::Ok, format!("the webhook listener answers on {addr}"))
        }
        (Ok((200, Some(_))), Some(_)) => r.line(
            Level::Fail,
            format!("another intercom process answers on {addr}: stop it, then restart the server"),
        ),
        (Ok((200, _)), None) => r.line(
            Level::Warn,
            format!("something answers on {addr} but the server does not: start the server as above"),
        ),
        (Ok((status, _)), _) => r.line(
            Level::Fail,
            format!("{addr} answers /healthz with HTTP {status}, so it is not intercom: free webhook.listen or choose another port"),
        ),
        (Err(e), _) => r.line(
            Level::Fail,
            format!("the webhook listener {addr} does not answer ({e}): start the server, or fix webhook.listen"),
        ),
    }
}

fn check_public_url(r: &mut Report, c: &Config, instance: Option<&str>) {
    let Some(public) = &c.webhook.public_url else {
        r.line(
            Level::Fail,
            "webhook.public_url is not set: set it to the https URL your tunnel serves".into(),
        );
        return;
    };
    let url = format!("{public}/healthz");
    let tunnel =
        format!("point the tunnel (or reverse proxy) at this machine's webhook.listen, {}", c.webhook.listen);
    let (level, text) = match healthz(&url, PUBLIC_TIMEOUT) {
        Err(e) => (Level::Fail, format!("{url} does not answer ({e}): check the tunnel with `systemctl status intercom-tunnel` and {tunnel}")),
        Ok((200, Some(id))) => match instance {
            Some(ours) if id == ours => (Level::Ok, format!("{url} reaches this very server process")),
            Some(_) => (Level::Fail, format!("{url} is answered by another intercom process (a stale tunnel or an old install): {tunnel}")),
            None => (Level::Warn, format!("{url} answers as an intercom, but without a running server here it cannot be this one: start the server")),
        },
        Ok((200, None)) => (Level::Fail, format!("{url} is answered by another HTTP server, not intercom: {tunnel}")),
        Ok((status, _)) => (Level::Fail, format!("{url} answers HTTP {status}, so Twilio's calls fail: {tunnel}")),
    };
    r.line(level, text);
}

fn check_twilio(r: &mut Report, c: &Config) {
    let Some(number) = &c.twilio.number else {
        r.line(Level::Warn, "twilio.number is not set, so Twilio's side is not checked: set it to the number your intercom calls".into());
        return;
    };
    let rest = match Rest::new(&c.twilio, TWILIO_TIMEOUT) {
        Ok(rest) => rest,
        Err(e) => {
            r.line(Level::Warn, format!("no Twilio REST credentials, so Twilio's side is not checked: {e}"));
            return;
        }
    };
    let n = match rest.find_number(number) {
        Ok(Some(n)) => n,
        Ok(None) => return r.line(Level::Fail, setup::not_in_account(&rest, number.as_str())),
        Err(e) => return r.line(Level::Fail, rest.explain(&e)),
    };
    if let Some(why) = n.routed_elsewhere() {
        return r.line(Level::Fail, why);
    }
    let setup_fix = "run `intercom twilio-setup`";
    let want = c.webhook.public_url.as_deref().map(setup::voice_url);
    let (url, method) = (n.voice_url.as_deref().unwrap_or(""), n.voice_method.as_deref().unwrap_or(""));
    match want {
        Some(want) if url != want => r.line(
            Level::Fail,
            format!(
                "Twilio sends {number}'s calls to {}, not {want}, so signatures fail or calls go elsewhere: {setup_fix}",
                if url.is_empty() { "no URL".into() } else { format!("{:?}", loggable(url)) }
            ),
        ),
        _ if !method.eq_ignore_ascii_case(VOICE_METHOD) => r.line(
            Level::Fail,
            format!("Twilio calls {number}'s voice URL with {:?}, not POST: {setup_fix}", loggable(method)),
        ),
        _ => r.line(Level::Ok, format!("Twilio sends {number}'s calls to {url} with POST")),
    }
    let fallback = n.voice_fallback_url.as_deref().filter(|u| !u.is_empty());
    match (fallback, c.twilio.fallback_url.as_deref()) {
        (None, _) => r.line(
            Level::Warn,
            format!("{number} has no fallback URL, so visitors hear an error while this machine is down: put `intercom fallback-twiml` in a TwiML Bin, set twilio.fallback_url to its URL and {setup_fix}"),
        ),
        (Some(have), Some(want)) if have != want => r.line(
            Level::Warn,
            format!("{number}'s fallback URL is {}, not twilio.fallback_url: {setup_fix}", loggable(have)),
        ),
        (Some(have), _) => r.line(Level::Ok, format!("{number}'s fallback URL is {}", loggable(have))),
    }
}

fn check_state_dir(r: &mut Report, c: &Config) {
    let dir = &c.state_dir;
    // Unreadable to this user: the write probe below says to use sudo.
    if std::fs::metadata(dir).is_ok() {
        match crate::util::ownership::check_state_dir(dir) {
            Ok(()) => {
                r.line(Level::Ok, format!("nobody but root and intercom can write to {}", dir.display()))
            }
            Err(e) => r.line(Level::Fail, format!("{e}; `intercom serve` refuses to start on it")),
        }
    }
    let probe = dir.join(format!(".doctor-probe-{}", std::process::id()));
    let written = OpenOptions::new().write(true).create_new(true).open(&probe).and_then(|mut f| {
        f.write_all(b"probe\n")?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    let root = is_root();
    match written {
        Ok(()) => r.line(Level::Ok, format!("the state directory {} is writable", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !root => r.line(
            Level::Warn,
            format!("cannot write to {} as this user ({e}): run `sudo intercom doctor` to check it", dir.display()),
        ),
        Err(e) => {
            return r.line(
                Level::Fail,
                format!("cannot write to the state directory {} ({e}): the window cannot open; fix the disk or state_dir", dir.display()),
            )
        }
    }
    match free_bytes(dir) {
        Some(free) if free < MIN_FREE_BYTES => r.line(
            Level::Fail,
            format!(
                "only {} KiB free on the state disk, so windows cannot open: free some space",
                free / 1024
            ),
        ),
        Some(free) if free < LOW_FREE_BYTES => r.line(
            Level::Warn,
            format!(
                "only {} MiB free on the state disk: free some space before it fills up",
                free / (1024 * 1024)
            ),
        ),
        Some(free) => r.line(Level::Ok, format!("{} MiB free on the state disk", free / (1024 * 1024))),
        None => r.line(
            Level::Warn,
            "cannot tell the state disk's free space (no `df`): check it with `df -h`".into(),
        ),
    }
}

/// Free bytes for an unprivileged writer, from POSIX `df` (std has no statvfs, and this
/// crate forbids the unsafe code a direct call needs).
fn free_bytes(dir: &Path) -> Option<u64> {
    let out =
        Command::new("df").arg("-Pk").arg(dir).stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Filesystem 1024-blocks Used Available Capacity Mounted-on
    let kib: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

fn check_clock(r: &mut Report) {
    match clock::synchronized() {
        Some(true) => r.line(Level::Ok, "the system clock is synchronized".into()),
        Some(false) => r.line(
            Level::Warn,
            "the system clock is not synchronized, so times may be wrong and a window from before a reboot stays closed: enable NTP with `sudo timedatectl set-ntp true`".into(),
        ),
        None => r.line(
            Level::Warn,
            format!("cannot tell whether the clock is synchronized (no {} and no answer from timedatectl): run an NTP client such as systemd-timesyncd", clock::TIMESYNC_FLAG),
        ),
    }
}

fn check_newest_call(r: &mut Report, c: &Config) {
    let path = format!("/api/events?limit={EVENTS_LOOKED_AT}");
    let events = match Client::with_timeout(c, LOCAL_TIMEOUT)
        .and_then(|client| client.get::<EventsBody>(&path))
    {
        Ok(v) => v,
        Err(e) => {
            return r
                .line(Level::Warn, format!("cannot read the history ({e}): see `journalctl -u intercom`"))
        }
    };
    let newest = events.events.iter().find(|e| e.event.name().starts_with("call_"));
    r.line(Level::Ok, newest.map_or("no call in the history yet".into(), describe_call));
}

fn describe_call(e: &Record) -> String {
    let ago = Duration::try_from(jiff::Timestamp::now().duration_since(e.time))
        .map(|d| format!(" ({} ago)", crate::util::time::human(Duration::from_secs(d.as_secs() / 60 * 60))))
        .unwrap_or_default();
    let from = e.from.as_deref().map(|f| format!(" from {}", loggable(f))).unwrap_or_default();
    let what = e.event.name().trim_start_matches("call_");
    format!("newest call: {}{ago}{from}, {what}", local(e.time))
}
