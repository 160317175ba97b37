//! `http/`: our own small HTTP/1.1 server, the infrastructure under both listeners. It
//! knows no route and no service: the wire (reading one request within a deadline and
//! size limits, parsing its head, writing the answer, the one `HttpError` that handlers
//! return), a listener's connections (the accept loop, a capped registry that evicts
//! waiting connections, a lifetime per connection, a bounded pool of idle threads, the
//! watchdog's probe) and form parameters.
//!
//! Uses: `util`.
//!
//! Why not tiny_http: it has no socket timeouts, no limit on header size or count and an
//! unbounded connection thread pool, so one slow client can pin threads and memory on a
//! listener that faces the internet. This does only what our two listeners need:
//! `Content-Length` bodies, keep-alive, and hard limits on everything a client controls.

pub mod connections;
pub mod form;
pub mod pool;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::Timed;

/// Request line plus headers. Twilio's are under 2 KiB; browsers stay well under 8 KiB.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Per-connection read buffer. Twilio's heads are under 2 KiB; a larger head is gathered
/// across reads (up to MAX_HEAD_BYTES), so this only trades syscalls for memory at the
/// connection cap (measured by `make bench`: 8 KiB buffers cost 1.5 MiB at 256 clients).
const READ_BUFFER_BYTES: usize = 2 * 1024;
/// Header lines per request; real clients send about a dozen.
pub const MAX_HEADERS: usize = 64;
/// Room for the status line and the two headers every answer gets, so the answer's
/// buffer is allocated once.
const RESPONSE_HEAD_SLACK: usize = 96;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path exactly as sent, before `?`; never percent-decoded, so routes match literally.
    pub path: String,
    /// The raw query string after `?` (empty when none).
    pub query: String,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
    /// HTTP/1.0 closes the connection unless asked not to.
    pub http10: bool,
}

impl Request {
    /// The header's value when it appears exactly once; a repeated header is ambiguous
    /// and treated as absent (so a second `Authorization` cannot confuse the check).
    pub fn header(&self, name: &str) -> Option<&str> {
        form::single(&self.headers, name).ok().flatten()
    }

    /// The media type of `Content-Type`, without its parameters (`""` when absent).
    pub fn media_type(&self) -> &str {
        self.header("content-type").and_then(|t| t.split(';').next()).unwrap_or("").trim()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, headers: vec![("Content-Type", content_type.to_string())], body: body.into() }
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// Per-listener bounds: each listener knows what its requests and clients look like.
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Open connections (= threads) at once; see `connections.rs` for what happens at the cap.
    pub max_connections: usize,
    /// No request starts on a connection older than this (see `connections.rs`).
    pub connection_lifetime: Duration,
}

/// How a listener renders an error (status, reason) as its answer: plain text on the
/// webhook, JSON on the control API.
pub type Render = fn(u16, &str) -> Response;

/// Why a request was refused before reaching the handler: the status and its reason.
pub type Refusal = (u16, &'static str);

/// Reads one request. `Ok(None)`: the client went away (or idled out) before sending
/// anything. `head` is the connection's scratch buffer for the head, reused across its
/// requests. The request is complete (head and body) when this returns it.
pub fn read_request(
    reader: &mut Conn,
    head: &mut Vec<u8>,
    deadline: Instant,
    peer: SocketAddr,
    limits: Limits,
) -> Result<Option<Request>, Refusal> {
    // One deadline for the whole request (head and body), however it trickles in.
    reader.get_mut().deadline = deadline;
    if !read_head(reader, head)? {
        return Ok(None);
    }
    let mut req = parse_request_head(head, peer)?;
    if req.headers.iter().any(|(n, _)| n == "transfer-encoding") {
        return Err((501, "Transfer-Encoding is not supported; send Content-Length"));
    }
    let length = content_length(&req.headers)?;
    if length > limits.max_body_bytes {
        return Err((413, "request body too large"));
    }
    if length > 0 {
        if req.header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
            let mut stream: &TcpStream = &reader.get_ref().stream;
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").map_err(|_| (400, "write failed"))?;
        }
        let mut body = Vec::with_capacity(length);
        match reader.by_ref().take(length as u64).read_to_end(&mut body) {
            Ok(n) if n == length => req.body = body,
            Ok(_) => return Err((400, "connection closed mid-body")),
            Err(_) => return Err((408, "request body not received in time")),
        }
    }
    Ok(Some(req))
}

