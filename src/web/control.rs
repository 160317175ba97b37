//! The control listener: the phone page at `/` and the token-protected JSON API.
//!
//! The page itself holds no secret: it reads the token from the URL fragment (`#t=…`),
//! which browsers never send to a server, and calls the API with it. No state changes
//! on GET; every `/api/` route checks the token before anything else.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::{Config, Secret};
use crate::http::form;
use crate::http::{HttpError, Request, Response};
use crate::model::api::{read_request, CodesBody, ErrorBody, EventsBody, OpenRequest};
use crate::rules::codes;
use crate::store::codes::{AddError, CodeStore};
use crate::store::history::History;
use crate::store::state::{Status, Store};
use crate::util::constant_time_eq;
use crate::util::loggable;

/// `{"minutes": 720}` or a new guest code is a few dozen bytes (under 600 even with all 40
/// label characters \u-escaped); a kilobyte leaves room for whitespace and nothing more.
pub const MAX_BODY_BYTES: usize = 1024;
/// Open connections at once: the LAN listener serves a phone or two and the CLI; 256
/// leaves room for a browser's parallel connections many times over, and an idle flood
/// beyond it is evicted (see `connections.rs`).
pub const MAX_CONNECTIONS: usize = 256;
/// `GET /api/events` without `limit`: what the page shows.
pub const DEFAULT_EVENTS_LIMIT: usize = 20;
/// The most one request returns: enough to scroll back, small enough to answer fast.
pub const MAX_EVENTS_LIMIT: usize = 500;
const PAGE: &str = include_str!("page.html");

pub struct Control {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub token: Secret,
    pub history: Arc<History>,
    pub codes: Arc<CodeStore>,
}

impl Control {
    pub fn handle(&self, req: &Request) -> Response {
        match self.route(req) {
            Ok(resp) => resp,
            Err(e) => {
                if let HttpError::Internal(detail) = &e {
                    log::error!("control {} {}: {detail}", req.method, req.path);
                }
                e.decorate(json_response(e.status(), &ErrorBody { error: e.message() }))
            }
        }
    }

    fn route(&self, req: &Request) -> Result<Response, HttpError> {
        let method = req.method.as_str();
        if req.path == "/" {
            return match method {
                "GET" | "HEAD" => Ok(page()),
                _ => Err(HttpError::MethodNotAllowed("GET, HEAD")),
            };
        }
        if !req.path.starts_with("/api/") {
            return Err(HttpError::NotFound);
        }
        self.authorize(req)?;
        let now = SystemTime::now();
        if req.path == "/api/codes" || req.path.starts_with("/api/codes/") {
            return self.codes_route(req, now);
        }
        let status = match (req.path.as_str(), method) {
            ("/api/status", "GET") => {
                // With the server's instance id, which `intercom doctor` matches with
                // what `/healthz` shows through the tunnel.
                let mut body = self.store.status(now).body();
                body.instance = Some(crate::util::instance_id().to_string());
                return Ok(json_response(200, &body));
            }
            ("/api/open", "POST") => {
                let duration = self.requested_duration(&req.body)?;
                self.store.open_window(duration, now, &source(req)).map_err(not_saved)?
            }
            ("/api/close", "POST") => self.store.close_window(now, &source(req)),
            ("/api/events", "GET") => return Ok(json_response(200, &self.events(&req.query)?)),
            ("/api/status", _) => return Err(HttpError::MethodNotAllowed("GET")),
            ("/api/open" | "/api/close", _) => return Err(HttpError::MethodNotAllowed("POST")),
            ("/api/events", _) => return Err(HttpError::MethodNotAllowed("GET")),
            _ => return Err(HttpError::NotFound),
        };
        Ok(status_response(status))
    }

    fn authorize(&self, req: &Request) -> Result<(), HttpError> {
        let given = req.header("authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        if constant_time_eq(given.trim().as_bytes(), self.token.expose().as_bytes()) {
            Ok(())
        } else {
            Err(HttpError::Unauthorized)
        }
    }

    /// `/api/codes` (list, add) and `/api/codes/{id}` (delete).
    fn codes_route(&self, req: &Request, now: SystemTime) -> Result<Response, HttpError> {
        let unix = crate::util::time::unix_secs(now);
        match (req.path.strip_prefix("/api/codes").unwrap_or(""), req.method.as_str()) {
            ("", "GET") => {
                let codes = self.codes.active(now).iter().map(|c| c.body(unix)).collect();
                Ok(json_response(200, &CodesBody { codes }))
            }
            ("", "POST") => {
                let new = codes::parse_new(&req.body).map_err(|m| {
                    HttpError::BadRequest(format!(
                        "{m}; send {{\"label\": \"plumber\", \"minutes\": 1440, \"uses\": 1}}"
                    ))
                })?;
                match self.codes.add(&new, now) {
                    Ok(code) => Ok(json_response(201, &code.body(unix))),
                    Err(AddError::Full) => {
                        Ok(json_response(409, &ErrorBody { error: AddError::Full.to_string() }))
                    }
                    Err(e) => Err(HttpError::Internal(e.to_string())),
                }
            }
            ("", _) => Err(HttpError::MethodNotAllowed("GET, POST")),
            (id, "DELETE") if id.len() > 1 => {
                let removed = self
                    .codes
                    .remove(&id[1..], now)
                    .map_err(|e| HttpError::Internal(format!("could not save the codes: {e}")))?;
                if removed {
                    Ok(Response::new(204, "application/json", "").with_header("Cache-Control", "no-store"))
                } else {
                    Err(HttpError::NotFound)
                }
            }
            (id, _) if id.len() > 1 => Err(HttpError::MethodNotAllowed("DELETE")),
            _ => Err(HttpError::NotFound),
        }
    }

