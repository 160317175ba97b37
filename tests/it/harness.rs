//! Starts the real `intercom` binary on free ports with a temporary config and state
//! directory, and kills it on `Drop`. Talks raw HTTP over real sockets, signs webhook
//! calls the way Twilio does (from its documentation, not from `src/`), and reads the
//! event history. Every helper more than one test module needs lives here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

pub const INTERCOM: &str = "+15558889999";
pub const RESIDENT: &str = "+15552223333";
pub const TOKEN: &str = "test-control-token-0123456789";
/// How long a test waits for the server to start before giving up.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// What the server logs once its state is loaded and it serves normally.
const LOADED: &str = "state loaded";
/// A reply slower than this is a failure, not a wait.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The Twilio auth token of [`signed_config`], and the public URL signatures cover.
pub const AUTH_TOKEN: &str = "twilio-auth-token-for-tests";
pub const PUBLIC: &str = "https://door.example.com";
/// A call from the intercom, as Twilio posts it.
/// `form` with its `CallSid` replaced: a new call with the same parameters.
pub fn with_call_sid<'a>(form: &[(&'a str, &'a str)], sid: &'a str) -> Vec<(&'a str, &'a str)> {
    form.iter().map(|&(k, v)| if k == "CallSid" { (k, sid) } else { (k, v) }).collect()
}

pub const CALL: &[(&str, &str)] = &[
    ("AccountSid", "ACtest"),
    ("CallSid", "CAsigned"),
    ("From", "+15558889999"),
    ("To", "+15550001111"),
    ("CallStatus", "ringing"),
];

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("intercom-it-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A config for tests: the intercom and one resident, token fixed, ports chosen by the OS,
/// unsigned webhooks allowed by name (most tests post them; `signed_config` signs).
pub fn base_config() -> Value {
    json!({
        "intercom_number": INTERCOM,
        "forward_to": [RESIDENT],
        "max_window": "12h",
        "default_window": "2h",
        "webhook": {"listen": "127.0.0.1:0", "allow_unsigned": true},
        "control": {"listen": "127.0.0.1:0", "token": TOKEN},
    })
}

/// [`base_config`] with signatures on: [`AUTH_TOKEN`] over [`PUBLIC`].
pub fn signed_config() -> Value {
    let mut c = base_config();
    c["webhook"] = json!({"listen": "127.0.0.1:0", "public_url": PUBLIC});
    c["twilio"] = json!({"account_sid": "ACtest", "auth_token": AUTH_TOKEN});
    c
}

/// Twilio's scheme, written here from its documentation, apart from src/twilio/signature.rs:
/// HMAC-SHA1 keyed with the auth token over the URL followed by each form parameter's
/// name and value, sorted by name, in base64.
pub fn sign(token: &str, url: &str, form: &[(&str, &str)]) -> String {
    let mut data = url.to_string();
    let mut sorted = form.to_vec();
    sorted.sort();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, data.as_bytes()))
}

