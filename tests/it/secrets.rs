//! No secret in any output at the most verbose level: the server with `log_level: trace`
//! and `RUST_LOG=trace`, and the CLI with `RUST_LOG=trace`, while an SMS goes out through
//! the fake Twilio (and the MQTT password to a listener standing in for a broker), the CLI
//! asks for the status, adds a guest code and runs the doctor,
//! and a caller enters the code. The HTTP client library hex-dumps whole requests at
//! trace level, 16 bytes a line, so a secret is looked for in the text as it is and in
//! the dump's character columns joined up.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::fake_http::account::{AUTH_TOKEN, KEY_SECRET, KEY_SID, NUMBER, NUMBER_SID, SID};
use crate::fake_http::FakeTwilio;
use crate::harness::*;

const PUBLIC: &str = "https://door.example.com";
const MQTT_PASSWORD: &str = "mqtt-password-never-printed";
/// The notifier works in the background; bounded wait for its SMS.
const DELIVERY_WAIT: Duration = Duration::from_secs(15);

/// The CLI as an admin runs it, at the most verbose level.
fn cli_at_trace(s: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_intercom"))
        .args(args)
        .arg("--config")
        .arg(&s.config_path)
        .env("RUST_LOG", "trace")
        .env_remove("INTERCOM_CONTROL_TOKEN")
        .env_remove("INTERCOM_TWILIO_AUTH_TOKEN")
        .env_remove("INTERCOM_TWILIO_API_KEY_SECRET")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Whether `secret` is in `text`, also when a hex dump spread it over several lines:
/// the last 16 characters of every line (a dump's character column) joined up.
fn leaks(text: &str, secret: &str) -> bool {
    let columns: String = text
        .lines()
        .map(|l| {
            let chars: Vec<char> = l.chars().collect();
            chars[chars.len().saturating_sub(16)..].iter().collect::<String>()
        })
        .collect();
    text.contains(secret) || columns.contains(secret)
}

fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!leaks(text, secret), "{secret:?} in the {what}:\n{text}");
    }
}

