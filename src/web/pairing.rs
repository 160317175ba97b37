//! The control listener's side of paired devices: the device cookie, the checks that a
//! request carrying it must pass, the pairing exchange and the device routes.
//!
//! A browser sends a cookie by itself, also on requests that another page makes, so a
//! cookie is trusted only on a request that (1) names this listener in `Host` by an IP
//! literal or a configured name (a DNS-rebinding page has its own name there), and when
//! it changes anything (2) carries an `Origin` of that same host and (3) a JSON content
//! type, which no HTML form can send and which a cross-site `fetch` cannot send without
//! a preflight that we never grant. The bearer token is not sent by browsers on their
//! own, so requests with it are not held to these rules (scripts, the CLI).
//!
//! The pairing link is `/pair#c=CODE`: the code is in the fragment, which no browser
//! sends to a server and no link-preview bot fetches, and the page spends it only when
//! the person taps "Pair this phone" (a POST), so a chat app that fetches or even runs a
//! shared link does not spend it.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::http::{HttpError, Request, Response};
use crate::model::api::{read_request, DeviceBody, DevicesBody, PairRequest, PairingBody, PairingRequest};
use crate::store::devices::{Device, Devices, PairError, PAIRING_VALID};
use crate::web::{json, no_content};

/// The cookie's name; its value is the device secret.
pub const COOKIE: &str = "intercom_device";
/// The header that carries the page key, which the page keeps in `localStorage`: scoped
/// to scheme, host and port, unlike the cookie, which every port of the host receives.
pub const KEY_HEADER: &str = "x-intercom-key";
/// How long the browser keeps the cookie: Chrome caps any cookie at 400 days, and each
/// status the page reads renews it, so a phone in use stays paired.
pub const COOKIE_MAX_AGE: Duration = Duration::from_secs(400 * 24 * 3600);
/// Where the page spends a pairing code.
pub const PAIR_PATH: &str = "/pair";

/// Who is asking: the holder of the bearer token, or a paired device.
pub enum Actor {
    Token,
    Device(Device),
}

