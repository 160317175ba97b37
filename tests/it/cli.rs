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

/// The times in `text`, each checked to be shown the one way the CLI shows a time,
/// local with its zone (`2026-12-06 14:03 CET`), never as an RFC 3339 stamp.
fn local_times(text: &str, zones: &[&str]) -> usize {
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let b = text.as_bytes();
    let mut found = 0;
    for i in 0..b.len().saturating_sub(10) {
        let d = &b[i..i + 10];
        if !(digits(&d[..4]) && d[4] == b'-' && digits(&d[5..7]) && d[7] == b'-' && digits(&d[8..])) {
            continue;
        }
        let rest = &text[i + 10..];
        assert!(!rest.starts_with('T'), "an RFC 3339 stamp in: {text}");
        let r = rest.as_bytes();
        let clock = r.len() > 7 && r[0] == b' ' && digits(&r[1..3]) && r[3] == b':' && digits(&r[4..6]);
        let zoned = zones.iter().any(|z| rest[6..].starts_with(&format!(" {z}")));
        assert!(clock && zoned, "a time not shown as `YYYY-MM-DD HH:MM {zones:?}` in: {text}");
        found += 1;
    }
    found
}

/// Every `(… left)` says a length one way: `2h`, `1d 23h 59m`.
fn lengths_left(text: &str) -> usize {
    let all: Vec<&str> = text.split(" left)").map(|s| s.rsplit('(').next().unwrap_or("")).collect();
    for left in &all[..all.len() - 1] {
        let one_way = left.split(' ').all(|w| {
            w.len() > 1
                && w[..w.len() - 1].bytes().all(|b| b.is_ascii_digit())
                && w.ends_with(['d', 'h', 'm'])
        });
        assert!(one_way, "{left:?} left, in: {text}");
    }
    all.len() - 1
}

#[test]
fn every_command_shows_a_time_one_local_way() {
    let dir = TempDir::new("times");
    let tz = ("TZ", "Europe/Berlin");
    let s = Server::start_in(dir.path(), base_config(), &[tz]);
    let phone = crate::pairing::exchange(&s, &crate::pairing::pair_link(&s, "Anna's phone"));
    assert_eq!(crate::pairing::page_call(&s, "GET", "/api/status", &phone, "").status, 200);
    s.ring(INTERCOM);
    let run = |args: &[&str]| {
        let o = cli_env(&s.config_path, args, &[tz]);
        assert!(o.status.success() || args == ["doctor"], "{args:?}: {}", stderr(&o));
        format!("{}{}", stdout(&o), stderr(&o))
    };
    let zones = ["CET", "CEST"];
    let mut times = 0;
    let mut lengths = 0;
    for args in [
        &["open", "2h"][..],
        &["status"],
        &["code", "add", "--valid", "2d"],
        &["code", "list"],
        &["schedule", "add", "daily", "00:00-24:00", "--label", "always"],
        &["schedule", "list"],
        &["devices"],
        &["close"],
        &["status"],
        &["simulate", "--from", INTERCOM],
        &["doctor"],
    ] {
        let out = run(args);
        let shown = local_times(&out, &zones);
        assert!(shown > 0, "{args:?} shows no time: {out}");
        times += shown;
        lengths += lengths_left(&out);
    }
    assert!(times >= 13 && lengths >= 4, "{times} times, {lengths} lengths");
}

