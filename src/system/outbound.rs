//! Outbound HTTP/1.1 and HTTPS: Twilio's REST API, notification targets, `doctor`'s probes
//! and the CLI's requests to the control API. One request per connection (`Connection:
//! close`), one overall deadline from the name lookup to the last byte of the answer, no
//! redirects followed (a 3xx is an answer: a redirected `/healthz` proves nothing about who
//! answers, and Twilio's credentials must not travel on), no proxy. HTTPS is verified
//! against the system's roots ([`super::tls`]).
//!
//! Decision: this instead of ureq. A doorbell sends a few requests an hour, each to one
//! known kind of server; ureq's connection pool, proxy support, cookies and its `http`
//! types were about 200 KiB of a binary with a size budget and six crates.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::util::Timed;

/// An answer's head; real servers send well under 4 KiB.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// An answer's body. The largest we read is Twilio's list of an account's numbers (50 at
/// most, about 60 KiB); anything far larger is not an answer we want in memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How we introduce ourselves to Twilio, notification targets and `doctor`'s probes.
const USER_AGENT: &str = concat!("intercom/", env!("CARGO_PKG_VERSION"));

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The URL or a header can never work: trying again would fail the same way.
    Invalid(String),
    /// The deadline passed.
    TimedOut,
    /// The name, the connection, TLS or the answer failed: worth another try.
    Network(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Failure::Invalid(why) | Failure::Network(why) => f.write_str(why),
            Failure::TimedOut => f.write_str("it timed out"),
        }
    }
}

fn network(e: io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Failure::TimedOut,
        _ => Failure::Network(e.to_string()),
    }
}

/// A server's answer: any status, 3xx and errors included, for the caller to classify.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends requests, each within `timeout`; `https` only when built by [`Agent::https`].
pub struct Agent {
    timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Agent {
    /// For the outside: HTTP and HTTPS, verified against the system's roots (loaded now).
    pub fn https(timeout: Duration) -> Agent {
        Agent { timeout, tls: super::tls::client_config().ok() }
    }

    /// For the local control API: plain HTTP only; no CA bundle to load.
    pub fn plain(timeout: Duration) -> Agent {
        Agent { timeout, tls: None }
    }

    /// `body` is its content type and bytes.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<Answer, Failure> {
        let deadline = Instant::now() + self.timeout;
        let target = Target::parse(url)?;
        let basic = target.user.map(basic_auth);
        let length = body.map(|(_, bytes)| bytes.len().to_string());
        let all = (basic.iter().map(|b| ("Authorization", b.as_str())))
            .chain(headers.iter().copied())
            .chain(body.map(|(kind, _)| ("Content-Type", kind)))
            .chain(length.as_deref().map(|l| ("Content-Length", l)));
        let (path, host) = (&target.path, target.host_port);
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n");
        head.push_str("Connection: close\r\n");
        for (name, value) in all {
            if value.contains(['\r', '\n']) {
                return Err(Failure::Invalid(format!("the {name} header holds a line break")));
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let tls = match (&self.tls, target.tls) {
            (_, false) => None,
            (Some(config), true) => {
                let name = rustls::pki_types::ServerName::try_from(target.host.to_string())
                    .map_err(|e| Failure::Invalid(format!("{}: {e}", target.host)))?;
                Some(
                    rustls::ClientConnection::new(config.clone(), name)
                        .map_err(|e| Failure::Invalid(format!("TLS: {e}")))?,
                )
            }
            (None, true) => return Err(Failure::Invalid("this client speaks plain HTTP only".into())),
        };
        let timed = Timed { stream: connect(target.host, target.port, deadline)?, deadline };
        let mut stream: Box<dyn ReadWrite> = match tls {
            None => Box::new(timed),
            Some(conn) => Box::new(rustls::StreamOwned::new(conn, timed)),
        };
        stream.write_all(head.as_bytes()).map_err(network)?;
        stream.write_all(body.map_or(&[], |(_, b)| b)).and_then(|()| stream.flush()).map_err(network)?;
        read_answer(&mut BufReader::new(stream))
    }
}

/// The `Authorization` value for HTTP Basic with `user:password`.
pub fn basic_auth(user_password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password))
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// `a=1&b=x+y`: pairs encoded as an HTML form is, for a query or a form body (TwiML's
/// action URLs among them), except that a comma stays as it is: it means the same either
/// way, and a list of numbers in a URL stays readable.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b',' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// The parts of `http[s]://[user:password@]host[:port][/path][?query]` a request needs.
struct Target<'a> {
    tls: bool,
    user: Option<&'a str>,
    /// As the `Host` header says it: an IPv6 address bracketed, the port if one was given.
    host_port: &'a str,
    /// The name TLS verifies and DNS resolves (no brackets).
    host: &'a str,
    port: u16,
    path: String,
}

