//! The control listener: the phone page at `/` and the token-protected JSON API.
//!
//! The page itself holds no secret. A paired phone's browser sends its device cookie and
//! the page key from its storage (see `pairing.rs` for the checks such a request passes,
//! and why the cookie alone is not enough); scripts and the CLI send the token as a
//! bearer header, and no URL carries it. No state changes on GET; every `/api/` route but
//! the pairing exchange checks the token or the cookie before anything else.
//! `/api/proof` answers without the token: a client about to send the token first
//! makes the listener prove that it knows it already (an HMAC of the client's nonce), so
//! a program squatting on the port while the server is down never receives it.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::config::{Config, Secret};
use crate::http::{form, HttpError, Request, Response};
use crate::model::api::{
    read_request, CodesBody, EventsBody, LetInRequest, OpenRequest, ProofBody, ScheduleNow, StatusBody,
};
use crate::model::record::COMMAND_LINE;
use crate::rules::clock::Clock;
use crate::rules::codes;
use crate::store::codes::CodeStore;
use crate::store::devices::Devices;
use crate::store::history::History;
use crate::store::schedules::ScheduleStore;
use crate::store::state::{Status, Store};
use crate::store::versioned::AddError;
use crate::twilio::signature;
use crate::util::{constant_time_eq, loggable};
use crate::web::pairing::{self, Actor};
use crate::web::ringing::Ringing;
use crate::web::{json, no_content, refusal, schedules};

/// `{"minutes": 720}` or a new guest code is a few dozen bytes (under 600 even with all 40
/// label characters \u-escaped); a kilobyte leaves room for whitespace and nothing more.
pub const MAX_BODY_BYTES: usize = 1024;
/// Open connections at once: the LAN listener serves a phone or two and the CLI; 256
/// leaves room for a browser's parallel connections many times over, and an idle flood
/// beyond it is evicted (see `connections.rs`).
pub const MAX_CONNECTIONS: usize = 256;
/// The longest `GET /api/status?ringing=…` waits for a call to start or stop ringing
/// before it answers anyway: the page's poll interval before it waited, so a page costs
/// the server what its polls did, and a window opened elsewhere still shows within it.
pub const STATUS_WAIT: Duration = Duration::from_secs(4);
/// `GET /api/events` without `limit`: what the page shows.
pub const DEFAULT_EVENTS_LIMIT: usize = 20;
/// The most one request returns: enough to scroll back, small enough to answer fast.
pub const MAX_EVENTS_LIMIT: usize = 500;
const PAGE: &str = include_str!("page.html");
/// The page's assets (path, content type, body): embedded in the binary, so a browser
/// may cache them for a day.
const ASSETS: [(&str, &str, &[u8]); 4] = [
    // "Add to Home Screen": the app opens straight at the page.
    ("/manifest.webmanifest", "application/manifest+json", include_bytes!("manifest.webmanifest")),
    ("/icon.svg", "image/svg+xml", include_bytes!("icon.svg")),
    // The same drawing as PNGs: iOS takes no SVG for the home screen, and Chrome wants a
    // 192 and a 512 pixel icon to offer installing the page as an app (3.3 KB together).
    ("/icon-192.png", "image/png", include_bytes!("icon-192.png")),
    ("/icon-512.png", "image/png", include_bytes!("icon-512.png")),
];

pub struct Control {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub token: Secret,
    pub history: Arc<History>,
    pub codes: Arc<CodeStore>,
    pub devices: Arc<Devices>,
    pub schedules: Arc<ScheduleStore>,
    pub ringing: Arc<Ringing>,
    /// The one clock policy, for saying why schedules, quiet hours and codes wait.
    pub clock: Arc<Clock>,
}

impl Control {
    pub fn handle(&self, req: &Request) -> Response {
        self.route(req).unwrap_or_else(|e| {
            if let HttpError::Internal(detail) = &e {
                log::error!("control {} {}: {detail}", req.method, req.path);
            }
            e.respond(refusal)
        })
    }