#[test]
fn errors_name_the_flag_or_the_next_command_without_json_or_a_status_code() {
    let s = Server::start(base_config());
    // A code deleted meanwhile: the server's refusal, in words.
    let code = s.api("POST", "/api/codes", "{}").json();
    let gone = code["id"].as_str().unwrap().to_string();
    assert_eq!(s.api("DELETE", &format!("/api/codes/{gone}"), "").status, 204);
    let mut cases = vec![
        (vec!["code", "rm", "nope"], "`intercom code list`".to_string()),
        (vec!["code", "rm", &gone], format!("there is no guest code {gone}")),
        (vec!["code", "add", "--valid", "2w"], "--valid: from 1m to 7d".into()),
        (vec!["code", "add", "--uses", "50"], "--uses: from 1 to 20".into()),
        (vec!["schedule", "add", "weekdays", "8-18"], "08:00-18:00".into()),
        (vec!["schedule", "add", "mon-fri", "08:00-18:00", "--entrance", "gate"], "--entrance".into()),
        (vec!["schedule", "pause", "nope"], "`intercom schedule list`".into()),
        (vec!["devices", "rm", "nope"], "`intercom devices`".into()),
        (vec!["pair", ""], "\"Anna's phone\"".into()),
        (vec!["open", "2 weeks"], "at most 12h (max_window)".into()),
        (vec!["open", "soon"], "90m, 2h, 1h30, 2 hours".into()),
    ];
    // What only the server knows: the codes are full.
    for _ in 0..20 {
        assert_eq!(s.api("POST", "/api/codes", "{}").status, 201);
    }
    cases.push((vec!["code", "add"], "20 codes are active already; delete one first".into()));
    for (args, says) in &cases {
        let o = s.cli(args);
        let err = stderr(&o);
        assert!(!o.status.success() && err.contains(says.as_str()), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!err.contains('{') && !err.contains("send "), "JSON in {args:?}: {err}");
        // Outside the random code id, which may hold any digits.
        let words = err.replace(gone.as_str(), "");
        for status in ["400", "401", "403", "404", "409", "503"] {
            assert!(!words.contains(status), "an HTTP status in {args:?}: {err}");
        }
    }
    assert_eq!(s.api("GET", "/api/codes", "").json()["codes"].as_array().unwrap().len(), 20);
    assert_eq!(s.api("GET", "/api/schedules", "").json()["schedules"], json!([]));
}

#[test]
fn durations_are_read_as_people_type_them() {
    let s = Server::start(base_config());
    for (typed, minutes) in [
        (&["2H"][..], 120),
        (&["1h30"], 90),
        (&["90"], 90),
        (&["2", "hours"], 120),
        (&["1.5h"], 90),
        (&["45 min"], 45),
    ] {
        let o = s.cli(&[&["open"][..], typed].concat());
        assert!(o.status.success(), "{typed:?}: {}", stderr(&o));
        let left = s.api("GET", "/api/status", "").json()["remaining_seconds"].as_u64().unwrap();
        assert!((minutes * 60 - 5..=minutes * 60).contains(&left), "{typed:?}: {left}");
    }
}

