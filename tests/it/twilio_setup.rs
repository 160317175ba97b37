//! `intercom twilio-setup` and `intercom fallback-twiml` against a fake Twilio REST API on
//! 127.0.0.1: the requests (paths, form fields, Basic auth with each kind of
//! credential), idempotency, `--dry-run`, and one clear line for every failure, with no
//! secret ever printed.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine;
use serde_json::{json, Value};

use crate::fake_http::account::{AUTH_TOKEN, KEY_SECRET, KEY_SID, NUMBER, NUMBER_SID, SID};
use crate::fake_http::{refusing_addr, Answer, Fake, FakeTwilio};
use crate::harness::*;

const OTHER: &str = "+15550002222";
const OTHER_SID: &str = "PNfedcba9876543210fedcba9876543210";
const PUBLIC_URL: &str = "https://door.example.com";
const FALLBACK: &str = "https://handler.twilio.com/twiml/EH0123";

/// A config for setup: the API key when `api_key`, else the auth token.
fn config(api_base: &str, api_key: bool) -> Value {
    let mut c = base_config();
    c["webhook"]["public_url"] = json!(PUBLIC_URL);
    c["twilio"] = json!({"account_sid": SID, "auth_token": AUTH_TOKEN, "api_base": api_base,
        "number": NUMBER, "fallback_url": FALLBACK});
    if api_key {
        c["twilio"]["api_key_sid"] = json!(KEY_SID);
        c["twilio"]["api_key_secret"] = json!(KEY_SECRET);
    }
    c
}

fn fake(user: &str, password: &str) -> FakeTwilio {
    FakeTwilio::start(SID, user, password, &[(NUMBER_SID, NUMBER), (OTHER_SID, OTHER)])
}

/// Runs the CLI with `config` written to a temp file, with extra environment.
fn run(config: &Value, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = TempDir::new("setup");
    let path = dir.path().join("intercom.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let out = command(&path, args, env);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    for secret in [KEY_SECRET, AUTH_TOKEN] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} printed:\n{stdout}\n{stderr}"
        );
    }
    (out.status.success(), stdout, stderr)
}

