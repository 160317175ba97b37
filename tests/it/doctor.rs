//! `intercom doctor` against the real server and a fake Twilio on 127.0.0.1: all `ok` when
//! the chain is whole, and exit 1 with a `FAIL` line naming each broken link, within its
//! time bound even when the tunnel hangs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fake_http::account::{AUTH_TOKEN, KEY_SECRET, KEY_SID, NUMBER, NUMBER_SID, SID};
use crate::fake_http::{refusing_addr, silent_listener, Answer, Fake, FakeTwilio};
use crate::harness::*;

const FALLBACK: &str = "https://handler.twilio.com/twiml/EH0123";
/// The issue's bound for a doctor run whose tunnel hangs, with slack for a loaded machine.
const DOCTOR_BOUND: Duration = Duration::from_secs(30);

struct Doctor {
    ok: bool,
    out: String,
    took: Duration,
}

impl Doctor {
    fn lines(&self) -> Vec<&str> {
        self.out.lines().collect()
    }

    fn fails(&self) -> Vec<&str> {
        self.lines().into_iter().filter(|l| l.starts_with("FAIL")).collect()
    }

    fn has(&self, prefix: &str, text: &str) -> bool {
        self.lines().iter().any(|l| l.starts_with(prefix) && l.contains(text))
    }
}

fn doctor(config: &Path) -> Doctor {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_intercom"))
        .args(["doctor", "--config"])
        .arg(config)
        .env_remove("INTERCOM_CONTROL_TOKEN")
        .env_remove("INTERCOM_TWILIO_AUTH_TOKEN")
        .env_remove("INTERCOM_TWILIO_API_KEY_SECRET")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("doctor took {took:?}:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    for line in text.lines() {
        assert!(["ok ", "warn ", "FAIL ", "skip "].iter().any(|p| line.starts_with(p)), "{line}");
        assert!(!line.contains(KEY_SECRET) && !line.contains(AUTH_TOKEN) && !line.contains(TOKEN), "{line}");
    }
    Doctor { ok: out.status.success(), out: text, took }
}

/// A config whose Twilio side is the fake, with signatures on.
fn config(twilio: &FakeTwilio) -> Value {
    let mut c = base_config();
    c["webhook"]["public_url"] = json!("http://placeholder.invalid");
    c["twilio"] = json!({"account_sid": SID, "auth_token": AUTH_TOKEN, "api_base": twilio.base(),
        "number": NUMBER, "fallback_url": FALLBACK, "api_key_sid": KEY_SID, "api_key_secret": KEY_SECRET});
    c
}

/// Points `public_url` in the server's config file at `url` (the server read its copy).
fn set_public_url(s: &Server, url: &str) {
    let mut c: Value = serde_json::from_slice(&std::fs::read(&s.config_path).unwrap()).unwrap();
    c["webhook"]["public_url"] = json!(url);
    std::fs::write(&s.config_path, c.to_string()).unwrap();
}

/// A running server whose public_url is its own webhook listener, and a fake Twilio
/// whose number points at it with a fallback.
fn whole_chain() -> (Server, FakeTwilio) {
    whole_chain_with(|_| {})
}

/// [`whole_chain`] with the server's config changed by `edit` first.
fn whole_chain_with(edit: impl FnOnce(&mut Value)) -> (Server, FakeTwilio) {
    let twilio = FakeTwilio::start(SID, KEY_SID, KEY_SECRET, &[(NUMBER_SID, NUMBER)]);
    let mut c = config(&twilio);
    edit(&mut c);
    let s = Server::start(c);
    let public = format!("http://{}", s.webhook);
    set_public_url(&s, &public);
    twilio.set(NUMBER_SID, "voice_url", json!(format!("{public}/voice")));
    twilio.set(NUMBER_SID, "voice_fallback_url", json!(FALLBACK));
    (s, twilio)
}

#[test]
fn all_ok_when_the_chain_is_whole() {
    let (s, twilio) = whole_chain();
    s.ring(INTERCOM); // unsigned: refused, and the newest call in the history
    let d = doctor(&s.config_path);
    assert!(d.ok, "{}", d.out);
    assert!(d.fails().is_empty());
    for line in d.lines() {
        // Whether this host's clock is synchronized is the host's business.
        assert!(line.starts_with("ok ") || line.contains("clock"), "{line}");
    }
    assert!(d.has("ok", "the server is running (window closed)"), "{}", d.out);
    assert!(d.has("ok", "the server checks Twilio's signature on every webhook"), "{}", d.out);
    assert!(d.has("ok", "the webhook listener answers"), "{}", d.out);
    assert!(d.has("ok", "/healthz reaches this very server process"), "{}", d.out);
    assert!(
        d.has("ok", &format!("Twilio sends {NUMBER}'s calls to http://{}/voice with POST", s.webhook)),
        "{}",
        d.out
    );
    assert!(d.has("ok", &format!("fallback URL is {FALLBACK}")), "{}", d.out);
    assert!(d.has("ok", "is writable") && d.has("ok", "free on the state disk"), "{}", d.out);
    assert!(d.has("ok", "newest call: ") && d.has("ok", "bad_signature"), "{}", d.out);
    assert!(twilio.posts().is_empty(), "doctor changes nothing");
}

