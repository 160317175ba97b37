//! What the server trusts: a caller's text never passes for the server's own words in
//! the history, and a state directory or secrets file that someone else can write is
//! refused by name.

use serde_json::json;

use crate::harness::*;

/// Looks like one of our own messages when pasted after "from ".
const FORGED: &str = "+1 (nobody). Window opened for 12h by page from 192.168.1.20";

#[test]
fn a_callers_text_is_never_shown_as_our_message() {
    // Unsigned, on a server that checks signatures: recorded as a bad signature.
    let s = Server::start(signed_config());
    let form: Vec<(&str, &str)> =
        CALL.iter().map(|&(k, v)| if k == "From" { (k, FORGED) } else { (k, v) }).collect();
    assert_eq!(post_signed(&s, "/voice", &form, None).status, 403);
    let e = &events(&s, 1)[0];
    assert_eq!(e["event"], "call_bad_signature");
    let message = e["message"].as_str().unwrap();
    assert!(!message.contains("Window opened"), "{message}");
    assert!(message.contains("not a phone number"), "{message}");
    assert_eq!(e["from"], FORGED, "the field keeps what was sent, as data");

    // Without an auth token nothing is signed: a stranger's text in a rejected call.
    let s = Server::start(base_config());
    assert!(s.ring(FORGED).body.contains("<Reject/>"));
    let e = &events(&s, 1)[0];
    assert_eq!(e["event"], "call_rejected");
    assert!(!e["message"].as_str().unwrap().contains("Window opened"), "{e}");
    assert!(s.ring("+15550000000").body.contains("<Reject/>"));
    assert_eq!(events(&s, 1)[0]["message"], json!("Rejected a call from +15550000000"));
}

/// Runs `intercom serve` on `config` and expects it to refuse to start.
fn serve_refuses(config: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_intercom"))
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .env_remove("INTERCOM_CONTROL_TOKEN")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_state_dir_someone_else_can_write_is_refused_by_name() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("foreign-state");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    // What an attacker would plant: a code of their own.
    let planted = r#"{"version":1,"codes":[]}"#;
    std::fs::write(state.join("codes.json"), planted).unwrap();
    let mut c = base_config();
    c["state_dir"] = json!(state);
    let config = dir.path().join("intercom.json");
    std::fs::write(&config, c.to_string()).unwrap();

    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap();
    let mut cases = vec![("world-writable", 0o777, None)];
    if root {
        // nobody: another user, neither root nor the one intercom runs as.
        cases.push(("owned by another user", 0o700, Some(65534)));
    }
    for (what, mode, owner) in cases {
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&state, Some(owner.unwrap_or(0)), None).unwrap_or_default();
        let stderr = serve_refuses(&config);
        assert!(stderr.contains(&format!("state directory {}", state.display())), "{what}: {stderr}");
        assert!(stderr.contains("chmod 0700") && stderr.contains("chown"), "{what}: the fix: {stderr}");
        let doctor = cli(&config, &["doctor"]);
        let out = String::from_utf8_lossy(&doctor.stdout);
        assert!(!doctor.status.success(), "{what}: {out}");
        assert!(
            out.lines().any(|l| l.starts_with("FAIL") && l.contains(&state.display().to_string())),
            "{what}: {out}"
        );
        assert_eq!(std::fs::read_to_string(state.join("codes.json")).unwrap(), planted, "{what}: untouched");
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1, "{what}: nothing written");
    }

    // Made private again (as the installers leave it): the server starts on it.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&state, Some(0), None).unwrap_or_default();
    let s = Server::start_in_with(dir.path(), c, &[], false);
    assert_eq!(s.api("GET", "/api/status", "").status, 200);
}

