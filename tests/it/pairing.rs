//! Paired devices over real HTTP: `intercom pair`, the one-time exchange, the cookie and
//! the page key, revocation, and the checks that keep another site (or a rebinding DNS
//! name, or a server on another port that received the cookie) from using a paired
//! browser's credential.

use std::net::SocketAddr;

use crate::harness::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// One request with the Host, Origin and Content-Type a browser would send, and the cookie.
fn browser(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    parse_reply(&raw(addr, req.as_bytes()))
}

/// A paired browser's credential: the cookie's value and the key its page keeps.
#[derive(Default, Clone)]
pub struct Phone {
    pub cookie: String,
    pub key: String,
}

/// A same-origin JSON request from the page, with the phone's cookie and key if any.
pub fn page_call(s: &Server, method: &str, path: &str, phone: &Phone, body: &str) -> Reply {
    let host = s.control.to_string();
    let origin = format!("http://{host}");
    let cookie = format!("intercom_device={}", phone.cookie);
    let mut headers = vec![("Origin", origin.as_str()), ("Content-Type", "application/json")];
    if !phone.cookie.is_empty() {
        headers.push(("Cookie", &cookie));
    }
    if !phone.key.is_empty() {
        headers.push(("X-Intercom-Key", &phone.key));
    }
    browser(s.control, method, path, &host, &headers, body)
}

/// `intercom pair NAME`: the link it prints and its code.
pub fn pair_link(s: &Server, name: &str) -> String {
    let o = s.cli(&["pair", name]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains('█'), "a QR code is printed: {out}");
    let link = out.lines().map(str::trim).find(|l| l.starts_with("http://")).unwrap().to_string();
    assert!(link.contains(&format!(":{}/pair#c=", s.control.port())), "{link}");
    link.split("#c=").nth(1).unwrap().to_string()
}

/// Spends a pairing code as the page does: the cookie, and the page key from the body.
pub fn exchange(s: &Server, code: &str) -> Phone {
    let r = page_call(s, "POST", "/api/pair", &Phone::default(), &format!("{{\"code\": \"{code}\"}}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let set = r.header("set-cookie").expect("a cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "{set}");
    }
    let cookie = set.strip_prefix("intercom_device=").unwrap().split(';').next().unwrap().to_string();
    let key = r.json()["page_key"].as_str().expect("a page key in the body").to_string();
    assert!(key.len() == 64 && key != cookie && !set.contains(&key), "{set} {key}");
    Phone { cookie, key }
}