pub fn form_body(form: &[(&str, &str)]) -> String {
    form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// A form POST to the webhook listener, with `signature` as `X-Twilio-Signature` if any.
pub fn post_signed(
    s: &Server,
    path_and_query: &str,
    form: &[(&str, &str)],
    signature: Option<&str>,
) -> Reply {
    let body = form_body(form);
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(sig) = signature {
        headers.push(("X-Twilio-Signature", sig));
    }
    request(s.webhook, "POST", path_and_query, &headers, body.as_bytes())
}

/// The newest `limit` records of the event history, through the control API.
pub fn events(s: &Server, limit: usize) -> Vec<Value> {
    let r = s.api("GET", &format!("/api/events?limit={limit}"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["events"].as_array().unwrap().clone()
}

pub fn names(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
}

/// This machine's boot id, as the server reads it unless a test points it elsewhere.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim().to_string()
}

/// `t` as the server writes every time: RFC 3339 UTC in whole seconds.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let t = jiff::Timestamp::try_from(t).unwrap();
    jiff::Timestamp::from_second(t.as_second()).unwrap().to_string()
}

/// A time as the server wrote it.
pub fn parse_time(text: &str) -> std::time::SystemTime {
    text.parse::<jiff::Timestamp>().unwrap().into()
}

/// A `state.json` with the window open until `until`, written in this boot.
pub fn state_file(until: std::time::SystemTime) -> String {
    state_file_in_boot(until, &boot_id())
}

pub fn state_file_in_boot(until: std::time::SystemTime, boot_id: &str) -> String {
    json!({
        "version": 2,
        "open_until": rfc3339(until),
        "updated_at": rfc3339(std::time::SystemTime::now()),
        "updated_by": "test",
        "boot_id": boot_id,
    })
    .to_string()
}

pub struct Server {
    child: Child,
    pub webhook: SocketAddr,
    pub control: SocketAddr,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: Option<TempDir>,
}

impl Server {
    /// Starts with `config` in a fresh temp dir (its state_dir is set there).
    pub fn start(config: Value) -> Server {
        let dir = TempDir::new("server");
        let mut s = Server::start_in(dir.path(), config, &[]);
        s._dir = Some(dir);
        s
    }

    /// Starts in `dir` (kept by the caller, so a restart sees the same state).
    pub fn start_in(dir: &Path, config: Value, env: &[(&str, &str)]) -> Server {
        Server::launch(dir, config, env, &[], true)
    }

    /// As `start_in`, but returns as soon as both listeners are bound, without waiting for
    /// the state to load (which a hanging disk never lets happen).
    pub fn start_listening(dir: &Path, config: Value, env: &[(&str, &str)]) -> Server {
        Server::launch_inner(dir, config, env, &[], true)
    }

    /// As `start_in`; `set_state_dir: false` keeps the config's own `state_dir`.
    pub fn start_in_with(dir: &Path, config: Value, env: &[(&str, &str)], set_state_dir: bool) -> Server {
        Server::launch(dir, config, env, &[], set_state_dir)
    }

    /// Like `start_in`, run through `wrapper` (a program and its arguments, given the
    /// binary and its arguments after them), e.g. a shell that lowers a limit first.
    pub fn start_wrapped(dir: &Path, config: Value, env: &[(&str, &str)], wrapper: &[&str]) -> Server {
        Server::launch(dir, config, env, wrapper, true)
    }

    /// Starts the server and waits until it has loaded its state and serves normally.
    fn launch(
        dir: &Path,
        config: Value,
        env: &[(&str, &str)],
        wrapper: &[&str],
        set_state_dir: bool,
    ) -> Server {
        let s = Server::launch_inner(dir, config, env, wrapper, set_state_dir);
        let deadline = Instant::now() + START_TIMEOUT;
        while !s.logs().contains(LOADED) {
            assert!(Instant::now() < deadline, "the server did not load its state; log:\n{}", s.logs());
            thread::sleep(Duration::from_millis(5));
        }
        s
    }

    fn launch_inner(
        dir: &Path,
        mut config: Value,
        env: &[(&str, &str)],
        wrapper: &[&str],
        set_state_dir: bool,
    ) -> Server {
        let state_dir = dir.join("state");
        if set_state_dir {
            config["state_dir"] = json!(state_dir);
        }
        let config_path = dir.join("intercom.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let bin = env!("CARGO_BIN_EXE_intercom");
        let mut cmd = match wrapper {
            [program, args @ ..] => {
                let mut c = Command::new(program);
                c.args(args).arg(bin);
                c
            }
            [] => Command::new(bin),
        };
        cmd.args(["serve", "--config"]).arg(&config_path);
        cmd.env_remove("RUST_LOG").env_remove("JOURNAL_STREAM").env_remove("NOTIFY_SOCKET");
        cmd.env_remove("WATCHDOG_USEC").env_remove("WATCHDOG_PID");
        cmd.env_remove("INTERCOM_CONTROL_TOKEN").env_remove("INTERCOM_TWILIO_AUTH_TOKEN");
        cmd.env_remove("INTERCOM_BOOT_ID");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();

        // Drain stderr for the whole life of the server (a full pipe would block it),
        // keeping every line for assertions and passing the listen lines on.
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let keep = logs.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                for (what, marker) in
                    [("webhook", "webhook listening on "), ("control", "control listening on ")]
                {
                    if let Some(addr) = line.split(marker).nth(1) {
                        let _ = tx.send((what, addr.trim().parse::<SocketAddr>().unwrap()));
                    }
                }
                keep.lock().unwrap().push(line);
            }
        });
        let (mut webhook, mut control) = (None, None);
        while webhook.is_none() || control.is_none() {
            match rx.recv_timeout(START_TIMEOUT) {
                Ok(("webhook", a)) => webhook = Some(a),
                Ok((_, a)) => control = Some(a),
                Err(_) => {
                    let _ = child.kill();
                    panic!("server did not start; log:\n{}", logs.lock().unwrap().join("\n"));
                }
            }
        }
        let (webhook, control) = (webhook.unwrap(), control.unwrap());
        // The server has read its config; give the CLI the ports the OS chose.
        config["webhook"]["listen"] = json!(webhook.to_string());
        config["control"]["listen"] = json!(control.to_string());
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        Server { child, webhook, control, config_path, state_dir, logs, _dir: None }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Waits (bounded) until a log line containing `needle` appears.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        for _ in 0..100 {
            if self.logs().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// SIGKILL: no chance to flush or clean up, like a power cut for the process.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Runs a CLI command against this server's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&self.config_path, args)
    }

    pub fn call(&self, method: &str, path: &str, body: &str) -> Reply {
        let ct = [("Content-Type", "application/x-www-form-urlencoded")];
        request(self.webhook, method, path, if body.is_empty() { &[] } else { &ct }, body.as_bytes())
    }

    /// A POST webhook from `from`, unsigned: a new call (its own `CallSid`) each time.
    pub fn ring(&self, from: &str) -> Reply {
        let sid = fresh_call_sid();
        self.call("POST", "/voice", &format!("CallSid={sid}&From={}&To=%2B15550001111", encode(from)))
    }

    pub fn api(&self, method: &str, path: &str, body: &str) -> Reply {
        let auth = format!("Bearer {TOKEN}");
        request(self.control, method, path, &[("Authorization", &auth)], body.as_bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn cli(config: &Path, args: &[&str]) -> Output {
    cli_env(config, args, &[])
}

/// [`cli`] with more environment (a boot id, a clock flag).
pub fn cli_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_intercom"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .env_remove("INTERCOM_CONTROL_TOKEN")
        .env_remove("INTERCOM_TWILIO_AUTH_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn is_twiml(&self) -> bool {
        self.body.contains("<Response>")
    }
}

/// One request on a fresh connection, `Connection: close`.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    parse_reply(&raw(addr, &bytes))
}

/// Sends bytes as they are and reads until the server closes.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

pub fn parse_reply(bytes: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP reply: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    Reply { status, head: head.to_string(), body: body.to_string() }
}

/// Form-encodes a value the way Twilio does.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A `CallSid` no other request of this test run has used: the server answers a repeated
/// `CallSid` on a route as it did the first time, so each new call needs its own.
pub fn fresh_call_sid() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Letters only, so no guest code's six digits can ever appear inside one.
    let hex = format!("{:08x}{n:024x}", std::process::id());
    let letters: String = hex.chars().map(|c| char::from(b'a' + c.to_digit(16).unwrap_or(0) as u8)).collect();
    format!("CA{letters}")
}

/// `config` with `clock_sync_flags` set to `flag`, a file of the test's own: the clock
/// counts as synchronized exactly while it exists, whatever the host's NTP client says.
pub fn with_sync_flag(mut config: Value, flag: &Path) -> Value {
    config["clock_sync_flags"] = serde_json::json!([flag]);
    config
}