impl<'a> Target<'a> {
    fn parse(url: &'a str) -> Result<Target<'a>, Failure> {
        let bad = |why: &str| Failure::Invalid(format!("bad URL ({why})"));
        let (tls, rest) = match url.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            _ => return Err(bad("not http:// or https://")),
        };
        if rest.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("spaces or control characters"));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let (user, host_port) = authority.rsplit_once('@').map_or((None, authority), |(u, h)| (Some(u), h));
        let (host, port) = match host_port.strip_prefix('[') {
            Some(v6) => {
                v6.split_once(']').map(|(h, p)| (h, p.strip_prefix(':'))).ok_or_else(|| bad("no ]"))?
            }
            None => host_port.split_once(':').map_or((host_port, None), |(h, p)| (h, Some(p))),
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("port"))?,
            None if tls => 443,
            None => 80,
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
        Ok(Target { tls, user, host_port, host, port, path })
    }
}

/// The first address of `host` that accepts a connection on `port` before the deadline
/// (also MQTT's way to its broker). The name is looked up on a thread of its own: a
/// resolver that hangs must not hold us past it.
pub fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, Failure> {
    let (tx, rx) = mpsc::channel();
    let name = (host.to_string(), port);
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || tx.send(name.to_socket_addrs().map(Vec::from_iter)))
        .map_err(network)?;
    let left = || deadline.saturating_duration_since(Instant::now());
    let found = rx.recv_timeout(left()).map_err(|_| Failure::TimedOut)?;
    let addrs: Vec<SocketAddr> = found.map_err(|e| Failure::Network(format!("{host}: {e}")))?;
    let mut last = Failure::Network(format!("{host}: no address"));
    for addr in addrs {
        if left().is_zero() {
            return Err(Failure::TimedOut);
        }
        match TcpStream::connect_timeout(&addr, left()) {
            Ok(socket) => return Ok(socket),
            Err(e) => last = network(e),
        }
    }
    Err(last)
}

/// The status, headers and body of the answer. We send no `Expect`, so no `100 Continue`
/// comes first.
fn read_answer(r: &mut impl BufRead) -> Result<Answer, Failure> {
    let garbled = |why: &str| Failure::Network(format!("a garbled answer ({why})"));
    let mut budget = MAX_HEAD_BYTES;
    let status_line = line(r, &mut budget)?;
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| garbled("no HTTP status line"))?;
    let mut headers = Vec::new();
    loop {
        let header = line(r, &mut budget)?;
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').ok_or_else(|| garbled("a header without a colon"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut answer = Answer { status, headers, body: Vec::new() };
    let chunked = answer.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    let length =
        answer.header("content-length").map(|l| l.parse::<usize>().map_err(|_| garbled("its length")));
    if status == 204 || status == 304 {
        return Ok(answer);
    }
    if chunked {
        loop {
            let mut budget = MAX_HEAD_BYTES;
            let size = line(r, &mut budget)?;
            let size = size.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| garbled("a chunk size"))?;
            if size == 0 {
                while !line(r, &mut budget)?.is_empty() {}
                return Ok(answer);
            }
            read_exactly(r, &mut answer.body, size)?;
            line(r, &mut budget)?;
        }
    }
    match length.transpose()? {
        Some(n) => read_exactly(r, &mut answer.body, n)?,
        // Without a length, the answer ends when the server closes: a TLS server that
        // closes without saying so first still ended the answer.
        None => match r.take(MAX_BODY_BYTES as u64 + 1).read_to_end(&mut answer.body) {
            Ok(_) | Err(_) if answer.body.len() > MAX_BODY_BYTES => return Err(too_large()),
            Err(e) if e.kind() != io::ErrorKind::UnexpectedEof => return Err(network(e)),
            _ => {}
        },
    }
    Ok(answer)
}

fn too_large() -> Failure {
    Failure::Network(format!("an answer larger than {MAX_BODY_BYTES} bytes"))
}

fn read_exactly(r: &mut impl BufRead, body: &mut Vec<u8>, n: usize) -> Result<(), Failure> {
    // Subtracted, not added: a length near usize::MAX must not overflow.
    if n > MAX_BODY_BYTES - body.len() {
        return Err(too_large());
    }
    let start = body.len();
    body.resize(start + n, 0);
    r.read_exact(&mut body[start..]).map_err(network)
}

