//! A new owner's traps: the untouched template and a `public_url` ending in `/voice` are
//! refused by name before anything runs, and `check-config` says where each secret came from.

use std::fs;
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::harness::*;

const TEMPLATE_KEYS: [&str; 5] =
    ["intercom_number", "forward_to", "webhook.public_url", "twilio.account_sid", "twilio.number"];

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn template() -> Value {
    serde_json::from_str(include_str!("../../configs/production.json")).unwrap()
}

#[test]
fn the_untouched_template_is_refused_by_key() {
    let dir = TempDir::new("template");
    let path = dir.path().join("intercom.json");
    let mut c = template();
    // Free ports and a private state dir, so a `serve` that wrongly started could not clash.
    c["state_dir"] = json!(dir.path().join("state"));
    c["webhook"]["listen"] = json!("127.0.0.1:0");
    c["control"]["listen"] = json!("127.0.0.1:0");
    fs::write(&path, c.to_string()).unwrap();
    for cmd in [&["check-config"][..], &["serve"], &["twilio-setup", "--dry-run"], &["fallback-twiml"]] {
        let o = cli(&path, cmd);
        assert!(!o.status.success(), "{cmd:?}");
        let err = stderr(&o);
        for key in TEMPLATE_KEYS {
            assert!(
                err.contains(&format!("`{key}`: still the template's placeholder")),
                "{cmd:?} {key}: {err}"
            );
        }
        assert!(!dir.path().join("state").exists(), "{cmd:?} touched the state dir");
    }

    // One key left unfilled is still refused, by that key alone.
    c["intercom_number"] = json!(INTERCOM);
    c["forward_to"] = json!([RESIDENT]);
    c["webhook"]["public_url"] = json!("https://door.example.net");
    c["twilio"] = json!({"account_sid": "AC0123456789abcdef0123456789abcdef", "number": "+15550001111"});
    fs::write(&path, c.to_string()).unwrap();
    assert!(cli(&path, &["check-config"]).status.success());
    c["forward_to"] = json!([RESIDENT, "+15550100002"]);
    fs::write(&path, c.to_string()).unwrap();
    let o = cli(&path, &["check-config"]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("`forward_to`: still the template's placeholder +15550100002"));
}

#[test]
fn public_url_with_voice_is_refused_with_the_fix() {
    let dir = TempDir::new("voice-url");
    let path = dir.path().join("intercom.json");
    let mut c = base_config();
    c["webhook"]["public_url"] = json!("https://door.example.net/voice");
    fs::write(&path, c.to_string()).unwrap();
    for cmd in ["check-config", "serve", "doctor"] {
        let o = cli(&path, &[cmd]);
        assert!(!o.status.success(), "{cmd}");
        let text = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
        assert!(text.contains("`webhook.public_url`") && text.contains("remove /voice"), "{cmd}: {text}");
    }
}

#[test]
fn check_config_says_where_each_secret_came_from() {
    let dir = TempDir::new("origins");
    let path = dir.path().join("intercom.json");
    let mut c = base_config();
    c["webhook"]["public_url"] = json!("https://door.example.net");
    c["twilio"] = json!({"account_sid": "AC0123", "api_key_sid": "SK0123"});
    fs::write(&path, c.to_string()).unwrap();
    fs::write(
        dir.path().join("intercom.env"),
        "INTERCOM_TWILIO_AUTH_TOKEN=file-secret-auth\nINTERCOM_TWILIO_API_KEY_SECRET=file-secret-key\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_intercom"))
        .args(["check-config", "--config"])
        .arg(&path)
        .env("INTERCOM_TWILIO_API_KEY_SECRET", "env-secret-key")
        .env_remove("INTERCOM_TWILIO_AUTH_TOKEN")
        .env_remove("INTERCOM_CONTROL_TOKEN")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let row = |key: &str| out.lines().find(|l| l.trim_start().starts_with(&format!("{key} "))).unwrap_or("");
    assert!(row("control.token").ends_with("set (from the config file)"), "{out}");
    let env_file = dir.path().join("intercom.env");
    assert!(
        row("twilio.auth_token")
            .ends_with(&format!("set (from INTERCOM_TWILIO_AUTH_TOKEN in {})", env_file.display())),
        "{out}"
    );
    assert!(
        row("twilio.api_key_secret")
            .ends_with("set (from INTERCOM_TWILIO_API_KEY_SECRET in the environment)"),
        "{out}"
    );
    assert!(!out.contains("secret-") && !out.contains(TOKEN), "{out}");
}

