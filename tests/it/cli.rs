//! Every CLI command against the running server, and with it down.

use std::fs;
use std::process::Output;

use serde_json::json;

use crate::harness::*;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn open_status_close_go_through_the_server() {
    let s = Server::start(base_config());
    let o = s.cli(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "closed");

    let o = s.cli(&["open", "1h30m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("open until "), "{}", stdout(&o));
    let st = s.api("GET", "/api/status", "").json();
    assert!(st["remaining_seconds"].as_u64().unwrap() > 5390);
    assert!(s.wait_for_log("by the command line on the Pi"), "{}", s.logs());

    assert!(stdout(&s.cli(&["status"])).starts_with("open until"));
    let o = s.cli(&["open"]);
    assert!(o.status.success());
    assert!(
        s.api("GET", "/api/status", "").json()["remaining_seconds"].as_u64().unwrap() > 7190,
        "default window"
    );

    let o = s.cli(&["close"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).trim(), "closed");
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);
}

#[test]
fn bad_durations_fail_with_one_line_and_change_nothing() {
    let s = Server::start(base_config());
    for bad in ["soon", "30s", "13h", "0m"] {
        let o = s.cli(&["open", bad]);
        assert!(!o.status.success(), "{bad}");
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("intercom: "), "{err}");
    }
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);
}

#[test]
fn commands_fail_clearly_when_the_server_is_down() {
    let dir = TempDir::new("down");
    let s = Server::start_in(dir.path(), base_config(), &[]);
    let config = s.config_path.clone();
    s.kill9();
    for args in [&["status"][..], &["open", "1h"], &["close"]] {
        let o = cli(&config, args);
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("cannot reach the intercom server"), "{err}");
    }
}

#[test]
fn url_prints_the_page_address_and_says_to_pair() {
    let s = Server::start(base_config());
    let o = s.cli(&["url"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().next(), Some(format!("http://{}/", s.control).as_str()), "{out}");
    let config = s.config_path.display();
    assert!(out.contains(&format!("intercom pair \"Anna's phone\" --config {config}")), "{out}");
}

#[test]
fn check_config_summarises_and_masks_secrets() {
    let dir = TempDir::new("check");
    let path = dir.path().join("c.json");
    let mut c = base_config();
    c["webhook"]["public_url"] = json!("https://door.example.com");
    c["twilio"] = json!({"account_sid": "AC123", "auth_token": "twilio-secret-value-xyz"});
    fs::write(&path, c.to_string()).unwrap();
    let o = cli(&path, &["check-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("config OK") && out.contains("+15558889999") && out.contains("https://door.example.com")
    );
    assert!(!out.contains("twilio-secret-value-xyz") && !out.contains(TOKEN), "{out}");

    let o = Command::new(env!("CARGO_BIN_EXE_intercom"))
        .args(["check-config", "--config"])
        .arg(&path)
        .env("INTERCOM_TWILIO_AUTH_TOKEN", "env-secret-abc")
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(
        out.contains("set (from INTERCOM_TWILIO_AUTH_TOKEN in the environment)")
            && !out.contains("env-secret-abc"),
        "{out}"
    );
}

use std::process::Command;

#[test]
fn config_errors_name_the_key_and_exit_non_zero() {
    let dir = TempDir::new("badconfig");
    let cases = [
        (
            json!({"intercom_number": "+15558889999", "webhook": {"listen": "127.0.0.1:0", "prot": 1}})
                .to_string(),
            "webhook.prot",
        ),
        (json!({"forwrd_to": ["+15552223333"]}).to_string(), "forwrd_to"),
        (json!({"max_window": 12}).to_string(), "max_window"),
        (json!({"twilio": {"auth_token": "abc-secret-zz"}}).to_string(), "webhook.public_url"),
        ("{\n  \"intercom_number\": \"+1555\"\n  \"x\": 1\n}".to_string(), "line 3, column"),
    ];
    for (text, want) in cases {
        let path = dir.path().join("bad.json");
        fs::write(&path, &text).unwrap();
        for cmd in ["serve", "check-config"] {
            let o = cli(&path, &[cmd]);
            assert!(!o.status.success());
            let err = stderr(&o);
            assert!(err.contains(want), "{cmd} with {text}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{err}");
            assert!(!err.contains("abc-secret-zz"));
        }
    }
    let o = cli(&dir.path().join("missing.json"), &["serve"]);
    assert!(!o.status.success() && stderr(&o).contains("missing.json"));
}

#[test]
fn simulate_prints_the_twiml_for_now() {
    let s = Server::start(base_config());
    let o = s.cli(&["simulate", "--from", "+1 555 888 9999"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("<Dial"), "{}", stdout(&o));
    assert!(stdout(&s.cli(&["simulate", "--from", "+15550000000"])).contains("<Reject/>"));
    s.api("POST", "/api/open", "");
    assert!(stdout(&s.cli(&["simulate", "--from", "+15558889999"])).contains("<Play digits=\"ww9\"/>"));
}

#[test]
fn usage_errors_exit_2_and_version_works() {
    let o = Command::new(env!("CARGO_BIN_EXE_intercom")).arg("frobnicate").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown command"));
    let o = Command::new(env!("CARGO_BIN_EXE_intercom")).arg("--version").output().unwrap();
    assert!(o.status.success() && stdout(&o).starts_with("intercom "));
    let o = Command::new(env!("CARGO_BIN_EXE_intercom")).arg("--help").output().unwrap();
    assert!(o.status.success() && stdout(&o).contains("simulate --from"));
    // A typo gets the nearest command, and `help` answers for the command it names.
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_intercom")).args(args).output().unwrap();
    let o = run(&["opne"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).trim(), "intercom: unknown command `opne`; did you mean `open`?");
    let o = run(&["help", "opne"]);
    assert!(o.status.code() == Some(2) && stderr(&o).contains("did you mean `open`?"), "{}", stderr(&o));
    let o = run(&["help", "schedule"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for command in ["add", "list", "rm", "pause", "resume"] {
        assert!(stdout(&o).contains(&format!("usage: intercom schedule {command}")), "{}", stdout(&o));
    }
    assert!(!stdout(&o).contains("usage: intercom open"), "{}", stdout(&o));
}

#[test]
fn every_command_has_its_own_help_and_flags_take_an_equals_sign() {
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_intercom")).args(args).output().unwrap();
    for (args, usage) in [
        (&["open", "--help"][..], "usage: intercom open [--once] [DUR]"),
        (&["code", "add", "--help"], "usage: intercom code add [--label TEXT] [--valid DUR] [--uses N]"),
        (&["help", "doctor"], "usage: intercom doctor"),
    ] {
        let o = run(args);
        assert!(o.status.success() && stdout(&o).contains(usage), "{args:?}: {}", stdout(&o));
    }
    assert!(stdout(&run(&["open", "--help"])).contains("90m"));
    let o = run(&["simulate", "--from=+15550000000", "--config=/nonexistent/x.json"]);
    assert!(stderr(&o).contains("/nonexistent/x.json"), "the flags were taken: {}", stderr(&o));
    let o = run(&["status", "--from", "+1555"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("intercom status --help"), "{}", stderr(&o));
}

#[test]
fn a_closed_pipe_ends_the_output_quietly_with_0() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // the reader is gone before the first byte: every write fails with EPIPE
    let o = Command::new(env!("CARGO_BIN_EXE_intercom"))
        .arg("--help")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}
