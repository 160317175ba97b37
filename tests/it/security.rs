//! Only Twilio, only from the intercom: signatures, listener separation, bad input.

use serde_json::json;

use crate::harness::*;

#[test]
fn correctly_signed_post_and_get_are_answered_with_and_without_port() {
    let s = Server::start(signed_config());
    for base in [PUBLIC, "https://door.example.com:443"] {
        let sig = sign(AUTH_TOKEN, &format!("{base}/voice"), CALL);
        let r = post_signed(&s, "/voice", CALL, Some(&sig));
        assert_eq!(r.status, 200, "{base}: {}", r.body);
        assert!(r.body.contains("<Dial"));

        let q = "From=%2B15558889999&CallSid=CAget";
        let sig = sign(AUTH_TOKEN, &format!("{base}/?{q}"), &[]);
        let r = request(s.webhook, "GET", &format!("/?{q}"), &[("X-Twilio-Signature", &sig)], b"");
        assert_eq!(r.status, 200, "{base}: {}", r.body);
        assert!(r.body.contains("<Dial"));
    }
}

#[test]
fn query_overrides_are_covered_by_the_signature() {
    let s = Server::start(signed_config());
    let path = "/voice?PhoneNumberToDial=%2B15557776666";
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}{path}"), CALL);
    let r = post_signed(&s, path, CALL, Some(&sig));
    assert!(r.body.contains("<Number>+15557776666</Number>"), "{}", r.body);
    // The same signature with the number changed is refused.
    let r = post_signed(&s, "/voice?PhoneNumberToDial=%2B19005550000", CALL, Some(&sig));
    assert_eq!(r.status, 403);
    assert!(!r.is_twiml());
}

#[test]
fn repeated_parameters_are_signed_value_by_value() {
    let s = Server::start(signed_config());
    let mut form = CALL.to_vec();
    form.push(("StirVerstat", "TN-Validation-Passed-A"));
    form.push(("StirVerstat", "TN-Validation-Passed-B"));
    let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &form);
    assert_eq!(post_signed(&s, "/voice", &form, Some(&sig)).status, 200);
    form.pop();
    assert_eq!(post_signed(&s, "/voice", &form, Some(&sig)).status, 403);
}

#[test]
fn forged_calls_are_403_and_never_unlock_while_a_window_is_open() {
    let s = Server::start(signed_config());
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 60}"#).status, 200);
    let good = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), CALL);
    let mut changed = CALL.to_vec();
    changed[1] = ("CallSid", "CAother");
    let forgeries = [
        ("no signature", None),
        ("empty", Some(String::new())),
        ("garbage", Some("not-a-signature".to_string())),
        ("another token", Some(sign("another-token", &format!("{PUBLIC}/voice"), CALL))),
        ("another URL", Some(sign(AUTH_TOKEN, "https://evil.example.com/voice", CALL))),
        ("another path", Some(sign(AUTH_TOKEN, &format!("{PUBLIC}/"), CALL))),
        ("internal address", Some(sign(AUTH_TOKEN, &format!("http://{}/voice", s.webhook), CALL))),
        ("one parameter changed", Some(sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &changed))),
    ];
    for (what, sig) in &forgeries {
        let r = post_signed(&s, "/voice", CALL, sig.as_deref());
        assert_eq!(r.status, 403, "{what}");
        assert!(!r.is_twiml() && !r.body.contains("Play"), "{what}: {}", r.body);
    }
    // GET with the signature of the POST, and POST with a second signature header.
    let r = request(s.webhook, "GET", "/voice?From=%2B15558889999", &[("X-Twilio-Signature", &good)], b"");
    assert_eq!(r.status, 403);
    let body = form_body(CALL);
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Twilio-Signature", good.as_str()),
        ("X-Twilio-Signature", good.as_str()),
    ];
    assert_eq!(request(s.webhook, "POST", "/voice", &headers, body.as_bytes()).status, 403);

    assert!(s.wait_for_log("invalid X-Twilio-Signature"));
    assert!(s.logs().contains("from 127.0.0.1"), "the caller's address is logged");
    // A flood of forgeries writes a few lines, not one per forgery (journald would
    // rate-limit the service and drop the lines that matter).
    for _ in 0..100 {
        assert_eq!(post_signed(&s, "/voice", CALL, None).status, 403);
    }
    let lines = s.logs().matches("invalid X-Twilio-Signature").count();
    assert!((1..=5).contains(&lines), "{lines} lines for 111 forgeries:\n{}", s.logs());
    assert!(!s.logs().contains(AUTH_TOKEN));
    // The genuine call still unlocks, and the window is untouched by the forgeries.
    let r = post_signed(&s, "/voice", CALL, Some(&good));
    assert!(r.body.contains("<Play digits=\"ww9\"/>"), "{}", r.body);
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], true);
}