    fn route(&self, req: &Request) -> Result<Response, HttpError> {
        let method = req.method.as_str();
        let asset = match req.path.as_str() {
            "/" | pairing::PAIR_PATH => Some(page()),
            path => ASSETS.iter().find(|(p, ..)| *p == path).map(|&(_, kind, body)| {
                Response::new(200, kind, body).with_header("Cache-Control", "max-age=86400")
            }),
        };
        if let Some(resp) = asset {
            return match method {
                "GET" | "HEAD" => Ok(resp),
                _ => Err(HttpError::MethodNotAllowed("GET, HEAD")),
            };
        }
        if !req.path.starts_with("/api/") {
            return Err(HttpError::NotFound);
        }
        // Before the token check: the client asks this before it sends the token.
        if req.path == signature::PROOF_PATH {
            return match method {
                "GET" => self.prove(&req.query),
                _ => Err(HttpError::MethodNotAllowed("GET")),
            };
        }
        if req.path == "/api/pair" {
            return pairing::exchange(&self.devices, req, &self.config.control.hosts);
        }
        let actor = self.authorize(req)?;
        let now = Timestamp::now();
        if req.path == "/api/codes" || req.path.starts_with("/api/codes/") {
            return self.codes_route(req, now);
        }
        if req.path == schedules::PREFIX || req.path.starts_with("/api/schedules/") {
            return schedules::route(&self.schedules, &self.config.intercoms, req, now);
        }
        if req.path == "/api/pairings" || req.path == "/api/devices" || req.path.starts_with("/api/devices/")
        {
            return pairing::route(&self.devices, req, &actor, &self.config.control.hosts);
        }
        let status = match (req.path.as_str(), method) {
            ("/api/status", "GET") => {
                // `?ringing=CA…` (or empty: none) is the call the page shows: the answer
                // waits until another rings or it stops (at most STATUS_WAIT).
                let query = form::parse(req.query.as_bytes())
                    .map_err(|e| HttpError::BadRequest(format!("query: {e}")))?;
                if let Some(seen) = form::single(&query, "ringing")? {
                    self.ringing.wait_change(seen, STATUS_WAIT);
                }
                let now = Timestamp::now();
                // With the server's instance id, which `intercom doctor` matches with
                // what `/healthz` shows through the tunnel.
                let mut body = self.status_body(self.store.status(now), now);
                body.instance = Some(crate::util::instance_id().to_string());
                body.signatures_checked = Some(self.config.twilio.auth_token.is_some());
                let resp = json(200, &body);
                // A paired phone's cookie is renewed with each status its page reads, so a
                // phone in daily use never reaches the cookie's end of life.
                return Ok(match (&actor, pairing::cookie(req)) {
                    (Actor::Device(_), Some(secret)) => {
                        resp.with_header("Set-Cookie", pairing::set_cookie(secret))
                    }
                    _ => resp,
                });
            }
            ("/api/open", "POST") => {
                let (duration, once) = self.requested_window(&req.body)?;
                // Not saved (a full or read-only disk): the client is told why, as the page
                // shows it; the state disk's condition is no secret on the LAN.
                let opened = self.store.open_window(duration, once, now, &source(req, &actor));
                opened.map_err(|e| HttpError::Unavailable(e.to_string()))?
            }
            ("/api/close", "POST") => self.store.close_window(now, &source(req, &actor)),
            ("/api/let-in", "POST") => {
                let bad = |m| {
                    HttpError::BadRequest(format!("{m}; send {{\"call\": \"CA…\"}} as the status names it"))
                };
                let request: LetInRequest = read_request(&req.body).map_err(bad)?;
                self.ringing.let_in(&request.call, &source(req, &actor))?;
                self.store.status(Timestamp::now())
            }
            ("/api/events", "GET") => return Ok(json(200, &self.events(&req.query)?)),
            ("/api/status" | "/api/events", _) => return Err(HttpError::MethodNotAllowed("GET")),
            ("/api/open" | "/api/close" | "/api/let-in", _) => {
                return Err(HttpError::MethodNotAllowed("POST"))
            }
            _ => return Err(HttpError::NotFound),
        };
        Ok(json(200, &self.status_body(status, now)))
    }

    /// The window's status, and the schedule open now: what lets a visitor in besides
    /// the window; why codes, and a clock in doubt, hold things back.
    fn status_body(&self, status: Status, now: Timestamp) -> StatusBody {
        // Open for any entrance: the page shows that visitors are let in.
        let schedule = self
            .schedules
            .open_now(now, crate::util::LOCK_WAIT, |_| true)
            .map(|(s, until)| ScheduleNow { id: s.id, label: s.label, open_until: until });
        let (codes_paused, clock_doubt, ringing) =
            (self.codes.why_paused(now), self.clock.why(), self.ringing.now());
        StatusBody { schedule, codes_paused, clock_doubt, ringing, ..status.body(self.config.max_window) }
    }