#[test]
fn open_speaks_of_what_was_typed_and_shows_local_time() {
    let s = Server::start(base_config());
    for (typed, want) in [
        ("24h", "intercom: open: at most 12h (max_window); try 12h or raise max_window"),
        ("2x", "intercom: \"2x\" is not a length of time: write 90m, 2h, 1h30, 2 hours or 90 (minutes)"),
        ("90s", "intercom: \"90s\" is not a whole number of minutes (at least 1m)"),
    ] {
        let o = s.cli(&["open", typed]);
        assert!(!o.status.success(), "{typed}");
        assert_eq!(stderr(&o).trim(), want);
    }
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);

    let o = Command::new(env!("CARGO_BIN_EXE_intercom"))
        .args(["open", "2h", "--config"])
        .arg(&s.config_path)
        .env("TZ", "Europe/Berlin")
        .env_remove("INTERCOM_CONTROL_TOKEN")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let until = s.api("GET", "/api/status", "").json()["open_until"].as_str().unwrap().to_string();
    // The API's UTC time, shown in Berlin's zone: an hour ahead in winter, two in summer.
    let utc_hour: u32 = until[11..13].parse().unwrap();
    let (zone, shift) = if out.contains(" CEST ") { ("CEST", 2) } else { ("CET", 1) };
    let local_hour = format!(" {:02}:{}", (utc_hour + shift) % 24, &until[14..16]);
    assert!(
        out.starts_with("open until ") && out.contains(&format!("{local_hour} {zone} (")),
        "{out} vs {until}"
    );
}

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH: &str = "0123456789abcdef0123456789abcdeF";