/// The device secret from the `Cookie` header, if any.
pub fn cookie(req: &Request) -> Option<&str> {
    req.header("cookie")?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// The cookie header that gives (or renews) a device's credential. No `Secure`: the page
/// is plain HTTP on the LAN; `HttpOnly` keeps it from scripts, `SameSite=Strict` from
/// other sites' requests (the checks here are the second lock on that door).
pub fn set_cookie(secret: &str) -> String {
    format!("{COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", COOKIE_MAX_AGE.as_secs())
}

/// Whether `Host` names this listener: an IP literal (with or without port), or one of
/// `control.hosts`. Any other name may be a rebinding attacker's.
pub fn host_allowed(host: &str, names: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if is_port(port) => name,
        // Not a port: unless it is inside an IPv6 literal's brackets, checked below.
        Some(_) if !host.starts_with('[') => return false,
        _ => host,
    };
    match name.strip_prefix('[') {
        Some(ip) => ip.strip_suffix(']').is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => name.parse::<IpAddr>().is_ok() || names.iter().any(|n| n.eq_ignore_ascii_case(name)),
    }
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The checks a request that carries the cookie must pass; `write`: it changes something.
pub fn check_browser_request(req: &Request, names: &[String], write: bool) -> Result<(), HttpError> {
    let host = req.header("host").unwrap_or("");
    if !host_allowed(host, names) {
        return Err(HttpError::Refused(
            "open the page by the intercom's address (or a name set in control.hosts)".into(),
        ));
    }
    if !write {
        return Ok(());
    }
    let origin = req.header("origin").unwrap_or("");
    let same = |scheme| origin.strip_prefix(scheme).is_some_and(|o: &str| o.eq_ignore_ascii_case(host));
    if !same("http://") && !same("https://") {
        return Err(HttpError::Refused("a request from another site or page was refused".into()));
    }
    if !req.media_type().eq_ignore_ascii_case("application/json") {
        return Err(HttpError::Refused("only the intercom's own page can do this".into()));
    }
    Ok(())
}

/// `POST /api/pair` with `{"code": "..."}`: spends the code and answers with the cookie
/// and, in the body (never in a cookie), the page key.
pub fn exchange(devices: &Devices, req: &Request, names: &[String]) -> Result<Response, HttpError> {
    if req.method != "POST" {
        return Err(HttpError::MethodNotAllowed("POST"));
    }
    // Held to the cookie's rules: another site must not pair a victim's browser to a
    // device of the attacker's choosing either.
    check_browser_request(req, names, true)?;
    let request: PairRequest = read_request(&req.body).map_err(|_| bad_body("code"))?;
    match devices.finish_pairing(&request.code, Instant::now(), Timestamp::now()) {
        Ok((device, secret, page_key)) => {
            log::info!("paired a device: {:?} ({})", crate::util::loggable(&device.name), device.id);
            let body = DeviceBody { page_key: Some(page_key), ..device_body(&device, true) };
            Ok(json(200, &body).with_header("Set-Cookie", set_cookie(&secret)))
        }
        Err(PairError::BadLink) => Err(HttpError::Refused(PairError::BadLink.to_string())),
        Err(PairError::Full) => Err(HttpError::BadRequest(PairError::Full.to_string())),
        Err(e @ PairError::Disk(_)) => Err(HttpError::Unavailable(e.to_string())),
    }
}

/// `/api/pairings` (make a pairing link), `/api/devices` (list), `/api/devices/{id}` (revoke).
pub fn route(
    devices: &Devices,
    req: &Request,
    actor: &Actor,
    names: &[String],
) -> Result<Response, HttpError> {
    let method = req.method.as_str();
    match req.path.as_str() {
        "/api/pairings" if method == "POST" => {
            let request: PairingRequest = read_request(&req.body).map_err(|_| bad_body("name"))?;
            let name = crate::store::devices::check_name(&request.name).map_err(HttpError::BadRequest)?;
            let code = devices.start_pairing(&name, Instant::now()).map_err(HttpError::BadRequest)?;
            let path = format!("{PAIR_PATH}#c={code}");
            // The page shows the link as a QR code for the other phone to scan, with the
            // address this browser used (checked: a rebinding name gets no code).
            let host = req.header("host").filter(|h| host_allowed(h, names));
            let qr = host.and_then(|h| qr_svg(&format!("http://{h}{path}")));
            Ok(json(201, &PairingBody { name, path, valid_seconds: PAIRING_VALID.as_secs(), qr_svg: qr }))
        }
        "/api/pairings" => Err(HttpError::MethodNotAllowed("POST")),
        "/api/devices" if method == "GET" => {
            let this = if let Actor::Device(d) = actor { d.id.as_str() } else { "" };
            let list = devices.list().iter().map(|d| device_body(d, d.id == this)).collect();
            Ok(json(200, &DevicesBody { devices: list }))
        }
        "/api/devices" => Err(HttpError::MethodNotAllowed("GET")),
        path => {
            let id =
                path.strip_prefix("/api/devices/").filter(|id| !id.is_empty()).ok_or(HttpError::NotFound)?;
            if method != "DELETE" {
                return Err(HttpError::MethodNotAllowed("DELETE"));
            }
            if !devices.remove(id) {
                return Err(HttpError::NotFound);
            }
            log::info!("revoked device {}", crate::util::loggable(id));
            Ok(no_content())
        }
    }
}

/// `link` as a QR code in SVG, one unit per module, with the standard 4-module quiet zone.
#[cfg(not(feature = "qr"))]
fn qr_svg(_link: &str) -> Option<String> {
    None
}

/// `link` as a QR code in SVG, one unit per module, with the standard 4-module quiet zone.
#[cfg(feature = "qr")]
fn qr_svg(link: &str) -> Option<String> {
    const QUIET: usize = 4;
    let code = qrcode::QrCode::new(link.as_bytes()).ok()?;
    let width = code.width();
    let size = width + 2 * QUIET;
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            path.push_str(&format!("M{},{}h1v1h-1z", i % width + QUIET, i / width + QUIET));
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

fn device_body(d: &Device, this: bool) -> DeviceBody {
    DeviceBody {
        id: d.id.clone(),
        name: d.name.clone(),
        paired: d.paired,
        last_used: d.last_used,
        this_device: this,
        page_key: None,
    }
}

/// The body is not `{"key": "..."}`: said without quoting the parser.
fn bad_body(key: &str) -> HttpError {
    HttpError::BadRequest(format!("send {{\"{key}\": \"...\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            path: "/api/open".into(),
            query: String::new(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: Vec::new(),
            peer: "192.0.2.7:5555".parse().unwrap(),
            http10: false,
        }
    }

    #[test]
    fn hosts_must_be_ip_literals_or_configured_names() {
        let names = vec!["intercom.local".to_string()];
        for ok in [
            "192.168.1.5:8081",
            "192.168.1.5",
            "[::1]:8081",
            "[fe80::1]",
            "intercom.local:8081",
            "INTERCOM.local",
        ] {
            assert!(host_allowed(ok, &names), "{ok}");
        }
        for bad in
            ["evil.example:8081", "", "192.168.1.5:", "192.168.1.5:x", "[::1", "[::1]x", "localhost", "a:b:c"]
                .into_iter()
                .chain(["[::1]:", "[::1]:123456", "[1.2.3.4]", "[::1]]:80", "[:80", "fe80::1"])
        {
            assert!(!host_allowed(bad, &names), "{bad}");
        }
    }

    #[test]
    fn a_write_needs_the_same_origin_and_json() {
        let good = [
            ("host", "192.168.1.5:8081"),
            ("origin", "http://192.168.1.5:8081"),
            ("content-type", "application/json"),
        ];
        assert!(check_browser_request(&req("POST", &good), &[], true).is_ok());
        let cases: Vec<Vec<(&str, &str)>> = vec![
            good.iter().copied().filter(|(n, _)| *n != "origin").collect(),
            good.iter().copied().filter(|(n, _)| *n != "content-type").collect(),
            vec![good[0], ("origin", "http://192.168.1.6:8081"), good[2]],
            vec![good[0], ("origin", "null"), good[2]],
            vec![good[0], good[1], ("content-type", "text/plain")],
            vec![good[0], good[1], ("content-type", "application/x-www-form-urlencoded")],
            vec![("host", "evil.example:8081"), ("origin", "http://evil.example:8081"), good[2]],
        ];
        for c in cases {
            assert_eq!(
                check_browser_request(&req("POST", &c), &[], true).unwrap_err().status(),
                403,
                "{c:?}"
            );
        }
        // A read only needs the right host.
        assert!(check_browser_request(&req("GET", &good[..1]), &[], false).is_ok());
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let r = req("GET", &[("cookie", "a=b; intercom_device=s3cret ; c=d")]);
        assert_eq!(cookie(&r), Some("s3cret"));
        assert_eq!(cookie(&req("GET", &[("cookie", "intercom_devicex=1")])), None);
        assert!(set_cookie("x").contains("HttpOnly; SameSite=Strict; Path=/"));
    }
}