/// One CRLF-terminated line, charged to `budget`.
fn line(r: &mut impl BufRead, budget: &mut usize) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    let read = r.take(*budget as u64).read_until(b'\n', &mut bytes).map_err(network)?;
    *budget -= read;
    match bytes.strip_suffix(b"\n") {
        Some(line) => Ok(String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned()),
        None if read == 0 => Err(Failure::Network("the server closed the connection".into())),
        None => Err(Failure::Network("an answer's head too long or cut off".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(wire: &str) -> Result<Answer, Failure> {
        read_answer(&mut wire.as_bytes())
    }

    #[test]
    fn urls_split_into_what_a_request_needs() {
        let t = Target::parse("https://u:p@[::1]:8443/a/{b}?x=1#frag").unwrap();
        assert_eq!(
            (t.tls, t.user, t.host_port, t.host, t.port),
            (true, Some("u:p"), "[::1]:8443", "::1", 8443)
        );
        assert_eq!(t.path, "/a/{b}?x=1");
        let t = Target::parse("http://example.com?q").unwrap();
        assert_eq!((t.host, t.port, t.path.as_str()), ("example.com", 80, "/?q"));
        for bad in
            ["ftp://x", "http://", "http://h:99999/", "http://h/a b", "http://h/\r\nX: y", "http://[::1/"]
        {
            assert!(matches!(Target::parse(bad), Err(Failure::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn answers_are_read_by_length_by_chunks_or_to_the_end() {
        let a = answer("HTTP/1.1 201 Created\r\nContent-Length: 2\r\nRetry-After: 5\r\n\r\nokEXTRA").unwrap();
        assert_eq!((a.status, a.text().as_str(), a.header("retry-after")), (201, "ok", Some("5")));
        let a = answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n").unwrap();
        assert_eq!(a.text(), "abcde");
        assert_eq!(answer("HTTP/1.0 404 Not Found\r\n\r\nnot here").unwrap().text(), "not here");
        assert_eq!(answer("HTTP/1.1 204 No Content\r\n\r\n").unwrap().body, b"");
    }

    #[test]
    fn garbled_cut_or_huge_answers_are_failures() {
        for wire in [
            "",
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\nffffffffffffffff\r\n",
        ] {
            assert!(matches!(answer(wire), Err(Failure::Network(_))), "{wire:?}");
        }
        let endless = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD_BYTES));
        assert!(answer(&endless).is_err());
        let huge = format!("HTTP/1.1 200 OK\r\n\r\n{}", "a".repeat(MAX_BODY_BYTES + 1));
        assert_eq!(answer(&huge).unwrap_err(), too_large());
    }

    #[test]
    fn no_answer_makes_the_reader_panic() {
        // Mutations of a valid answer (the fuzz targets' idea, deterministic and short).
        let valid =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2\r\nab\r\n0\r\n\r\n";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut wire = valid.to_vec();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % wire.len() as u64) as usize;
                wire[at] = b"0123456789abcdefxX\r\n: ;-"[(seed >> 32) as usize % 24];
            }
            let _ = read_answer(&mut wire.as_slice());
        }
    }

    #[test]
    fn forms_are_encoded_as_browsers_do() {
        assert_eq!(
            form(&[("Twiml", "<Play digits=\"w9\"/>"), ("a b", "+1~")]),
            "Twiml=%3CPlay+digits%3D%22w9%22%2F%3E&a+b=%2B1~"
        );
    }

    /// A server on 127.0.0.1 that reads the request, then sends `answer` a byte every
    /// `pause`; the request as it arrived.
    fn trickling(answer: &'static [u8], pause: Duration) -> (String, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://u:p@{}/hook?a=1", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\nbody") {
                let mut buf = [0; 512];
                match socket.read(&mut buf).unwrap() {
                    0 => break,
                    n => request.extend_from_slice(&buf[..n]),
                }
            }
            for byte in answer {
                std::thread::sleep(pause);
                if socket.write_all(&[*byte]).is_err() {
                    break;
                }
            }
            String::from_utf8(request).unwrap()
        });
        (url, server)
    }

    #[test]
    fn a_request_goes_out_as_written_and_its_answer_comes_back() {
        let (url, server) =
            trickling(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok", Duration::ZERO);
        let answer = Agent::plain(Duration::from_secs(10))
            .send("POST", &url, &[("X-A", "1")], Some(("text/plain", b"body")))
            .unwrap();
        assert_eq!((answer.status, answer.text().as_str()), (202, "ok"));
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /hook?a=1 HTTP/1.1\r\nHost: 127.0.0.1:"), "{request}");
        for line in [
            "Authorization: Basic dTpw\r\n",
            "X-A: 1\r\n",
            "Content-Type: text/plain\r\n",
            "Content-Length: 4\r\n",
        ] {
            assert!(request.contains(line), "{line} in {request}");
        }
        let refused = Agent::plain(Duration::from_secs(1)).send("GET", "https://127.0.0.1/", &[], None);
        assert!(matches!(refused, Err(Failure::Invalid(_))), "the CLI's agent speaks no TLS");
    }

    #[test]
    fn a_server_that_trickles_its_answer_is_cut_off_at_the_deadline() {
        // 200 bytes at 50 ms each would take 10 s; the deadline is half a second.
        static ENDLESS: [u8; 200] = [b'a'; 200];
        let (url, server) = trickling(&ENDLESS, Duration::from_millis(50));
        let sent =
            Agent::plain(Duration::from_millis(500)).send("POST", &url, &[], Some(("text/plain", b"body")));
        assert_eq!(sent.unwrap_err(), Failure::TimedOut);
        server.join().unwrap();
    }
}