/// Issue 26: the auth token sits in intercom.env, which only systemd reads; a `serve`
/// started by hand with `webhook.allow_unsigned` runs without it. Doctor reads the same
/// file, so the files say "signed": it must say what the running server does.
#[test]
fn fail_when_the_running_server_does_not_check_signatures() {
    let (s, _twilio) = whole_chain_with(|c| {
        c["twilio"].as_object_mut().unwrap().remove("auth_token");
        c["webhook"]["allow_unsigned"] = json!(true);
    });
    let env = s.config_path.parent().unwrap().join("intercom.env");
    std::fs::write(&env, format!("INTERCOM_TWILIO_AUTH_TOKEN={AUTH_TOKEN}\n")).unwrap();
    let d = doctor(&s.config_path);
    assert!(!d.ok);
    assert_eq!(d.fails().len(), 1, "{}", d.out);
    assert!(d.has("FAIL", "the server does not check Twilio's signatures"), "{}", d.out);
    assert!(d.has("FAIL", "started without the token in") && d.has("FAIL", "intercom.env"), "{}", d.out);
    assert!(!d.has("ok", "signature"), "{}", d.out);
}

#[test]
fn fail_when_the_server_is_not_running() {
    let twilio = FakeTwilio::start(SID, KEY_SID, KEY_SECRET, &[(NUMBER_SID, NUMBER)]);
    let dir = TempDir::new("doctor-down");
    let mut c = config(&twilio);
    let (control, webhook) = (refusing_addr(), refusing_addr());
    c["control"]["listen"] = json!(control.to_string());
    c["webhook"]["listen"] = json!(webhook.to_string());
    c["webhook"]["public_url"] = json!(format!("http://{webhook}"));
    c["state_dir"] = json!(dir.path());
    // Twilio's side is right, so the one FAIL left is the server's.
    twilio.set(NUMBER_SID, "voice_url", json!(format!("http://{webhook}/voice")));
    twilio.set(NUMBER_SID, "voice_fallback_url", json!(FALLBACK));
    let path = dir.path().join("intercom.json");
    std::fs::write(&path, c.to_string()).unwrap();
    let d = doctor(&path);
    assert!(!d.ok);
    // One root cause, with its fix; what depends on it is named as skipped, not failed.
    assert_eq!(d.fails().len(), 1, "{}", d.out);
    assert!(
        d.has("FAIL", "the server is not running or not reachable (cannot reach")
            && d.has("FAIL", "systemctl start intercom"),
        "{}",
        d.out
    );
    assert!(d.has("skip", "the webhook listener, the tunnel"), "{}", d.out);
    let root = running_as_root();
    assert_eq!(d.fails()[0].contains("sudo"), !root, "{}", d.out);
    assert!(d.has("ok", &format!("Twilio sends {NUMBER}'s calls")), "{}", d.out);

    // Never started: no token in the config and none generated yet. Still one cause.
    c["control"].as_object_mut().unwrap().remove("token");
    std::fs::write(&path, c.to_string()).unwrap();
    let d = doctor(&path);
    assert_eq!(d.fails().len(), 1, "{}", d.out);
    assert!(
        d.has("FAIL", "the server is not running (it has not started yet: no control token in"),
        "{}",
        d.out
    );
}

/// Whether the tests run as root (doctor then suggests no sudo).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