#[test]
fn no_command_prints_a_url_with_the_control_token() {
    // A token the server made, as on a real install, and one fixed in the config.
    let mut generated = base_config();
    generated["control"].as_object_mut().unwrap().remove("token");
    for config in [generated, base_config()] {
        let s = Server::start(config);
        let token = match fs::read_to_string(s.state_dir.join("control-token")) {
            Ok(t) => t.trim().to_string(),
            Err(_) => TOKEN.to_string(),
        };
        let mut said = String::new();
        for args in [&["url"][..], &["pair", "Anna's phone"], &["doctor"], &["check-config"], &["status"]] {
            let o = s.cli(args);
            assert!(o.status.success() || args == ["doctor"], "{args:?}: {}", stderr(&o));
            said.push_str(&format!("{}{}", stdout(&o), stderr(&o)));
        }
        assert!(said.contains(&format!("http://{}/", s.control)), "{said}");
        // init's closing text, over the config that holds the token.
        let o = cli(
            &s.config_path,
            &[
                "init",
                "--force",
                "--account-sid",
                "AC0123456789abcdef0123456789abcdef",
                "--auth-token",
                "0123456789abcdef0123456789abcdef",
                "--twilio-number",
                "+15550001111",
                "--forward-to",
                RESIDENT,
                "--public-url",
                "https://door.example.net",
                "--intercom-number",
                INTERCOM,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        said.push_str(&stdout(&o));
        assert!(said.contains("sudo intercom pair"), "{said}");
        assert!(!said.contains(&token) && !said.contains("#t="), "the token was printed: {said}");
    }
}

/// Runs the CLI as a user who is not root: `nobody` when the tests run as root.
fn cli_without_sudo(config: &std::path::Path, args: &[&str]) -> Output {
    let mut c = match running_as_root() {
        true => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_intercom")]);
            c
        }
        false => Command::new(env!("CARGO_BIN_EXE_intercom")),
    };
    c.args(args).arg("--config").arg(config);
    c.env_remove("INTERCOM_CONTROL_TOKEN").env_remove("INTERCOM_TWILIO_AUTH_TOKEN");
    c.stdin(std::process::Stdio::null()).output().expect("setpriv (util-linux)")
}

fn running_as_root() -> bool {
    std::os::unix::fs::MetadataExt::uid(&fs::metadata("/proc/self").unwrap()) == 0
}

#[test]
fn without_sudo_a_command_reads_what_it_needs_and_names_the_file_it_cannot() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("nosudo");
    let mut c = base_config();
    c["webhook"]["public_url"] = json!(PUBLIC);
    let s = Server::start_in(dir.path(), c.clone(), &[]);
    // The secrets file, root's alone (as the owner without read permission when not root).
    let env = s.config_path.with_file_name("intercom.env");
    fs::write(&env, "INTERCOM_TWILIO_AUTH_TOKEN=twilio-secret-in-the-env-file\n").unwrap();
    let mode = if running_as_root() { 0o600 } else { 0o000 };
    fs::set_permissions(&env, fs::Permissions::from_mode(mode)).unwrap();
    let sudo = format!("{} is not readable by this user: run it with sudo", env.display());

    // The control token is in the config and these need no Twilio secret: they work.
    let o = cli_without_sudo(&s.config_path, &["status"]);
    assert!(o.status.success() && stdout(&o).trim() == "closed", "{}", stderr(&o));
    assert!(cli_without_sudo(&s.config_path, &["url"]).status.success());
    // These need the secrets file: they say so, and doctor does not send you elsewhere.
    for args in [&["check-config"][..], &["twilio-setup", "--dry-run"], &["doctor"]] {
        let o = cli_without_sudo(&s.config_path, args);
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!o.status.success() && all.contains(&sudo), "{args:?}: {all}");
        assert!(!all.contains("check-config`"), "{args:?}: {all}");
    }
    // Without control.token in the config, the secrets file may hold it.
    c["control"].as_object_mut().unwrap().remove("token");
    c["state_dir"] = json!(s.state_dir);
    fs::write(&s.config_path, c.to_string()).unwrap();
    let o = cli_without_sudo(&s.config_path, &["status"]);
    assert!(!o.status.success() && stderr(&o).contains(&sudo), "{}", stderr(&o));
    // Without a secrets file, the token the server made is in its state directory.
    fs::remove_file(&env).unwrap();
    fs::create_dir_all(&s.state_dir).unwrap();
    fs::write(s.state_dir.join("control-token"), "a-token-only-the-service-reads\n").unwrap();
    fs::set_permissions(s.state_dir.join("control-token"), fs::Permissions::from_mode(mode)).unwrap();
    let o = cli_without_sudo(&s.config_path, &["status"]);
    let token_file = s.state_dir.join("control-token");
    let says = format!("{} is not readable by this user: run it with sudo", token_file.display());
    assert!(!o.status.success() && stderr(&o).contains(&says), "{}", stderr(&o));
}

#[test]
fn a_token_mismatch_says_the_tokens_differ_and_how_to_fix_it() {
    let s = Server::start(base_config());
    // The config changed after the server started: its token is not the server's.
    let mut c: serde_json::Value = serde_json::from_slice(&fs::read(&s.config_path).unwrap()).unwrap();
    c["control"]["token"] = json!("a-new-token-not-yet-in-use-0123");
    fs::write(&s.config_path, c.to_string()).unwrap();
    let o = s.cli(&["status"]);
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("holds a different control token"), "{err}");
    assert!(err.contains("restart the server so it uses the new one"), "{err}");
    assert!(!err.contains("a-new-token") && !err.contains(TOKEN), "{err}");
}