    /// `{"proof": …}`: that this server knows the token, for a client's fresh nonce.
    fn prove(&self, query: &str) -> Result<Response, HttpError> {
        let params =
            form::parse(query.as_bytes()).map_err(|e| HttpError::BadRequest(format!("bad query: {e}")))?;
        let nonce = form::single(&params, "nonce")?.unwrap_or_default();
        let hex = signature::PROOF_NONCE_HEX_CHARS;
        if !hex.contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            let (lo, hi) = (hex.start(), hex.end());
            return Err(HttpError::BadRequest(format!("nonce must be {lo} to {hi} hex digits")));
        }
        let proof = signature::control_proof(self.token.expose(), nonce);
        Ok(json(200, &ProofBody { proof }))
    }

    /// The bearer token when the request has an `Authorization` header (scripts, the
    /// CLI); else the device cookie and the page key (the cookie alone reaches every
    /// port of the host), after the browser checks.
    fn authorize(&self, req: &Request) -> Result<Actor, HttpError> {
        if let Some(secret) = pairing::cookie(req).filter(|_| req.header("authorization").is_none()) {
            let write = !matches!(req.method.as_str(), "GET" | "HEAD");
            pairing::check_browser_request(req, &self.config.control.hosts, write)?;
            let key = req.header(pairing::KEY_HEADER).unwrap_or("");
            let device = self.devices.authenticate(secret, key, Timestamp::now());
            return device.map(Actor::Device).ok_or(HttpError::Unauthorized);
        }
        let given = req.header("authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        let right = constant_time_eq(given.trim().as_bytes(), self.token.expose().as_bytes());
        right.then_some(Actor::Token).ok_or(HttpError::Unauthorized)
    }

    /// `/api/codes` (list, add) and `/api/codes/{id}` (delete).
    fn codes_route(&self, req: &Request, now: Timestamp) -> Result<Response, HttpError> {
        match (req.path.strip_prefix("/api/codes").unwrap_or(""), req.method.as_str()) {
            ("", "GET") => {
                let codes = self.codes.active(now).iter().map(|c| c.body(now)).collect();
                Ok(json(200, &CodesBody { codes, paused: self.codes.why_paused(now) }))
            }
            ("", "POST") => {
                let new = read_request(&req.body).and_then(|r| codes::check_new(&r)).map_err(|m| {
                    HttpError::BadRequest(format!(
                        "{m}; send {{\"label\": \"plumber\", \"minutes\": 1440, \"uses\": 1}}"
                    ))
                })?;
                match self.codes.add(&new, now) {
                    Ok(code) => Ok(json(201, &code.body(now))),
                    Err(AddError::Full(why)) => Ok(refusal(409, &why)),
                    Err(e) => Err(HttpError::Internal(e.to_string())),
                }
            }
            ("", _) => Err(HttpError::MethodNotAllowed("GET, POST")),
            (id, "DELETE") if id.len() > 1 => {
                self.codes.remove(&id[1..], now).then(no_content).ok_or(HttpError::NotFound)
            }
            (id, _) if id.len() > 1 => Err(HttpError::MethodNotAllowed("DELETE")),
            _ => Err(HttpError::NotFound),
        }
    }

    /// Empty body or no `minutes`: the default window; otherwise `minutes` in 1..=max.
    /// `"once": true` opens it for the next visitor only.
    fn requested_window(&self, body: &[u8]) -> Result<(Duration, bool), HttpError> {
        let max = self.config.max_window.as_secs() / 60;
        let bad = |m: &str| {
            HttpError::BadRequest(format!(
                "{m}; send {{\"minutes\": N}} with N from 1 to {max}, and \"once\": true for the next visitor only"
            ))
        };
        let request: OpenRequest = read_request(body).map_err(|m| bad(&m))?;
        let once = request.once.unwrap_or(false);
        match request.minutes {
            None => Ok((self.config.default_window, once)),
            Some(m) if (1..=max).contains(&m) => Ok((Duration::from_secs(m * 60), once)),
            Some(_) => Err(bad("minutes out of range")),
        }
    }

    /// `GET /api/events?limit=N`: `{"events": [...]}`, newest first.
    fn events(&self, query: &str) -> Result<EventsBody, HttpError> {
        let bad = |m: String| {
            HttpError::BadRequest(format!("{m}; use ?limit=N with N from 1 to {MAX_EVENTS_LIMIT}"))
        };
        let params = form::parse(query.as_bytes()).map_err(|e| bad(format!("bad query: {e}")))?;
        if let Some((k, _)) = params.iter().find(|(k, _)| k != "limit") {
            return Err(bad(format!("unknown parameter {:?}", loggable(k))));
        }
        let limit = match form::single(&params, "limit").map_err(|e| bad(e.message()))?.map(str::parse) {
            None => DEFAULT_EVENTS_LIMIT,
            Some(Ok(n)) if (1..=MAX_EVENTS_LIMIT).contains(&n) => n,
            Some(_) => return Err(bad("limit out of range".into())),
        };
        let unread = |e| HttpError::Internal(format!("could not read the event log: {e}"));
        Ok(EventsBody { events: self.history.newest(limit).map_err(unread)? })
    }
}