#[test]
fn a_link_pairs_once_the_phone_acts_by_name_and_revoking_shuts_it_out() {
    let s = Server::start(base_config());
    let code = pair_link(&s, "Anna's phone");
    let phone = exchange(&s, &code);
    // Used at most once.
    let again = page_call(&s, "POST", "/api/pair", &Phone::default(), &format!("{{\"code\": \"{code}\"}}"));
    assert_eq!(again.status, 403);
    assert!(again.header("set-cookie").is_none());
    assert!(again.json()["error"].as_str().unwrap().contains("used up or too old"));

    assert_eq!(page_call(&s, "GET", "/api/status", &phone, "").status, 200);
    let opened = page_call(&s, "POST", "/api/open", &phone, r#"{"minutes": 30}"#);
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(opened.json()["open"], true);
    let events = page_call(&s, "GET", "/api/events?limit=1", &phone, "").json();
    assert_eq!(events["events"][0]["message"], "Window opened for 30m by Anna's phone");

    // The file keeps a hash, never the secret.
    let file = std::fs::read_to_string(s.state_dir.join("devices.json")).unwrap();
    assert!(
        file.contains("Anna's phone") && !file.contains(&phone.cookie) && !file.contains(&phone.key),
        "{file}"
    );

    let list = stdout(&s.cli(&["devices"]));
    assert!(list.contains("\"Anna's phone\""), "{list}");
    let id = list.split_whitespace().next().unwrap().to_string();
    let mine = page_call(&s, "GET", "/api/devices", &phone, "").json();
    assert_eq!(mine["devices"][0]["this_device"], true);
    assert_eq!(mine["devices"][0]["id"], id.as_str());

    let o = s.cli(&["devices", "rm", &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(page_call(&s, "GET", "/api/status", &phone, "").status, 401);
    assert_eq!(page_call(&s, "POST", "/api/close", &phone, "").status, 401);
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], true, "a revoked device changed nothing");
    assert!(stdout(&s.cli(&["devices"])).contains("no paired devices"));
    // The bearer token still works for scripts.
    assert_eq!(s.api("POST", "/api/close", "").status, 200);
}

#[test]
fn another_site_or_a_rebinding_name_cannot_use_the_cookie() {
    let s = Server::start(base_config());
    let ben = exchange(&s, &pair_link(&s, "Ben"));
    let host = s.control.to_string();
    let own = format!("http://{host}");
    let jar = format!("intercom_device={}", ben.cookie);
    let json = ("Content-Type", "application/json");
    let attacks: Vec<(&str, Vec<(&str, &str)>)> = vec![
        // A form POST from another LAN page: another origin, a simple content type.
        (
            host.as_str(),
            vec![("Origin", "http://127.0.0.2:9999"), ("Content-Type", "application/x-www-form-urlencoded")],
        ),
        (host.as_str(), vec![("Origin", "http://127.0.0.2:9999"), json]),
        (host.as_str(), vec![("Origin", "null"), json]),
        // Same origin, but a simple content type (what a form can send).
        (host.as_str(), vec![("Origin", &own), ("Content-Type", "text/plain")]),
        (host.as_str(), vec![("Origin", &own)]),
        // No Origin at all.
        (host.as_str(), vec![json]),
        // DNS rebinding: the attacker's name resolves to us; Origin and Host agree.
        ("evil.example:8081", vec![("Origin", "http://evil.example:8081"), json]),
    ];
    for (h, headers) in &attacks {
        let mut headers = headers.clone();
        headers.extend([("Cookie", jar.as_str()), ("X-Intercom-Key", &ben.key)]);
        let r = browser(s.control, "POST", "/api/open", h, &headers, r#"{"minutes": 60}"#);
        assert_eq!(r.status, 403, "{h} {headers:?}: {}", r.body);
        assert!(!r.body.contains("minutes"), "plain words, no field names: {}", r.body);
    }
    // A rebinding page cannot read either.
    let r = browser(
        s.control,
        "GET",
        "/api/status",
        "evil.example",
        &[("Cookie", &jar), ("X-Intercom-Key", &ben.key)],
        "",
    );
    assert_eq!(r.status, 403);
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);

    // A cross-site page cannot spend a pairing code (and so log a browser in to its
    // own device); the code still works from the page afterwards.
    let code = pair_link(&s, "Cleo");
    let body = format!("{{\"code\": \"{code}\"}}");
    let r =
        browser(s.control, "POST", "/api/pair", &host, &[("Origin", "http://127.0.0.2:9999"), json], &body);
    assert_eq!(r.status, 403);
    exchange(&s, &code);
    // A configured name is accepted.
    let mut config = base_config();
    config["control"]["hosts"] = serde_json::json!(["intercom.local"]);
    let named = Server::start(config);
    let dan = exchange(&named, &pair_link(&named, "Dan"));
    let jar = format!("intercom_device={}", dan.cookie);
    let r = browser(
        named.control,
        "POST",
        "/api/close",
        "intercom.local:8081",
        &[("Origin", "http://intercom.local:8081"), json, ("Cookie", &jar), ("X-Intercom-Key", &dan.key)],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Issue 26: every port of the host receives the cookie (cookies are not bound to a
/// port), so whoever runs a server there has it. Replayed with the right Host, Origin
/// and JSON, the cookie alone opens nothing and reads nothing; neither does a wrong or
/// another phone's page key, nor the key without the cookie.
#[test]
fn the_cookie_alone_opens_nothing_and_reads_nothing() {
    let s = Server::start(base_config());
    let anna = exchange(&s, &pair_link(&s, "Anna's phone"));
    let ben = exchange(&s, &pair_link(&s, "Ben"));
    let stolen = [
        Phone { cookie: anna.cookie.clone(), key: String::new() },
        Phone { cookie: anna.cookie.clone(), key: "0".repeat(64) },
        Phone { cookie: anna.cookie.clone(), key: ben.key.clone() },
        Phone { cookie: anna.key.clone(), key: anna.cookie.clone() },
        Phone { cookie: String::new(), key: anna.key.clone() },
    ];
    for phone in &stolen {
        for (method, path, body) in [
            ("POST", "/api/open", r#"{"minutes": 60}"#),
            ("GET", "/api/status", ""),
            ("GET", "/api/events", ""),
            ("GET", "/api/devices", ""),
            ("POST", "/api/pairings", r#"{"name": "Mallory"}"#),
        ] {
            let r = page_call(&s, method, path, phone, body);
            assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
            assert!(r.header("set-cookie").is_none());
        }
    }
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);
    let history = events(&s, 50);
    assert!(history.iter().all(|e| !e["message"].as_str().unwrap().contains("by Anna")), "{history:?}");
    // Both together are Anna, and each status she reads renews her cookie (the page
    // itself no longer does: a page load carries no key).
    let r = page_call(&s, "GET", "/api/status", &anna, "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r
        .header("set-cookie")
        .is_some_and(|c| c.starts_with(&format!("intercom_device={};", anna.cookie))));
    let opened = page_call(&s, "POST", "/api/open", &anna, r#"{"minutes": 30}"#);
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(events(&s, 1)[0]["message"], "Window opened for 30m by Anna's phone");
}

#[test]
fn devices_survive_a_restart_and_a_corrupt_file_is_moved_aside() {
    let dir = TempDir::new("pairing-restart");
    let s = Server::start_in(dir.path(), base_config(), &[]);
    let phone = exchange(&s, &pair_link(&s, "Anna's phone"));
    let state_dir = s.state_dir.clone();
    s.kill9();
    let s = Server::start_in(dir.path(), base_config(), &[]);
    assert_eq!(page_call(&s, "GET", "/api/status", &phone, "").status, 200);
    // A pairing link does not outlive the server that made it.
    let code = pair_link(&s, "Ben");
    s.kill9();
    std::fs::write(state_dir.join("devices.json"), b"{\"version\": 1, \"devices\": [").unwrap();
    let s = Server::start_in(dir.path(), base_config(), &[]);
    assert!(s.wait_for_log("every phone must pair again"), "{}", s.logs());
    assert_eq!(page_call(&s, "GET", "/api/status", &phone, "").status, 401);
    assert_eq!(
        page_call(&s, "POST", "/api/pair", &Phone::default(), &format!("{{\"code\": \"{code}\"}}")).status,
        403
    );
    let aside = std::fs::read_dir(&state_dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("devices.json.bad-"))
        .count();
    assert_eq!(aside, 1);
    // Pairing works again and writes a new file.
    let phone = exchange(&s, &pair_link(&s, "Anna's phone"));
    assert_eq!(page_call(&s, "GET", "/api/status", &phone, "").status, 200);
}

#[test]
fn bad_pairing_requests_are_clear_4xx() {
    let s = Server::start(base_config());
    for body in ["", "{}", r#"{"name": ""}"#, r#"{"name": 5}"#, r#"{"name": "a", "x": 1}"#, "not json"] {
        let r = s.api("POST", "/api/pairings", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let long = format!("{{\"name\": \"{}\"}}", "x".repeat(41));
    assert_eq!(s.api("POST", "/api/pairings", &long).status, 400);
    assert_eq!(s.api("GET", "/api/pairings", "").status, 405);
    assert_eq!(s.api("DELETE", "/api/devices/nope", "").status, 404);
    assert_eq!(page_call(&s, "POST", "/api/pair", &Phone::default(), r#"{"code": "guess"}"#).status, 403);
    assert_eq!(page_call(&s, "GET", "/api/pair", &Phone::default(), "").status, 405);
    assert_eq!(request(s.control, "POST", "/api/pairings", &[], b"{\"name\": \"x\"}").status, 401);
    assert!(s.cli(&["pair", ""]).status.code() != Some(0));
    // The page, the pairing page and the home-screen assets are served without a credential.
    let page = request(s.control, "GET", "/pair", &[], b"");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("manifest.webmanifest"));
    let manifest = request(s.control, "GET", "/manifest.webmanifest", &[], b"");
    assert_eq!(manifest.header("content-type").as_deref(), Some("application/manifest+json"));
    assert_eq!(manifest.json()["start_url"], "/");
    let icon = request(s.control, "GET", "/icon.svg", &[], b"");
    assert!(icon.status == 200 && icon.body.starts_with("<svg"));
    for listed in manifest.json()["icons"].as_array().unwrap() {
        let path = listed["src"].as_str().unwrap();
        let r = request(s.control, "GET", path, &[], b"");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type").as_deref(), listed["type"].as_str(), "{path}");
    }
    assert_eq!(request(s.control, "POST", "/icon-192.png", &[], b"").status, 405);
}

#[test]
fn a_disk_that_takes_no_writes_pairs_nobody_and_still_revokes_for_good() {
    let dir = TempDir::new("pairing-disk");
    let s = Server::start_in(dir.path(), base_config(), &[]);
    // First pairing makes the state directory exist; then block the temp file's name.
    let phone = exchange(&s, &pair_link(&s, "Anna's phone"));
    let obstruction = s.state_dir.join(".devices.json.tmp");
    std::fs::create_dir_all(obstruction.join("x")).unwrap();

    let code = pair_link(&s, "Ben");
    let r = page_call(&s, "POST", "/api/pair", &Phone::default(), &format!("{{\"code\": \"{code}\"}}"));
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.header("set-cookie").is_none());
    assert!(r.json()["error"].as_str().unwrap().contains("could not be saved"), "{}", r.body);
    assert_eq!(s.api("GET", "/api/devices", "").json()["devices"].as_array().unwrap().len(), 1);

    // Revoking always works: memory at once, and the file is set aside (a rename needs no
    // space), so a restart before the disk recovers lets nobody back in.
    let id = s.api("GET", "/api/devices", "").json()["devices"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.api("DELETE", &format!("/api/devices/{id}"), "").status, 204);
    assert_eq!(page_call(&s, "GET", "/api/status", &phone, "").status, 401, "revoked in memory at once");
    assert!(s.api("GET", "/api/status", "").json()["storage_problem"].is_string(), "the page says why");
    let files: Vec<String> = std::fs::read_dir(&s.state_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().any(|f| f.starts_with("devices.json.unsaved")), "{files:?}");
    let state_dir = s.state_dir.clone();
    s.kill9();
    let s = Server::start_in(dir.path(), base_config(), &[]);
    assert_eq!(page_call(&s, "GET", "/api/status", &phone, "").status, 401, "still out after a restart");
    std::fs::remove_dir_all(&obstruction).unwrap();
    assert_eq!(state_dir, s.state_dir);
}
