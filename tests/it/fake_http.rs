//! A real HTTP server on 127.0.0.1 standing in for Twilio's REST API or a webhook target:
//! it records every request and answers from a script (a status, a status with
//! `Retry-After`, or hanging forever), or from a handler that sees the request.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;

/// How long a hanging answer holds the connection (longer than any client timeout).
const HANG: Duration = Duration::from_secs(60);
/// A request slower than this to arrive is a broken client; drop it.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// The status with this `Retry-After` header.
    RetryAfter(u16, &'static str),
    Hang,
}

/// A full answer from a handler.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply { status, content_type: "application/json", body: body.to_string(), headers: Vec::new() }
    }
}

/// What a handler answers: a reply, or `None` to hang.
type Handler = dyn Fn(&Seen) -> Option<Reply> + Send + Sync;

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as form fields, decoded.
    pub fn form(&self) -> Vec<(String, String)> {
        self.body
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub struct Fake {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// Answers the n-th request with `script[n]`, and 200 once the script runs out.
    pub fn start(script: &[Answer]) -> Fake {
        let script = Mutex::new(script.iter().copied().collect::<VecDeque<_>>());
        Fake::with_handler(move |_| {
            let (status, retry_after) =
                match script.lock().unwrap().pop_front().unwrap_or(Answer::Status(200)) {
                    Answer::Hang => return None,
                    Answer::Status(code) => (code, None),
                    Answer::RetryAfter(code, after) => (code, Some(after)),
                };
            let mut reply = Reply::json(status, &serde_json::json!({ "status": status }));
            if let Some(after) = retry_after {
                reply.headers.push(("Retry-After", after.to_string()));
            }
            Some(reply)
        })
    }

    /// Answers each request with what `handler` makes of it (`None`: hang).
    pub fn with_handler(handler: impl Fn(&Seen) -> Option<Reply> + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let keep = seen.clone();
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (seen, handler) = (keep.clone(), handler.clone());
                thread::spawn(move || serve(stream, &seen, &*handler));
            }
        });
        Fake { addr, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` requests arrived; returns what arrived by then.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + within;
        while self.requests().len() < n && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        self.requests()
    }
}

/// An address where nothing listens: connecting is refused.
pub fn refusing_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &Handler) {
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let request = Seen {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    seen.lock().unwrap().push(request.clone());
    match handler(&request) {
        None => thread::sleep(HANG),
        Some(r) => {
            let mut head = format!(
                "HTTP/1.1 {} Scripted\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                r.status,
                r.content_type,
                r.body.len()
            );
            for (name, value) in &r.headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let mut stream = stream;
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(r.body.as_bytes());
        }
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
/// A listener that accepts connections and never answers: a hung tunnel.
pub fn silent_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            held.push(stream); // kept open, never read or answered
        }
    });
    addr
}

/// The fake Twilio account the setup and doctor tests share: its credentials (which no
/// command may ever print) and its intercom number.
pub mod account {
    pub const SID: &str = "AC0123456789abcdef0123456789abcdef";
    pub const KEY_SID: &str = "SK0123456789abcdef0123456789abcdef";
    pub const KEY_SECRET: &str = "api-key-secret-never-printed";
    pub const AUTH_TOKEN: &str = "auth-token-never-printed-42";
    pub const NUMBER: &str = "+15550001111";
    pub const NUMBER_SID: &str = "PN0123456789abcdef0123456789abcdef";
}

/// Twilio's REST API for one account, as far as the intercom uses it: the
/// IncomingPhoneNumbers list (filtered by `PhoneNumber`) and update, Messages, and the
/// Calls resource (read one, update one in progress). It checks HTTP Basic credentials
/// and keeps the numbers and calls, so an update shows in the next lookup.
pub struct FakeTwilio {
    pub http: Fake,
    numbers: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Call SIDs and their status (`in-progress`, `completed`).
    calls: Arc<Mutex<Vec<(String, &'static str)>>>,
    /// While set, an update of a call hangs: Twilio unreachable.
    hang: Arc<AtomicBool>,
}

/// How long an update of a call takes here: long enough that two taps at once overlap.
const CALL_UPDATE_TAKES: Duration = Duration::from_millis(300);

/// `IncomingPhoneNumbers/{sid}.json` form fields and the JSON fields they set.
const NUMBER_FIELDS: [(&str, &str); 6] = [
    ("VoiceUrl", "voice_url"),
    ("VoiceMethod", "voice_method"),
    ("VoiceFallbackUrl", "voice_fallback_url"),
    ("VoiceFallbackMethod", "voice_fallback_method"),
    ("VoiceApplicationSid", "voice_application_sid"),
    ("TrunkSid", "trunk_sid"),
];

impl FakeTwilio {
    /// `numbers`: `(PN sid, E.164 number)`, with voice fields unset.
    pub fn start(account: &str, user: &str, password: &str, numbers: &[(&str, &str)]) -> FakeTwilio {
        let numbers: Vec<_> = numbers
            .iter()
            .map(|(sid, n)| {
                serde_json::json!({"sid": sid, "account_sid": account, "phone_number": n, "friendly_name": n,
                    "voice_url": null, "voice_method": "POST", "voice_fallback_url": null,
                    "voice_fallback_method": "POST", "voice_application_sid": null, "trunk_sid": null,
                    "sms_url": "https://demo.twilio.com/welcome/sms/reply"})
            })
            .collect();
        let numbers = Arc::new(Mutex::new(numbers));
        let (state, prefix) = (numbers.clone(), format!("/2010-04-01/Accounts/{account}/"));
        let calls: Arc<Mutex<Vec<(String, &'static str)>>> = Arc::default();
        let hang = Arc::new(AtomicBool::new(false));
        let (call_state, hanging, account_sid) = (calls.clone(), hang.clone(), account.to_string());
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let http = Fake::with_handler(move |req| {
            let error = |status: u16, code: u32, message: &str| {
                Some(Reply::json(
                    status,
                    &serde_json::json!({"code": code, "message": message, "status": status}),
                ))
            };
            if req.header("authorization") != Some(basic.as_str()) {
                return error(401, 20003, "Authenticate");
            }
            let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
            let Some(rest) = path.strip_prefix(&prefix) else {
                return error(404, 20404, "The requested resource was not found");
            };
            // Calls/{CallSid}.json: read, or update with new TwiML while in progress (after
            // which the call runs that TwiML and ends).
            if let Some(sid) = rest.strip_prefix("Calls/").and_then(|r| r.strip_suffix(".json")) {
                if req.method == "POST" && hanging.load(Ordering::SeqCst) {
                    return None;
                }
                if req.method == "POST" {
                    thread::sleep(CALL_UPDATE_TAKES);
                }
                let mut calls = call_state.lock().unwrap();
                let Some(call) = calls.iter_mut().find(|(s, _)| s == sid) else {
                    return error(404, 20404, "The requested resource was not found");
                };
                let body = |status: &str| serde_json::json!({"sid": sid, "account_sid": account_sid, "status": status});
                return match req.method.as_str() {
                    "GET" => Some(Reply::json(200, &body(call.1))),
                    "POST" if req.form().iter().any(|(k, _)| k != "Twiml") => {
                        error(400, 21200, "unknown parameter")
                    }
                    "POST" if call.1 != "in-progress" => {
                        error(400, 21220, "Call is not in-progress. Cannot redirect.")
                    }
                    "POST" => {
                        call.1 = "completed";
                        Some(Reply::json(200, &body("in-progress")))
                    }
                    _ => error(405, 20004, "Method not allowed"),
                };
            }
            let mut numbers = state.lock().unwrap();
            match (req.method.as_str(), rest) {
                ("GET", "IncomingPhoneNumbers.json") => {
                    let wanted = query.split('&').find_map(|p| p.strip_prefix("PhoneNumber=")).map(decode);
                    let list: Vec<_> = numbers
                        .iter()
                        .filter(|n| wanted.as_ref().map_or(true, |w| n["phone_number"] == *w))
                        .cloned()
                        .collect();
                    Some(Reply::json(
                        200,
                        &serde_json::json!({"incoming_phone_numbers": list, "page": 0, "page_size": 50}),
                    ))
                }
                ("POST", "Messages.json") => Some(Reply::json(201, &serde_json::json!({"sid": "SM0123"}))),
                ("POST", _) => {
                    let sid =
                        rest.strip_prefix("IncomingPhoneNumbers/").and_then(|r| r.strip_suffix(".json"));
                    let Some(number) = numbers.iter_mut().find(|n| Some(n["sid"].as_str().unwrap()) == sid)
                    else {
                        return error(404, 20404, "The requested resource was not found");
                    };
                    for (k, v) in req.form() {
                        let Some((_, field)) = NUMBER_FIELDS.iter().find(|(f, _)| *f == k) else {
                            return error(400, 21200, &format!("unknown parameter {k}"));
                        };
                        number[*field] = serde_json::json!(v);
                    }
                    Some(Reply::json(200, number))
                }
                _ => error(404, 20404, "The requested resource was not found"),
            }
        });
        FakeTwilio { http, numbers, calls, hang }
    }

    /// A call in progress, as Twilio knows it while the intercom's call rings.
    pub fn add_call(&self, sid: &str) {
        self.calls.lock().unwrap().push((sid.to_string(), "in-progress"));
    }

    /// The call ends (the visitor hung up).
    pub fn end_call(&self, sid: &str) {
        self.calls.lock().unwrap().iter_mut().filter(|(s, _)| s == sid).for_each(|c| c.1 = "completed");
    }

    /// While `on`, updates of calls hang (Twilio unreachable).
    pub fn hang_updates(&self, on: bool) {
        self.hang.store(on, Ordering::SeqCst);
    }

    /// The updates of calls that arrived (answered or not).
    pub fn call_updates(&self) -> Vec<Seen> {
        self.posts().into_iter().filter(|r| r.target.contains("/Calls/")).collect()
    }

    /// The API base URL for `twilio.api_base`.
    pub fn base(&self) -> String {
        self.http.url("")
    }

    /// Sets a JSON field of the number with this sid, as a change in the console would.
    pub fn set(&self, sid: &str, field: &str, value: serde_json::Value) {
        let mut numbers = self.numbers.lock().unwrap();
        let n = numbers.iter_mut().find(|n| n["sid"] == sid).expect("no such number");
        n[field] = value;
    }

    pub fn number(&self, sid: &str) -> serde_json::Value {
        self.numbers.lock().unwrap().iter().find(|n| n["sid"] == sid).cloned().expect("no such number")
    }

    pub fn posts(&self) -> Vec<Seen> {
        self.http.requests().into_iter().filter(|r| r.method == "POST").collect()
    }
}