/// Who changed the window, for the history: a paired device by its name; the command
/// line on this machine; else the client kind it claims (only a label) and its address.
fn source(req: &Request, actor: &Actor) -> String {
    let ip = req.peer.ip();
    match (actor, req.header("x-intercom-client")) {
        (Actor::Device(d), _) => d.name.clone(),
        (_, Some("cli")) if ip.is_loopback() => COMMAND_LINE.into(),
        (_, Some("cli")) => format!("the command line at {ip}"),
        (_, Some("page")) => format!("page from {ip}"),
        _ => format!("API from {ip}"),
    }
}

fn page() -> Response {
    Response::new(200, "text/html; charset=utf-8", PAGE)
        .with_header("Cache-Control", "no-store")
        .with_header(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; manifest-src 'self'",
        )
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("X-Frame-Options", "DENY")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::{EventKind, Record};
    use std::path::PathBuf;

    fn control(name: &str) -> (Control, PathBuf) {
        let dir = std::env::temp_dir().join(format!("intercom-control-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config =
            crate::config::parse(r#"{"max_window": "2h", "default_window": "30m"}"#, |_| None).unwrap();
        let health = crate::store::storage::Health::new();
        let boot = crate::system::boot::Boot { id: Some("test-boot".into()), clock_synced: false };
        let clock = Arc::new(Clock::new(Box::new(|| false)));
        let store = Store::open(&dir, config.max_window, boot, health.clone(), clock.clone());
        let token = Secret::new("a-test-token-0123456789".into());
        let history = History::open(&dir, Vec::new(), health.clone());
        let codes = Arc::new(CodeStore::open(
            &dir,
            crate::system::boot::Boot { id: None, clock_synced: false },
            Timestamp::now(),
            clock.clone(),
            health.clone(),
        ));
        let schedules = Arc::new(ScheduleStore::open(
            &dir,
            crate::system::tz::Local::utc(),
            crate::system::boot::Boot { id: None, clock_synced: false },
            clock.clone(),
            health.clone(),
        ));
        let config = Arc::new(config);
        let devices = Arc::new(Devices::open(&dir, health));
        let ringing = Arc::new(Ringing::new(&config));
        (
            Control {
                config,
                store: Arc::new(store),
                token,
                history,
                codes,
                devices,
                schedules,
                ringing,
                clock,
            },
            dir,
        )
    }

    fn request(method: &str, path: &str, auth: Option<&str>, body: &str) -> Request {
        let mut headers = Vec::new();
        if let Some(a) = auth {
            headers.push(("authorization".to_string(), a.to_string()));
        }
        Request {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers,
            body: body.into(),
            peer: "192.0.2.7:5555".parse().unwrap(),
            http10: false,
        }
    }

    const AUTH: Option<&str> = Some("Bearer a-test-token-0123456789");

    #[test]
    fn token_is_required_everywhere_under_api() {
        let (c, dir) = control("auth");
        for (m, p) in [
            ("GET", "/api/status"),
            ("POST", "/api/open"),
            ("POST", "/api/close"),
            ("POST", "/api/let-in"),
            ("GET", "/api/events"),
            ("GET", "/api/codes"),
            ("POST", "/api/codes"),
            ("DELETE", "/api/codes/abc"),
            ("GET", "/api/schedules"),
            ("POST", "/api/schedules"),
            ("DELETE", "/api/schedules/abc"),
            ("POST", "/api/schedules/abc/pause"),
            ("GET", "/api/nothing"),
        ] {
            assert_eq!(c.handle(&request(m, p, None, "")).status, 401);
            assert_eq!(c.handle(&request(m, p, Some("Bearer wrong"), "")).status, 401);
            assert_eq!(c.handle(&request(m, p, Some("a-test-token-0123456789"), "")).status, 401);
        }
        assert!(!c.store.status(Timestamp::now()).is_open());
        assert!(c.codes.active(Timestamp::now()).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn open_body_rules() {
        let (c, dir) = control("open");
        let min = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(c.requested_window(b"").unwrap(), (min(30), false));
        assert_eq!(c.requested_window(b"{}").unwrap(), (min(30), false));
        assert_eq!(c.requested_window(br#"{"minutes": 120}"#).unwrap(), (min(120), false));
        assert_eq!(c.requested_window(br#"{"minutes": 20, "once": true}"#).unwrap(), (min(20), true));
        assert_eq!(c.requested_window(br#"{"once": true}"#).unwrap(), (min(30), true));
        assert_eq!(c.requested_window(br#"{"once": false}"#).unwrap(), (min(30), false));
        for bad in [
            r#"{"minutes": 0}"#,
            r#"{"minutes": 121}"#,
            r#"{"minutes": -1}"#,
            r#"{"minutes": 1.5}"#,
            r#"{"minutes": "5"}"#,
            r#"{"minutes": 5, "x": 1}"#,
            "[5]",
            "garbage",
            r#"{"minutes": 1e99}"#,
            r#"{"minutes": 5, "once": 1}"#,
            r#"{"minutes": 5, "once": "yes"}"#,
        ] {
            assert_eq!(c.requested_window(bad.as_bytes()).unwrap_err().status(), 400, "{bad}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn get_never_changes_state_and_methods_are_checked() {
        let (c, dir) = control("methods");
        assert_eq!(c.handle(&request("GET", "/api/open", AUTH, "")).status, 405);
        assert_eq!(c.handle(&request("GET", "/api/close", AUTH, "")).status, 405);
        assert!(!c.store.status(Timestamp::now()).is_open());
        assert_eq!(c.handle(&request("POST", "/api/open", AUTH, r#"{"minutes": 5}"#)).status, 200);
        assert!(c.store.status(Timestamp::now()).is_open());
        assert_eq!(c.handle(&request("POST", "/", None, "")).status, 405);
        assert_eq!(c.handle(&request("GET", "/voice", None, "")).status, 404);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The page refuses in its own words what the intercom would refuse, by the bounds its
    /// inputs carry: they are the intercom's.
    #[test]
    fn the_pages_bounds_are_the_intercoms() {
        let attr = |id: &str, name: &str| -> String {
            let tag = PAGE.split(&format!(r#"id="{id}""#)).nth(1).unwrap().split('>').next().unwrap();
            tag.split(&format!(r#" {name}=""#)).nth(1).unwrap().split('"').next().unwrap().to_string()
        };
        assert_eq!(attr("code-uses", "max"), codes::MAX_USES.to_string());
        for id in ["code-label", "sched-label"] {
            assert_eq!(attr(id, "maxlength"), codes::MAX_LABEL_CHARS.to_string(), "{id}");
        }
    }

    #[test]
    fn events_limits() {
        let (c, dir) = control("events");
        for n in 0..30 {
            let t = Timestamp::UNIX_EPOCH + Duration::from_secs(n);
            c.history.append(&Record::new(t, EventKind::CallForwarded, format!("call {n}"))).unwrap();
        }
        assert_eq!(c.events("").unwrap().events.len(), DEFAULT_EVENTS_LIMIT);
        assert_eq!(c.events("limit=3").unwrap().events[0].message, "call 29");
        assert_eq!(c.events(&format!("limit={MAX_EVENTS_LIMIT}")).unwrap().events.len(), 30);
        for bad in ["limit=0", "limit=-1", "limit=x", "limit=", "limit=501", "limit=1&limit=2", "lim=3"] {
            assert_eq!(c.events(bad).unwrap_err().status(), 400, "{bad}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