fn init(config: &std::path::Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intercom"));
    cmd.args(["init", "--config"]).arg(config);
    cmd.args(["--account-sid", SID, "--auth-token", AUTH, "--twilio-number", "+1 555 000 1111"]);
    cmd.args(["--forward-to", "+15552223333, +15552224444", "--public-url", "https://door.example.net/"]);
    cmd.args(extra).env_remove("INTERCOM_TWILIO_AUTH_TOKEN").env_remove("INTERCOM_CONTROL_TOKEN");
    cmd
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_with_flags_writes_the_config_and_the_secrets_file() {
    let dir = TempDir::new("init-flags");
    let path = dir.path().join("etc/intercom.json");
    let env_file = dir.path().join("etc/intercom.env");
    // A bad answer is refused by its flag, and nothing is written.
    let o = init(&path, &["--intercom-number", "5558889999"]).output().unwrap();
    assert!(!o.status.success() && stderr(&o).contains("+15552223333") && !path.exists(), "{}", stderr(&o));
    let o = init(&path, &["--public-url", "https://door.example.net/voice"]).output().unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("--public-url") && stderr(&o).contains("remove /voice")
    );
    assert!(!path.exists() && !env_file.exists());

    // Over the untouched template, as a fresh .deb leaves it.
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, include_str!("../../configs/production.json")).unwrap();
    fs::write(
        &env_file,
        "# kept\nINTERCOM_CONTROL_TOKEN=kept-control-token-0123\nINTERCOM_TWILIO_AUTH_TOKEN = old-token\n",
    )
    .unwrap();
    let o = init(&path, &["--intercom-number", "+1 (555) 888-9999"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((mode(&path), mode(&env_file)), (0o644, 0o600));
    let text = fs::read_to_string(&path).unwrap();
    let c: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(c["intercom_number"], "+15558889999");
    assert_eq!(c["forward_to"], json!(["+15552223333", "+15552224444"]));
    assert_eq!(c["webhook"]["public_url"], "https://door.example.net");
    assert_eq!(c["twilio"], json!({"account_sid": SID, "number": "+15550001111"}));
    assert_eq!(c["state_dir"], "/var/lib/intercom", "the template's other keys stay");
    assert!(!text.contains(AUTH), "a secret in the config: {text}");
    let env = fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("# kept\n") && env.contains("INTERCOM_CONTROL_TOKEN=kept-control-token-0123\n"));
    assert!(env.contains(&format!("INTERCOM_TWILIO_AUTH_TOKEN={AUTH}\n")), "{env}");
    assert!(!env.contains("old-token"), "the old secret survived: {env}");
    let o = cli(&path, &["check-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("set (from INTERCOM_TWILIO_AUTH_TOKEN in"));

    // A config that is no longer the template is not replaced without --force.
    let o = init(&path, &["--intercom-number", "+15550000001"]).output().unwrap();
    assert!(!o.status.success() && stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    // A broken one is replaced with --force, from the template.
    fs::write(&path, "{ not json").unwrap();
    let o = init(&path, &["--intercom-number", "+15550000001", "--force"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(cli(&path, &["check-config"]).status.success());
}

#[test]
fn init_names_the_wrong_answer_warns_on_http_and_carries_the_config() {
    let dir = TempDir::new("init-words");
    let path = dir.path().join("etc/intercom.json");
    let o = init(&path, &["--forward-to", "+15552223333, 555 222 4444"]).output().unwrap();
    assert!(!o.status.success() && !path.exists());
    assert_eq!(
        stderr(&o).trim(),
        "intercom: --forward-to: number 2 of 2: \"555 222 4444\" has no country code: write it with + and the country code, like +15552223333 or +447700900123"
    );
    let o = init(&path, &["--intercom-number", INTERCOM, "--public-url", "http://door.example.net"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: http://door.example.net is plain http"), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let config = path.display();
    for step in [
        format!("`sudo intercom twilio-setup --config {config}`"),
        format!("`sudo intercom doctor --config {config}`"),
        format!("`sudo intercom pair \"Anna's phone\" --config {config}`"),
    ] {
        assert!(out.contains(&step), "{step}: {out}");
    }
    // The template listens on 0.0.0.0:8081: the page is shown at an address a phone reaches.
    assert!(out.contains("opens the page at http://") && !out.contains("0.0.0.0"), "{out}");
    let o = init(&path, &["--intercom-number", INTERCOM, "--force"]).output().unwrap();
    assert!(o.status.success() && !stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn init_learns_the_intercom_number_from_the_next_rejected_call() {
    use std::io::{BufRead, BufReader};
    let mut c = base_config();
    c.as_object_mut().unwrap().remove("intercom_number");
    let s = Server::start(c);
    s.ring("+15550009999"); // an earlier call: not the one init is waiting for
    let mut child = init(&s.config_path, &["--learn-intercom", "--learn-timeout", "60s", "--force"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Waiting for a call") {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "init ended early: {seen}");
        seen.push_str(&line);
    }
    let call = s.call("POST", "/voice", "CallSid=CAlearn1&From=%2B1%20555%20777%200001&To=%2B15550001111");
    assert!(call.body.contains("<Reject"), "{}", call.body);
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(status.success(), "{seen}{rest}");
    assert!(rest.contains("intercom_number is +15557770001"), "{rest}");
    let c: Value = serde_json::from_str(&fs::read_to_string(&s.config_path).unwrap()).unwrap();
    assert_eq!(c["intercom_number"], "+15557770001");
    assert_eq!(c["control"]["token"], TOKEN, "the server's other keys stay");

    // Later, on a config that is otherwise done: --learn-intercom alone sets only the number.
    let before = fs::read_to_string(s.config_path.with_file_name("intercom.env")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_intercom"))
        .args(["init", "--learn-intercom", "--learn-timeout", "60s", "--config"])
        .arg(&s.config_path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Waiting for a call") {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "init ended early: {seen}");
        seen.push_str(&line);
    }
    s.call("POST", "/voice", "CallSid=CAlearn2&From=%2B15557770003&To=%2B15550001111");
    assert!(child.wait().unwrap().success());
    let after: Value = serde_json::from_str(&fs::read_to_string(&s.config_path).unwrap()).unwrap();
    assert_eq!(after["intercom_number"], "+15557770003");
    let mut expected = c.clone();
    expected["intercom_number"] = json!("+15557770003");
    assert_eq!(after, expected, "nothing else changed");
    assert_eq!(fs::read_to_string(s.config_path.with_file_name("intercom.env")).unwrap(), before);
}