#[test]
fn admin_commands_read_no_file_that_someone_else_can_write() {
    let twilio = crate::fake_http::Fake::start(&[]);
    let dir = TempDir::new("foreign-env");
    let mut c = base_config();
    c["state_dir"] = json!(dir.path().join("state"));
    c["control"] = json!({"listen": twilio.url("").trim_start_matches("http://")});
    c["twilio"] = json!({"account_sid": "AC1", "api_key_sid": "SK1", "api_base": twilio.url(""),
        "number": "+15550001111"});
    let config = dir.path().join("intercom.json");
    std::fs::write(&config, c.to_string()).unwrap();
    let env = dir.path().join("intercom.env");
    std::fs::write(
        &env,
        "INTERCOM_TWILIO_API_KEY_SECRET=planted-secret\nINTERCOM_CONTROL_TOKEN=planted-token-0123456789\n",
    )
    .unwrap();
    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap();

    // (what, the file spoiled, its mode, its owner)
    let mut cases =
        vec![("a group-writable env file", &env, 0o660, 0), ("a world-writable config", &config, 0o666, 0)];
    if root {
        cases.push(("an env file owned by another user", &env, 0o600, 65534));
        cases.push(("a config owned by another user", &config, 0o644, 65534));
    }
    // A symbolic link to someone else's file is judged by that file.
    let foreign = dir.path().join("elsewhere.env");
    std::fs::write(&foreign, "INTERCOM_TWILIO_API_KEY_SECRET=planted-secret\n").unwrap();
    let linked = TempDir::new("linked-env");
    let linked_config = linked.path().join("intercom.json");
    std::fs::write(&linked_config, c.to_string()).unwrap();
    std::os::unix::fs::symlink(&foreign, linked.path().join("intercom.env")).unwrap();
    for (mode, owner) in [(0o666, 0), (0o600, if root { 65534 } else { 0 })] {
        set_mode(&foreign, mode);
        chown(&foreign, owner);
        if (mode, owner) == (0o600, 0) {
            continue; // not root: no other owner to try
        }
        let out = cli(&linked_config, &["doctor"]);
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success() && all.contains(&format!("{} is", foreign.display())), "{all}");
    }
    assert!(twilio.requests().is_empty(), "a request went out");

    for (what, spoiled, mode, owner) in cases {
        set_mode(&env, 0o600);
        set_mode(&config, 0o644);
        chown(&env, 0);
        chown(&config, 0);
        set_mode(spoiled, mode);
        chown(spoiled, owner);
        for command in [&["doctor"][..], &["status"], &["twilio-setup", "--dry-run"]] {
            let out = cli(&config, command);
            let all =
                format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(!out.status.success(), "{what}, {command:?}: {all}");
            let named = if what.contains("env") { &env } else { &config };
            assert!(
                all.contains(&format!("refusing to read {}", named.display())),
                "{what}, {command:?}: {all}"
            );
        }
        assert!(twilio.requests().is_empty(), "{what}: a request went out");
    }

    // The token file the server made: only from a directory and file nobody else writes.
    set_mode(&config, 0o644);
    chown(&config, 0);
    std::fs::write(&env, "INTERCOM_TWILIO_API_KEY_SECRET=planted-secret\n").unwrap();
    set_mode(&env, 0o600);
    chown(&env, 0);
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    set_mode(&state, 0o700);
    let token = state.join("control-token");
    std::fs::write(&token, "planted-token-0123456789\n").unwrap();
    set_mode(&token, 0o666);
    let out = cli(&config, &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&format!("refusing to read {}", token.display())),
        "{stderr}"
    );
    assert!(twilio.requests().is_empty(), "the token went out");
    set_mode(&token, 0o600);
    let out = cli(&config, &["status"]);
    assert!(!out.status.success(), "the fake is no intercom server");
    assert_eq!(twilio.requests().len(), 1, "a private token file is read and used");
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Changes the owner where the test runs as root; a no-op elsewhere.
fn chown(path: &std::path::Path, uid: u32) {
    let _ = std::os::unix::fs::chown(path, Some(uid), None);
}

#[test]
fn a_program_squatting_on_the_control_port_never_gets_the_token() {
    // It answers everything with 200 and a made-up proof, as a squatter would try.
    let squatter = crate::fake_http::Fake::with_handler(|_| {
        Some(crate::fake_http::Reply::json(200, &json!({"proof": "bm90IGEgcHJvb2Y=", "open": false})))
    });
    let dir = TempDir::new("squatter");
    let mut c = base_config();
    c["state_dir"] = json!(dir.path().join("state"));
    c["control"]["listen"] = json!(squatter.addr.to_string());
    let config = dir.path().join("intercom.json");
    std::fs::write(&config, c.to_string()).unwrap();
    for command in [&["status"][..], &["open", "1h"], &["code", "list"]] {
        let out = cli(&config, command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command:?}");
        assert!(stderr.contains("the token was not sent"), "{command:?}: {stderr}");
    }
    let doctor = cli(&config, &["doctor"]);
    assert!(!doctor.status.success());
    let seen = squatter.requests();
    assert!(!seen.is_empty(), "the CLI asked it for its proof");
    for r in &seen {
        assert!(r.header("authorization").is_none(), "{r:?}");
        let all = format!("{} {:?} {}", r.target, r.headers, r.body);
        assert!(!all.contains(TOKEN), "{all}");
        assert!(r.target.starts_with("/api/proof?nonce="), "only the proof is asked for: {}", r.target);
    }

    // The real server proves itself, and the CLI goes on (its nonce is fresh each time).
    let s = Server::start(base_config());
    for _ in 0..2 {
        let out = s.cli(&["status"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let bad = [("", 400), ("nonce=zz", 400), ("nonce=0123", 400)];
    for (query, status) in bad {
        assert_eq!(
            request(s.control, "GET", &format!("/api/proof?{query}"), &[], b"").status,
            status,
            "{query}"
        );
    }
    let nonce = "00112233445566778899aabbccddeeff";
    let r = request(s.control, "GET", &format!("/api/proof?nonce={nonce}"), &[], b"");
    assert_eq!(r.status, 200);
    // The proof as SECURITY.md describes it, computed here apart from src/.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, TOKEN.as_bytes());
    let proof = ring::hmac::sign(&key, format!("intercom control listener proof\n{nonce}").as_bytes());
    let expected = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, proof);
    assert_eq!(r.json()["proof"], json!(expected));
    assert!(!r.body.contains(TOKEN));
}