/// Fills `head` with the bytes up to and including the first empty line, within the size
/// limit and the reader's deadline. `false`: the client sent nothing before closing or
/// idling out.
fn read_head(reader: &mut Conn, head: &mut Vec<u8>) -> Result<bool, Refusal> {
    head.clear();
    loop {
        let buf = match reader.fill_buf() {
            // Closed or idled out before sending anything: no request.
            Ok([]) | Err(_) if head.is_empty() => return Ok(false),
            Ok([]) => return Err((400, "connection closed mid-request")),
            Err(_) => return Err((408, "request not received in time")),
            Ok(b) => b,
        };
        // Empty lines before the request line are skipped (RFC 9112 section 2.2, as
        // nginx does): some clients end a body with an extra CRLF, and refusing the next
        // request on that keep-alive connection would lose a call.
        if head.is_empty() {
            let blank = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
            if blank > 0 {
                reader.consume(blank);
                continue;
            }
        }
        // Look for the end of the head across what we have and what just arrived: the
        // terminator is at most 3 bytes ("\n\r\n"), so 2 old bytes can start it.
        let start = head.len().saturating_sub(2);
        let take = buf.len().min(MAX_HEAD_BYTES + 1 - head.len());
        head.extend_from_slice(&buf[..take]);
        if let Some(end) = head_end(&head[start..]).map(|i| start + i) {
            let used = take - (head.len() - end);
            reader.consume(used);
            head.truncate(end);
            return Ok(true);
        }
        reader.consume(take);
        if head.len() > MAX_HEAD_BYTES {
            return Err((431, "request head too large"));
        }
    }
}

/// The index just past the first empty line: a line feed followed by a line feed or by
/// "\r\n", whatever mix of line endings came before. A parser that skipped an empty
/// line (as `\n\r\n` once was) would read what follows as more headers while a proxy
/// in front reads it as the body: a request-smuggling building block.
fn head_end(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = b[from..].iter().position(|&c| c == b'\n').map(|i| from + i) {
        match &b[i + 1..] {
            [b'\n', ..] => return Some(i + 2),
            [b'\r', b'\n', ..] => return Some(i + 3),
            _ => from = i + 1,
        }
    }
    None
}