#[test]
fn auth_token_from_the_environment_is_used_and_never_logged() {
    let dir = TempDir::new("envtoken");
    let mut c = signed_config();
    c["twilio"] = json!({});
    let s = Server::start_in(dir.path(), c, &[("INTERCOM_TWILIO_AUTH_TOKEN", "env-auth-token-123")]);
    let sig = sign("env-auth-token-123", &format!("{PUBLIC}/voice"), CALL);
    assert_eq!(post_signed(&s, "/voice", CALL, Some(&sig)).status, 200);
    let old = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), CALL);
    assert_eq!(post_signed(&s, "/voice", CALL, Some(&old)).status, 403);
    assert!(!s.logs().contains("env-auth-token-123"));
}

/// Issue 26: with no auth token, `serve` refuses to start unless the config asks for
/// unsigned webhooks by name (a token left in intercom.env, which a `serve` started by
/// hand never reads, must not mean "accept anyone"); the status says what it does.
#[test]
fn without_auth_token_serve_refuses_unless_unsigned_is_allowed_by_name() {
    let dir = TempDir::new("unsigned");
    let mut c = base_config();
    c["webhook"].as_object_mut().unwrap().remove("allow_unsigned");
    c["state_dir"] = json!(dir.path().join("state"));
    let path = dir.path().join("intercom.json");
    std::fs::write(&path, c.to_string()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_intercom"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("INTERCOM_TWILIO_AUTH_TOKEN")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It must exit by itself; one that serves instead is killed and fails here.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code().is_some_and(|c| c != 0), "{:?}: {err}", o.status);
    for name in ["twilio.auth_token", "INTERCOM_TWILIO_AUTH_TOKEN", "webhook.allow_unsigned"] {
        assert!(err.contains(name), "{name}: {err}");
    }
    assert!(!dir.path().join("state").exists(), "nothing was touched");
    let checked = String::from_utf8_lossy(&cli(&path, &["check-config"]).stdout).to_string();
    assert!(
        checked.contains("twilio.auth_token    (not set: `serve` refuses to start without it)"),
        "{checked}"
    );

    // Asked for by name: it starts, warns, takes unsigned calls and says so.
    let s = Server::start(base_config());
    assert!(s.logs().contains("signatures are NOT checked"), "{}", s.logs());
    assert_eq!(s.api("GET", "/api/status", "").json()["signatures_checked"], false);
    assert!(s.ring(INTERCOM).body.contains("<Dial"));
    let s = Server::start(signed_config());
    assert!(!s.logs().contains("signatures are NOT checked"));
    assert_eq!(s.api("GET", "/api/status", "").json()["signatures_checked"], true);
    assert_eq!(s.ring(INTERCOM).status, 403);
}

#[test]
fn the_webhook_listener_serves_no_control_route_whatever_the_spelling() {
    let s = Server::start(base_config());
    let auth = format!("Bearer {TOKEN}");
    let tricks = [
        "/api/open",
        "//api/open",
        "/%61pi/open",
        "/api%2Fopen",
        "/api/open/",
        "/API/OPEN",
        "/./api/open",
        "/voice/../api/open",
        "/voice/%2e%2e/api/open",
        "/api/open?minutes=60",
        "/api/status",
        "/api/close",
    ];
    for path in tricks {
        for method in ["POST", "GET", "PUT"] {
            let r = request(s.webhook, method, path, &[("Authorization", &auth)], br#"{"minutes": 60}"#);
            assert!(r.status == 404 || r.status == 405, "{method} {path}: {}", r.status);
            assert!(!r.body.contains("open_until"), "{method} {path}");
        }
    }
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);
    // Nor does the control page live there.
    assert_eq!(request(s.webhook, "GET", "/", &[], b"").status, 200);
    assert!(request(s.webhook, "GET", "/", &[], b"").is_twiml(), "/ is the webhook here");
}

#[test]
fn bad_input_gets_4xx_changes_nothing_and_the_server_keeps_serving() {
    let s = Server::start(base_config());
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("POST", "/voice", b"From=%2B1555%ZZ".to_vec(), 400),
        ("POST", "/voice", b"From=%".to_vec(), 400),
        ("POST", "/voice", b"From=\xff\xfe".to_vec(), 400),
        ("POST", "/voice", b"From=%C3%28".to_vec(), 400),
        ("POST", "/voice", b"From=%2B15558889999&From=%2B15550000000".to_vec(), 400),
        ("POST", "/voice", "a=1&".repeat(500).into_bytes(), 400),
        ("POST", "/voice", format!("From={}", "9".repeat(20_000)).into_bytes(), 413),
        ("GET", "/voice?From=%2B1%GG", Vec::new(), 400),
        ("GET", "/voice?From=%2B15558889999&From=%2B15558889999", Vec::new(), 400),
        ("GET", "/voice?PhoneNumberToDial=x&From=%2B15558889999", Vec::new(), 400),
    ];
    for (method, path, body, want) in cases {
        let r = request(s.webhook, method, path, &form, &body);
        assert_eq!(
            r.status,
            want,
            "{method} {path} {:?}",
            String::from_utf8_lossy(&body[..body.len().min(40)])
        );
        assert!(!r.is_twiml());
    }
    // JSON where a form is expected.
    let r = request(
        s.webhook,
        "POST",
        "/voice",
        &[("Content-Type", "application/json")],
        br#"{"From":"+15558889999"}"#,
    );
    assert_eq!(r.status, 415);

    // Garbage on the control API.
    let auth = format!("Bearer {TOKEN}");
    for body in [&b"\xff\xfe"[..], b"{\"minutes\":", b"null", b"{\"minutes\": 1e400}", &[b'['; 5000][..]] {
        let r = request(s.control, "POST", "/api/open", &[("Authorization", &auth)], body);
        assert!(r.status == 400 || r.status == 413, "{:?}: {}", String::from_utf8_lossy(body), r.status);
    }
    assert_eq!(s.api("GET", "/api/status", "").json()["open"], false);
    assert!(s.ring(INTERCOM).body.contains("<Dial"), "still serving");
}