    /// Empty body or no `minutes`: the default window. Otherwise `minutes` in 1..=max.
    fn requested_duration(&self, body: &[u8]) -> Result<Duration, HttpError> {
        let max = self.config.max_window.as_secs() / 60;
        let bad =
            |m: &str| HttpError::BadRequest(format!("{m}; send {{\"minutes\": N}} with N from 1 to {max}"));
        let request: OpenRequest = read_request(body).map_err(|m| bad(&m))?;
        match request.minutes {
            None => Ok(self.config.default_window),
            Some(m) if (1..=max).contains(&m) => Ok(Duration::from_secs(m * 60)),
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
        let limit = match form::single(&params, "limit").map_err(bad)? {
            None => DEFAULT_EVENTS_LIMIT,
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_EVENTS_LIMIT).contains(n))
                .ok_or_else(|| bad("limit out of range".into()))?,
        };
        let records = self
            .history
            .newest(limit)
            .map_err(|e| HttpError::Internal(format!("could not read the event log: {e}")))?;
        Ok(EventsBody { events: records })
    }
}

/// Who changed the window, for the log: the client kind it claims (only a label) and
/// the address it came from.
fn source(req: &Request) -> String {
    let client = match req.header("x-intercom-client") {
        Some("cli") => "CLI",
        Some("page") => "page",
        _ => "API",
    };
    format!("{client} from {}", req.peer.ip())
}

/// The window could not be saved (full or read-only disk): the client is told why, as
/// the page shows it; the state disk's condition is no secret on the LAN.
fn not_saved(e: std::io::Error) -> HttpError {
    HttpError::Unavailable(e.to_string())
}

/// A request refused before it reached [`Control::handle`] (too large, malformed, …):
/// JSON like every other error of the API, so clients parse one shape.
pub fn refusal(status: u16, reason: &str) -> Response {
    json_response(status, &ErrorBody { error: reason.to_string() })
}

fn json_response(status: u16, body: &impl Serialize) -> Response {
    // Serializing our own plain structs cannot fail; an empty object would still be JSON.
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    Response::new(status, "application/json", format!("{text}\n")).with_header("Cache-Control", "no-store")
}

fn status_response(status: Status) -> Response {
    json_response(200, &status.body())
}

fn page() -> Response {
    Response::new(200, "text/html; charset=utf-8", PAGE)
        .with_header("Cache-Control", "no-store")
        .with_header(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
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
        let store = Store::open(&dir, config.max_window, boot, health.clone());
        let token = Secret::new("a-test-token-0123456789".into());
        let history = History::open(&dir, None, health);
        let codes = Arc::new(CodeStore::open(
            &dir,
            crate::system::boot::Boot { id: None, clock_synced: false },
            SystemTime::now(),
        ));
        (Control { config: Arc::new(config), store: Arc::new(store), token, history, codes }, dir)
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
            ("GET", "/api/events"),
            ("GET", "/api/codes"),
            ("POST", "/api/codes"),
            ("DELETE", "/api/codes/abc"),
            ("GET", "/api/nothing"),
        ] {
            assert_eq!(c.handle(&request(m, p, None, "")).status, 401);
            assert_eq!(c.handle(&request(m, p, Some("Bearer wrong"), "")).status, 401);
            assert_eq!(c.handle(&request(m, p, Some("a-test-token-0123456789"), "")).status, 401);
        }
        assert!(!c.store.status(SystemTime::now()).is_open());
        assert!(c.codes.active(SystemTime::now()).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn open_body_rules() {
        let (c, dir) = control("open");
        assert_eq!(c.requested_duration(b"").unwrap(), Duration::from_secs(1800));
        assert_eq!(c.requested_duration(b"{}").unwrap(), Duration::from_secs(1800));
        assert_eq!(c.requested_duration(br#"{"minutes": 120}"#).unwrap(), Duration::from_secs(7200));
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
        ] {
            assert_eq!(c.requested_duration(bad.as_bytes()).unwrap_err().status(), 400, "{bad}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn get_never_changes_state_and_methods_are_checked() {
        let (c, dir) = control("methods");
        assert_eq!(c.handle(&request("GET", "/api/open", AUTH, "")).status, 405);
        assert_eq!(c.handle(&request("GET", "/api/close", AUTH, "")).status, 405);
        assert!(!c.store.status(SystemTime::now()).is_open());
        assert_eq!(c.handle(&request("POST", "/api/open", AUTH, r#"{"minutes": 5}"#)).status, 200);
        assert!(c.store.status(SystemTime::now()).is_open());
        assert_eq!(c.handle(&request("POST", "/", None, "")).status, 405);
        assert_eq!(c.handle(&request("GET", "/voice", None, "")).status, 404);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn events_limits() {
        let (c, dir) = control("events");
        for n in 0..30 {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(n);
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