#[test]
fn at_trace_level_no_secret_reaches_any_output() {
    let twilio = FakeTwilio::start(SID, KEY_SID, KEY_SECRET, &[(NUMBER_SID, NUMBER)]);
    let mut c = base_config();
    c["log_level"] = json!("trace");
    c["webhook"]["public_url"] = json!(PUBLIC);
    c["twilio"] = json!({"account_sid": SID, "auth_token": AUTH_TOKEN, "api_base": twilio.base(),
        "sms_from": NUMBER, "number": NUMBER, "api_key_sid": KEY_SID, "api_key_secret": KEY_SECRET});
    let hook = crate::fake_http::Fake::start(&[]);
    c["notify"] = json!({"sms_to": [RESIDENT], "events": ["window_opened", "call_unlocked_code"],
        "webhook_url": hook.url("/api/webhook/secret-hook-id-42")});
    // An MQTT "broker" that only records what the server sends it: its CONNECT carries
    // the MQTT password.
    let broker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    c["mqtt"] = json!({"host": "127.0.0.1", "port": broker.local_addr().unwrap().port(),
        "username": "intercom", "password": MQTT_PASSWORD});
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = received.clone();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = broker.accept() {
            conn.set_read_timeout(Some(DELIVERY_WAIT)).unwrap();
            let mut buf = [0u8; 512];
            while let Ok(n @ 1..) = std::io::Read::read(&mut conn, &mut buf) {
                keep.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    let dir = TempDir::new("secrets");
    let s = Server::start_in(dir.path(), c, &[("RUST_LOG", "trace")]);
    let deadline = std::time::Instant::now() + DELIVERY_WAIT;
    while !String::from_utf8_lossy(&received.lock().unwrap()).contains(MQTT_PASSWORD) {
        assert!(std::time::Instant::now() < deadline, "no MQTT CONNECT with the password:\n{}", s.logs());
        std::thread::sleep(Duration::from_millis(20));
    }

    // An SMS through the fake Twilio, with the API key as Basic credentials.
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5}"#).status, 200);
    assert_eq!(s.api("POST", "/api/close", "").status, 200);
    let sms = twilio.http.wait_for(1, DELIVERY_WAIT);
    assert!(!sms.is_empty(), "no SMS sent:\n{}", s.logs());
    assert!(!hook.wait_for(1, DELIVERY_WAIT).is_empty(), "no webhook sent:\n{}", s.logs());

    let mut cli_output = String::new();
    let mut run = |args: &[&str]| {
        let out = cli_at_trace(&s, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success() || args[0] == "doctor", "{args:?}: {stderr}");
        cli_output.push_str(&stderr);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let status = run(&["status"]);
    assert!(status.contains("closed"), "{status}");
    let added = run(&["code", "add", "--label", "plumber"]);
    let code = added.lines().next().unwrap().to_string();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{added}");
    // The doctor sends the control token to the server and the API key to Twilio.
    let mut config: Value = serde_json::from_slice(&std::fs::read(&s.config_path).unwrap()).unwrap();
    config["webhook"]["public_url"] = json!(format!("http://{}", s.webhook));
    std::fs::write(&s.config_path, config.to_string()).unwrap();
    let doctor = run(&["doctor"]);
    assert!(doctor.contains("the server is running"), "{doctor}");
    assert!(twilio.http.requests().iter().any(|r| r.method == "GET"), "the doctor asked Twilio");

    // A caller enters the code (signed as Twilio signs it): it unlocks, and is notified.
    let mut form: Vec<(&str, &str)> =
        vec![("CallSid", "CAtrace"), ("From", INTERCOM), ("To", NUMBER), ("Digits", &code)];
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice/code"), &form);
    let before = twilio.http.requests().len();
    let r = post_signed(&s, "/voice/code", &form, Some(&sig));
    assert!(r.body.contains("<Play"), "{}", r.body);
    form.clear();
    assert!(twilio.http.wait_for(before + 1, DELIVERY_WAIT).len() > before, "{}", s.logs());

    let basic = |user: &str, password: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    };
    let secrets = [
        TOKEN,
        AUTH_TOKEN,
        KEY_SECRET,
        &basic(KEY_SID, KEY_SECRET),
        &basic(SID, AUTH_TOKEN),
        &code,
        "secret-hook-id-42",
        MQTT_PASSWORD,
    ];
    let logs = s.logs();
    assert!(logs.contains("DEBUG") || logs.contains("TRACE"), "the server logs at trace:\n{logs}");
    assert_no_secret("server's log", &logs, &secrets);
    assert_no_secret("CLI's stderr", &cli_output, &secrets);
    assert_no_secret("doctor's output", &doctor, &secrets);
    assert_no_secret("status output", &status, &secrets);
}

#[test]
fn rest_credentials_never_go_out_in_clear_text() {
    let dir = TempDir::new("api-base");
    let config = dir.path().join("intercom.json");
    let mut c = base_config();
    c["state_dir"] = json!(dir.path().join("state"));
    c["twilio"] = json!({"account_sid": SID, "api_key_sid": KEY_SID, "api_key_secret": KEY_SECRET,
        "api_base": "http://192.0.2.1:8080"});
    std::fs::write(&config, c.to_string()).unwrap();
    for command in ["check-config", "serve"] {
        let out = cli(&config, &[command]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command} accepted it");
        assert!(stderr.contains("`twilio.api_base`") && stderr.contains("https://"), "{command}: {stderr}");
    }
    // The fake Twilio of the tests lives on loopback, which stays allowed.
    c["twilio"]["api_base"] = json!("http://127.0.0.1:8080");
    std::fs::write(&config, c.to_string()).unwrap();
    let out = cli(&config, &["check-config"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A notification target may be plain http (Home Assistant on the LAN), but not with a
    // password in it.
    c["twilio"]["api_base"] = json!("https://api.twilio.com");
    c["notify"] = json!({"webhook_url": "http://user:hunter2secret@ntfy.example/topic"});
    std::fs::write(&config, c.to_string()).unwrap();
    let out = cli(&config, &["check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("`notify.webhook_url`"), "{stderr}");
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
}