#[test]
fn malformed_http_is_refused_at_the_door() {
    let s = Server::start(base_config());
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"GET /voice HTTP/9.9\r\n\r\n".to_vec(), 505),
        (b"GET http://evil/voice HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"POST /voice HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nFrom=".to_vec(), 400),
        (b"POST /voice HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 501),
        (b"POST /voice HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n".to_vec(), 413),
        (format!("GET /voice HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(9000)).into_bytes(), 431),
        (format!("GET /voice HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(100)).into_bytes(), 431),
        (b"GET /voice HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(), 400),
    ];
    for (bytes, want) in cases {
        let r = parse_reply(&raw(s.webhook, &bytes));
        assert_eq!(r.status, want, "{:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(60)]));
        assert!(!r.is_twiml());
    }
    assert!(s.ring(INTERCOM).body.contains("<Dial"), "still serving");
}

#[test]
fn a_large_body_is_refused_before_it_is_sent() {
    use std::io::{Read, Write};
    let s = Server::start(base_config());
    let mut c = std::net::TcpStream::connect(s.webhook).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    // Announce 1 GB and send none of it: the answer must come anyway.
    c.write_all(b"POST /voice HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000000\r\n\r\n").unwrap();
    let mut buf = [0u8; 256];
    let n = c.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[test]
fn expect_100_continue_and_keep_alive_work() {
    use std::io::{BufRead, BufReader, Read, Write};
    let s = Server::start(base_config());
    let mut c = std::net::TcpStream::connect(s.webhook).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let body = "From=%2B15558889999";
    write!(c, "POST /voice HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    r.read_line(&mut line).unwrap();
    c.write_all(body.as_bytes()).unwrap();
    // Two answers on one connection.
    for _ in 0..2 {
        let mut len = 0;
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if l == "\r\n" {
                break;
            }
        }
        let mut b = vec![0; len];
        r.read_exact(&mut b).unwrap();
        assert!(String::from_utf8_lossy(&b).contains("<Dial"));
        write!(c, "POST /voice HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    }
}

#[test]
fn a_client_that_trickles_its_request_is_cut_off() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let s = Server::start(base_config());
    let mut c = std::net::TcpStream::connect(s.webhook).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let start = Instant::now();
    let head = b"GET /voice?From=%2B15558889999 HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let mut closed_after = None;
    // One byte every 200 ms, forever; bounded at 15 s.
    'outer: for i in 0.. {
        if start.elapsed() > Duration::from_secs(15) {
            break;
        }
        if c.write_all(&[head.get(i).copied().unwrap_or(b'a')]).is_err() {
            closed_after = Some(start.elapsed());
            break;
        }
        let mut buf = [0u8; 512];
        match c.read(&mut buf) {
            Ok(0) => {
                closed_after = Some(start.elapsed());
                break 'outer;
            }
            Ok(n) => {
                assert!(String::from_utf8_lossy(&buf[..n]).contains("408"));
                closed_after = Some(start.elapsed());
                break 'outer;
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
            }
            Err(_) => {
                closed_after = Some(start.elapsed());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = closed_after.expect("the trickling client was never cut off");
    eprintln!("trickling client cut off after {after:?}");
    assert!(after >= Duration::from_secs(4) && after < Duration::from_secs(8), "{after:?}");
}

/// RFC 9112 section 2.2: a server should ignore empty lines before a request line. A
/// client that ends a body with an extra CRLF on a keep-alive connection must not have
/// its next call refused.
#[test]
fn empty_lines_before_a_request_line_are_skipped() {
    let s = Server::start(base_config());
    let body = "From=%2B15558889999";
    let call = |close: &str| {
        format!("POST /voice HTTP/1.1\r\nHost: x\r\n{close}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}", body.len())
    };
    let bytes = format!("{}\r\n\r\n\n{}", call(""), call("Connection: close\r\n"));
    let answer = String::from_utf8_lossy(&raw(s.webhook, bytes.as_bytes())).to_string();
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    assert_eq!(answer.matches("<Dial").count(), 2, "{answer}");
    // Also before the very first request of a connection.
    let answer = raw(s.webhook, format!("\r\n{}", call("Connection: close\r\n")).as_bytes());
    assert!(parse_reply(&answer).body.contains("<Dial"), "{}", String::from_utf8_lossy(&answer));
}

/// After a refusal the server reads a little of what the client still sends (so the
/// answer is not lost to a reset), but only briefly: a client that keeps trickling a
/// byte at a time must not hold the connection (a thread) for hours.
#[test]
fn a_refused_client_that_keeps_trickling_is_closed_soon() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let s = Server::start(base_config());
    let mut c = std::net::TcpStream::connect(s.webhook).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = [0u8; 12];
    c.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 505");
    let start = Instant::now();
    // A byte every 100 ms; once the server has closed, a write is reset. Bounded at 10 s.
    let closed_after = loop {
        if c.write_all(b"x").is_err() {
            break Some(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(10) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let after = closed_after.expect("the server kept draining a trickling client for 10 s");
    assert!(after < Duration::from_secs(3), "{after:?}");
}

#[test]
fn a_panicking_or_failing_request_does_not_stop_the_server() {
    // Sending nonsense in every way at once, then a normal call.
    let s = Server::start(base_config());
    for _ in 0..20 {
        let _ = raw(s.webhook, b"\x00\x01\x02\r\n\r\n");
        let _ =
            raw(s.control, b"POST /api/open HTTP/1.1\r\nConnection: close\r\nContent-Length: 3\r\n\r\n{{{");
    }
    assert!(s.ring(INTERCOM).body.contains("<Dial"));
    assert_eq!(s.api("GET", "/api/status", "").status, 200);
}

#[test]
fn an_empty_line_after_a_bare_line_feed_ends_the_head() {
    // `\n\r\n` is an empty line: what follows is the next request, never more headers of
    // this one (a proxy in front may see it the same way or as the body: smuggling).
    let s = Server::start(base_config());
    let out = raw(
        s.webhook,
        b"GET /healthz HTTP/1.1\nHost: x\n\r\nGET /nothing-here HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\r\n\r\nok\nHTTP/1.1 404"), "two answers, 200 then 404: {text}");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 2, "{text}");
}

#[test]
fn the_control_listener_refuses_oversized_requests_in_json() {
    let s = Server::start(base_config());
    let auth = format!("Bearer {TOKEN}");
    let big_body = vec![b' '; 5000];
    let r = request(s.control, "POST", "/api/open", &[("Authorization", &auth)], &big_body);
    assert_eq!(r.status, 413);
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
    assert!(r.json()["error"].as_str().unwrap().contains("too large"), "{}", r.body);
    let big_head = format!("GET /api/status HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
    let r = parse_reply(&raw(s.control, big_head.as_bytes()));
    assert_eq!(r.status, 431);
    assert!(r.json()["error"].is_string(), "{}", r.body);
    // The webhook's refusals stay plain text.
    let r = parse_reply(&raw(s.webhook, big_head.as_bytes()));
    assert_eq!((r.status, r.header("content-type").as_deref()), (431, Some("text/plain; charset=utf-8")));
}