fn command(path: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intercom"));
    cmd.args(args).arg("--config").arg(path).stdin(Stdio::null());
    for var in
        ["RUST_LOG", "INTERCOM_CONTROL_TOKEN", "INTERCOM_TWILIO_AUTH_TOKEN", "INTERCOM_TWILIO_API_KEY_SECRET"]
    {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[test]
fn setup_sets_the_number_with_an_api_key_once_and_then_sends_nothing() {
    let twilio = fake(KEY_SID, KEY_SECRET);
    twilio.set(NUMBER_SID, "voice_url", json!("https://old.example/voice/"));
    twilio.set(NUMBER_SID, "voice_method", json!("GET"));
    let c = config(&twilio.base(), true);
    let (ok, out, err) = run(&c, &["twilio-setup"], &[]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("VoiceUrl             https://old.example/voice/ → https://door.example.com/voice"),
        "{out}"
    );
    assert!(out.contains("VoiceMethod          GET → POST"), "{out}");
    assert!(out.contains(&format!("VoiceFallbackUrl     (not set) → {FALLBACK}")), "{out}");
    assert!(out.contains("VoiceFallbackMethod  POST (unchanged)"), "{out}");

    let seen = twilio.http.requests();
    assert_eq!(seen.len(), 2, "one lookup, one update: {seen:?}");
    let (get, post) = (&seen[0], &seen[1]);
    assert_eq!(get.method, "GET");
    assert_eq!(
        get.target,
        format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json?PhoneNumber=%2B15550001111")
    );
    assert_eq!(post.method, "POST");
    assert_eq!(post.target, format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers/{NUMBER_SID}.json"));
    assert!(post.header("content-type").unwrap().starts_with("application/x-www-form-urlencoded"));
    let mut form = post.form();
    form.sort();
    let want = [
        ("VoiceFallbackUrl", FALLBACK),
        ("VoiceMethod", "POST"),
        ("VoiceUrl", "https://door.example.com/voice"),
    ];
    assert_eq!(form, want.map(|(k, v)| (k.to_string(), v.to_string())), "only the fields that change");
    for r in &seen {
        assert_eq!(r.header("authorization"), Some(basic(KEY_SID, KEY_SECRET).as_str()));
    }
    assert_eq!(twilio.number(NUMBER_SID)["voice_url"], "https://door.example.com/voice");
    assert_eq!(twilio.number(OTHER_SID)["voice_url"], Value::Null, "the other number is untouched");

    // Idempotent: the second run looks, finds nothing to change and sends nothing.
    let (ok, out, _) = run(&c, &["twilio-setup"], &[]);
    assert!(ok && out.contains("nothing to change; no request sent"), "{out}");
    assert_eq!(twilio.posts().len(), 1);
    assert_eq!(twilio.http.requests().len(), 3);
}

#[test]
fn setup_uses_the_auth_token_without_an_api_key_and_the_secret_from_the_environment() {
    let twilio = fake(SID, AUTH_TOKEN);
    let (ok, out, err) = run(&config(&twilio.base(), false), &["twilio-setup"], &[]);
    assert!(ok, "{out}\n{err}");
    let posts = twilio.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].header("authorization"), Some(basic(SID, AUTH_TOKEN).as_str()));

    // The API key secret from INTERCOM_TWILIO_API_KEY_SECRET, the key in the file.
    let twilio = fake(KEY_SID, KEY_SECRET);
    let mut c = config(&twilio.base(), true);
    c["twilio"].as_object_mut().unwrap().remove("api_key_secret");
    let (ok, out, err) = run(&c, &["twilio-setup"], &[("INTERCOM_TWILIO_API_KEY_SECRET", KEY_SECRET)]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(twilio.posts()[0].header("authorization"), Some(basic(KEY_SID, KEY_SECRET).as_str()));

    // Or from intercom.env beside the config, where the service's secrets live, so
    // `sudo intercom twilio-setup` sees what the service sees.
    let twilio = fake(KEY_SID, KEY_SECRET);
    let mut c = config(&twilio.base(), true);
    c["twilio"].as_object_mut().unwrap().remove("api_key_secret");
    let dir = TempDir::new("setup-envfile");
    let path = dir.path().join("intercom.json");
    std::fs::write(&path, c.to_string()).unwrap();
    std::fs::write(
        dir.path().join("intercom.env"),
        format!("# secrets\nINTERCOM_TWILIO_API_KEY_SECRET={KEY_SECRET}\n"),
    )
    .unwrap();
    let out = command(&path, &["twilio-setup"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(twilio.posts()[0].header("authorization"), Some(basic(KEY_SID, KEY_SECRET).as_str()));
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let twilio = fake(KEY_SID, KEY_SECRET);
    let (ok, out, err) = run(&config(&twilio.base(), true), &["twilio-setup", "--dry-run"], &[]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("VoiceUrl             (not set) → https://door.example.com/voice"), "{out}");
    assert!(out.contains("dry run: 2 field(s) would change; nothing was sent"), "{out}");
    assert!(twilio.posts().is_empty());
    assert_eq!(twilio.number(NUMBER_SID)["voice_url"], Value::Null);
}

#[test]
fn every_failure_is_one_clear_line_without_secrets() {
    // 401: wrong credentials.
    let twilio = fake(KEY_SID, "another-secret");
    let (ok, _, err) = run(&config(&twilio.base(), true), &["twilio-setup"], &[]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("Twilio refused the credentials (HTTP 401): check the API key (twilio.api_key_sid and twilio.api_key_secret)"), "{err}");
    let twilio = fake(SID, "another-token");
    let (_, _, err) = run(&config(&twilio.base(), false), &["twilio-setup"], &[]);
    assert!(err.contains("HTTP 401): check twilio.account_sid and twilio.auth_token"), "{err}");

    // The number is not in the account: named, with the account's numbers.
    let twilio = fake(KEY_SID, KEY_SECRET);
    let mut c = config(&twilio.base(), true);
    c["twilio"]["number"] = json!("+15550009999");
    let (ok, _, err) = run(&c, &["twilio-setup"], &[]);
    assert!(!ok);
    assert!(
        err.contains("+15550009999 is not a number of this Twilio account (its numbers are +15550001111, +15550002222); fix twilio.number"),
        "{err}"
    );
    assert!(twilio.posts().is_empty());

    // Routed to a TwiML App, or to a SIP trunk: say what to change in the console.
    for (field, sid, says) in [
        ("voice_application_sid", "AP0123456789abcdef0123456789abcdef", "TwiML App"),
        ("trunk_sid", "TK0123456789abcdef0123456789abcdef", "SIP trunk"),
    ] {
        let twilio = fake(KEY_SID, KEY_SECRET);
        twilio.set(NUMBER_SID, field, json!(sid));
        let (ok, _, err) = run(&config(&twilio.base(), true), &["twilio-setup"], &[]);
        assert!(!ok);
        assert!(err.contains(says) && err.contains(sid) && err.contains("Twilio console"), "{err}");
        assert!(twilio.posts().is_empty(), "{field}: nothing overridden");
    }

    // Network error, and a 5xx.
    let (ok, _, err) = run(&config(&format!("http://{}", refusing_addr()), true), &["twilio-setup"], &[]);
    assert!(!ok);
    assert!(err.contains("cannot reach Twilio's API at http://127.0.0.1:"), "{err}");
    let failing = Fake::start(&[Answer::Status(503)]);
    let (ok, _, err) = run(&config(&failing.url(""), true), &["twilio-setup"], &[]);
    assert!(!ok);
    assert!(err.contains("Twilio's API failed (HTTP 503") && err.contains("try again"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Missing keys are named.
    let mut c = config(&failing.url(""), true);
    c["twilio"].as_object_mut().unwrap().remove("number");
    let (ok, _, err) = run(&c, &["twilio-setup"], &[]);
    assert!(!ok && err.contains("set twilio.number"), "{err}");
}

/// Every element closes in order; attributes are quoted. Enough to catch broken TwiML.
fn well_formed(xml: &str) -> bool {
    let body = xml.strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>").unwrap_or("").trim();
    let mut stack = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else { return false };
        let tag = &rest[start + 1..start + end];
        rest = &rest[start + end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop() != Some(name.to_string()) {
                return false;
            }
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
        }
        if tag.matches('"').count() % 2 != 0 {
            return false;
        }
    }
    stack.is_empty() && body.starts_with("<Response>") && body.ends_with("</Response>")
}

#[test]
fn fallback_twiml_forwards_to_every_number_and_never_unlocks() {
    let mut c = base_config();
    c["forward_to"] = json!([RESIDENT, "+447700900123", "+15554445555"]);
    c["no_answer_message"] = json!("Nobody's <home> & sorry");
    let (ok, out, err) = run(&c, &["fallback-twiml"], &[]);
    assert!(ok, "{err}");
    assert!(well_formed(&out), "{out}");
    assert_eq!(out.matches("<Number>").count(), 3, "{out}");
    for n in [RESIDENT, "+447700900123", "+15554445555"] {
        assert!(out.contains(&format!("<Number>{n}</Number>")), "{out}");
    }
    assert!(!out.contains("<Play") && !out.contains("<Reject"), "{out}");
    assert!(out.contains("<Say>Nobody&apos;s &lt;home&gt; &amp; sorry</Say>"), "{out}");
    // The same dial a closed window gives, except that the server's own answer hears back
    // when the dial ends (and says the message then): the fallback runs without us.
    let s = Server::start(c.clone());
    let live = s.ring(INTERCOM).body;
    let (dial, _) = out.split_once("<Say>").unwrap();
    let action = " action=\"/voice/next?step=3\" method=\"POST\">";
    assert_eq!(live.replace(action, ">"), format!("{dial}</Response>\n"), "{live}");
    assert!(!out.contains("action="), "{out}");

    c["forward_to"] = json!([]);
    let (ok, out, err) = run(&c, &["fallback-twiml"], &[]);
    assert!(!ok && out.is_empty());
    assert!(err.contains("forward_to is empty"), "{err}");
}