#[test]
fn the_untouched_template_fails_by_key() {
    let dir = TempDir::new("doctor-template");
    let path = dir.path().join("intercom.json");
    let mut c: Value = serde_json::from_str(include_str!("../../configs/production.json")).unwrap();
    c["state_dir"] = json!(dir.path());
    c["control"]["listen"] = json!(refusing_addr().to_string());
    std::fs::write(&path, c.to_string()).unwrap();
    let d = doctor(&path);
    assert!(!d.ok);
    for key in ["intercom_number", "forward_to", "webhook.public_url", "twilio.account_sid", "twilio.number"]
    {
        assert!(d.has("FAIL", &format!("`{key}`: still the template's placeholder")), "{key}: {}", d.out);
    }
    // One verdict per key: a placeholder is not also called ok, nor probed and failed again.
    for placeholder in ["+15550100001", "+15550100002", "+15550100003", "intercom.example.com", "ACxxxx"] {
        let lines: Vec<&str> = d.lines().into_iter().filter(|l| l.contains(placeholder)).collect();
        assert_eq!(lines.len(), 1, "{placeholder}: {lines:?}");
    }
    // One rule for secrets: the fix names the secrets file beside the config.
    let env_file = dir.path().join("intercom.env");
    assert!(
        d.has(
            "FAIL",
            &format!(
                "put INTERCOM_TWILIO_AUTH_TOKEN=<the Auth Token from the Twilio console> in {}",
                env_file.display()
            )
        ),
        "{}",
        d.out
    );
}

#[test]
fn fail_when_public_url_is_another_server_or_another_intercom() {
    let (s, _twilio) = whole_chain();
    let other = Fake::start(&[]); // answers 200 to anything
    set_public_url(&s, &other.url(""));
    let d = doctor(&s.config_path);
    assert!(!d.ok);
    assert_eq!(d.fails().len(), 2, "{}", d.out); // the tunnel, and Twilio's URL != public_url
    assert!(d.has("FAIL", "is answered by another HTTP server, not intercom"), "{}", d.out);
    assert_eq!(other.requests()[0].target, "/healthz");

    // A stale tunnel to an old install: an intercom, but not this process.
    let old = Server::start(base_config());
    set_public_url(&s, &format!("http://{}", old.webhook));
    let d = doctor(&s.config_path);
    assert!(d.has("FAIL", "is answered by another intercom process"), "{}", d.out);
}

#[test]
fn fail_when_twilio_points_elsewhere() {
    let (s, twilio) = whole_chain();
    twilio.set(NUMBER_SID, "voice_url", json!(format!("http://{}/voice/", s.webhook)));
    let d = doctor(&s.config_path);
    assert!(!d.ok);
    assert_eq!(d.fails().len(), 1, "{}", d.out);
    assert!(d.has("FAIL", "run `intercom twilio-setup`") && d.has("FAIL", "/voice/"), "{}", d.out);

    twilio.set(NUMBER_SID, "voice_url", json!(format!("http://{}/voice", s.webhook)));
    twilio.set(NUMBER_SID, "voice_method", json!("GET"));
    twilio.set(NUMBER_SID, "voice_fallback_url", json!(null));
    let d = doctor(&s.config_path);
    assert!(d.has("FAIL", "not POST") && d.has("warn", "has no fallback URL"), "{}", d.out);

    twilio.set(NUMBER_SID, "voice_application_sid", json!("AP0123456789abcdef0123456789abcdef"));
    let d = doctor(&s.config_path);
    assert!(d.has("FAIL", "TwiML App"), "{}", d.out);
}

#[test]
fn a_hanging_tunnel_fails_within_the_time_bound() {
    let (s, _twilio) = whole_chain();
    let hung = silent_listener();
    set_public_url(&s, &format!("http://{hung}"));
    // Twilio's API hangs too: the two slowest checks both run into their timeouts.
    let hanging_api = Fake::start(&[Answer::Hang; 4]);
    let mut c: Value = serde_json::from_slice(&std::fs::read(&s.config_path).unwrap()).unwrap();
    c["twilio"]["api_base"] = json!(hanging_api.url(""));
    std::fs::write(&s.config_path, c.to_string()).unwrap();
    let d = doctor(&s.config_path);
    assert!(!d.ok);
    assert!(d.has("FAIL", "/healthz does not answer (no answer within 8s)"), "{}", d.out);
    assert!(d.has("FAIL", "cannot reach Twilio's API") && d.has("FAIL", "timed out"), "{}", d.out);
    assert!(d.took < DOCTOR_BOUND, "doctor took {:?}", d.took);
    // The checks after the tunnel still ran.
    assert!(d.has("ok", "newest call") || d.has("ok", "no call in the history yet"), "{}", d.out);
}

#[test]
fn a_bad_config_is_a_fail_line() {
    let dir = TempDir::new("doctor-config");
    let path = dir.path().join("intercom.json");
    std::fs::write(&path, r#"{"forward_to": "nonsense"}"#).unwrap();
    let d = doctor(&path);
    assert!(!d.ok);
    assert_eq!(d.lines().len(), 1);
    assert!(d.has("FAIL", "`forward_to`"), "{}", d.out);
}