/// Parses a request head (request line and headers, without the blank line). Public
/// for the fuzz target; the server calls it on what [`read_head`] collected.
pub fn parse_request_head(head: &[u8], peer: SocketAddr) -> Result<Request, Refusal> {
    let text = std::str::from_utf8(head).map_err(|_| (400, "request head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err((400, "malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err((400, "malformed method"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err((505, "only HTTP/1.0 and HTTP/1.1 are supported"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err((400, "the request target must be a path"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err((431, "too many headers"));
        }
        // No whitespace before the colon and no folded lines: both are smuggling tricks.
        let (name, value) = line.split_once(':').ok_or((400, "malformed header"))?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err((400, "malformed header name"));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| b < b' ' && b != b'\t') {
            return Err((400, "control character in a header"));
        }
        headers.push((name.to_ascii_lowercase(), value.to_string()));
    }
    // The head ends at its first empty line (see `head_end`); nothing may follow it here.
    if lines.any(|l| !l.is_empty()) {
        return Err((400, "text after the empty line that ends the head"));
    }
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
        peer,
        http10: version == "HTTP/1.0",
    })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn content_length(headers: &[(String, String)]) -> Result<usize, Refusal> {
    let mut length: Option<usize> = None;
    for (_, v) in headers.iter().filter(|(n, _)| n == "content-length") {
        if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err((400, "malformed Content-Length"));
        }
        let n: usize = v.parse().map_err(|_| (400, "malformed Content-Length"))?;
        if length.is_some_and(|l| l != n) {
            return Err((400, "conflicting Content-Length headers"));
        }
        length = Some(n);
    }
    Ok(length.unwrap_or(0))
}

pub fn wants_keep_alive(req: &Request) -> bool {
    let is = |want: &str| req.header("connection").is_some_and(|c| c.eq_ignore_ascii_case(want));
    if req.http10 {
        is("keep-alive")
    } else {
        !is("close")
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Writes the answer in one `write` (one buffer, sized up front, no per-header strings).
pub fn write_response<W: Write>(
    w: &mut W,
    resp: &Response,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let headers: usize = resp.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let body = if head_only { &[][..] } else { &resp.body[..] };
    let mut out = Vec::with_capacity(RESPONSE_HEAD_SLACK + headers + body.len());
    write!(out, "HTTP/1.1 {} {}\r\n", resp.status, reason_phrase(resp.status))?;
    for (name, value) in &resp.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    let connection = if keep_alive { "keep-alive" } else { "close" };
    write!(out, "Content-Length: {}\r\nConnection: {connection}\r\n\r\n", resp.body.len())?;
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}

/// A connection's read side, buffered; every read must finish by the current deadline.
pub type Conn = BufReader<Timed<Arc<TcpStream>>>;

/// Wraps an accepted stream for [`read_request`]. The stream is shared (reads here,
/// writes and eviction elsewhere go through `&TcpStream`), so a connection holds one
/// descriptor, not one per handle.
pub fn conn(stream: Arc<TcpStream>) -> Conn {
    BufReader::with_capacity(READ_BUFFER_BYTES, Timed { stream, deadline: Instant::now() })
}

/// Why a handler refused a request. Each listener turns it into a response in one
/// place (plain text on the webhook, JSON on the control API).
#[derive(Debug, PartialEq, Eq)]
pub enum HttpError {
    BadRequest(String),
    Unauthorized,
    /// Refused for a reason the client is told (a cross-site request, a wrong `Host`).
    Refused(String),
    NotFound,
    /// Carries the value of the `Allow` header.
    MethodNotAllowed(&'static str),
    UnsupportedMediaType(&'static str),
    /// What it is about is over or taken (a call that ended or was let in, a late link);
    /// the message says what became of it.
    Gone(String),
    /// The service cannot do this now (a full or read-only disk); the message says why.
    Unavailable(String),
    Internal(String),
}

impl HttpError {
    /// The status, and what the client is told.
    fn parts(&self) -> (u16, String) {
        match self {
            HttpError::BadRequest(m) => (400, m.clone()),
            HttpError::Unauthorized => (401, "missing or wrong token".into()),
            HttpError::Refused(m) => (403, m.clone()),
            HttpError::NotFound => (404, "not found".into()),
            HttpError::MethodNotAllowed(allow) => (405, format!("method not allowed (allowed: {allow})")),
            HttpError::Gone(m) => (410, m.clone()),
            HttpError::UnsupportedMediaType(want) => {
                (415, format!("unsupported content type (expected {want})"))
            }
            HttpError::Unavailable(m) => (503, m.clone()),
            // The detail went to the log; the client learns only that it failed.
            HttpError::Internal(_) => (500, "internal error".into()),
        }
    }

    pub fn status(&self) -> u16 {
        self.parts().0
    }

    pub fn message(&self) -> String {
        self.parts().1
    }

    /// The response in the listener's form (`render`: plain text, JSON), with the
    /// headers the status calls for.
    pub fn respond(&self, render: Render) -> Response {
        let (status, message) = self.parts();
        let resp = render(status, &message);
        match self {
            HttpError::MethodNotAllowed(allow) => resp.with_header("Allow", *allow),
            HttpError::Unauthorized => resp.with_header("WWW-Authenticate", "Bearer"),
            _ => resp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn parses_a_request_head() {
        let r = parse_request_head(
            b"POST /voice?x=1 HTTP/1.1\r\nHost: a\r\nX-Twilio-Signature:  abc= \r\n\r\n",
            peer(),
        )
        .unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str(), r.query.as_str()), ("POST", "/voice", "x=1"));
        assert_eq!(r.header("x-twilio-signature"), Some("abc="));
        assert!(wants_keep_alive(&r));
    }

    #[test]
    fn refuses_malformed_heads() {
        let bad: &[(&[u8], u16)] = &[
            (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
            (b"GET http://x/ HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nName : x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400),
            (b"GET /\xff HTTP/1.1\r\n\r\n", 400),
            (b"G\x01T / HTTP/1.1\r\n\r\n", 400),
        ];
        for (head, status) in bad {
            assert_eq!(
                parse_request_head(head, peer()).unwrap_err().0,
                *status,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(parse_request_head(many.as_bytes(), peer()).unwrap_err().0, 431);
    }

    #[test]
    fn content_length_rules() {
        let h =
            |v: &[&str]| v.iter().map(|v| ("content-length".to_string(), v.to_string())).collect::<Vec<_>>();
        assert_eq!(content_length(&h(&["12"])), Ok(12));
        assert_eq!(content_length(&h(&["12", "12"])), Ok(12));
        assert_eq!(content_length(&h(&["12", "13"])).unwrap_err().0, 400);
        assert_eq!(content_length(&h(&["-1"])).unwrap_err().0, 400);
        assert_eq!(content_length(&h(&["99999999999999999999"])).unwrap_err().0, 400);
    }

    #[test]
    fn repeated_headers_read_as_absent() {
        let r = parse_request_head(b"GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", peer())
            .unwrap();
        assert_eq!(r.header("authorization"), None);
    }

    #[test]
    fn http10_closes_by_default() {
        let r = parse_request_head(b"GET / HTTP/1.0\r\n\r\n", peer()).unwrap();
        assert!(!wants_keep_alive(&r));
    }

    #[test]
    fn the_head_ends_at_the_first_empty_line_whatever_the_line_endings() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"GET / HTTP/1.1\r\nA: b\r\n\r\n", Some(24)),
            (b"GET / HTTP/1.1\nA: b\n\n", Some(21)),
            (b"GET / HTTP/1.1\nA: b\n\r\nX: y\r\n\r\n", Some(22)),
            (b"GET / HTTP/1.1\r\nA: b\r\n\nX: y\r\n\r\n", Some(23)),
            (b"GET / HTTP/1.1\r\nA: b\r\n\r", None),
            (b"GET / HTTP/1.1\r\nA: b\r\n", None),
            (b"GET / HTTP/1.1\r\nA: b\r\r\n", None),
        ];
        for (head, want) in cases {
            assert_eq!(head_end(head), *want, "{:?}", String::from_utf8_lossy(head));
        }
        // Text after the empty line is never read as more headers.
        let r = parse_request_head(b"GET / HTTP/1.1\nA: b\n\r\nX: y\r\n\r\n", peer());
        assert_eq!(r.unwrap_err().0, 400);
    }

    /// Over a real socket, as the server reads: `\n\r\n` ends the first request, and
    /// what follows is the next request, not headers of the first.
    #[test]
    fn a_mixed_line_ending_head_ends_where_it_should_on_the_wire() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .write_all(b"GET /first HTTP/1.1\nHost: a\n\r\nGET /second HTTP/1.1\r\nHost: b\r\n\r\n")
            .unwrap();
        let (server, peer) = listener.accept().unwrap();
        let mut reader = conn(Arc::new(server));
        let limits =
            Limits { max_body_bytes: 0, max_connections: 1, connection_lifetime: Duration::from_secs(30) };
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut head = Vec::new();
        let first = read_request(&mut reader, &mut head, deadline, peer, limits).unwrap().unwrap();
        assert_eq!((first.path.as_str(), first.headers.len()), ("/first", 1));
        let second = read_request(&mut reader, &mut head, deadline, peer, limits).unwrap().unwrap();
        assert_eq!((second.path.as_str(), second.header("host")), ("/second", Some("b")));
    }
}
