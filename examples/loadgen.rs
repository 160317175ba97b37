//! Load generator for `make bench` (driven by `bench/run.sh`; results in BENCHMARKS.md).
//!
//! Sends signed Twilio voice webhooks (POST, form body, `X-Twilio-Signature`) to a server
//! on loopback from N client threads, for a fixed time and at most a fixed count, and
//! records the latency of every request (from before `connect` in `close` mode, from
//! before the write in `keepalive` mode, to the last byte of the answer).
//!
//! ```text
//! loadgen run --addr 127.0.0.1:PORT --auth-token T --public-url URL [--path /voice]
//!             [--mode close|keepalive] [--concurrency N] [--duration SECS] [--warmup SECS]
//!             [--max-requests N] [--from NUMBER] [--expect TEXT] [--watch-pid PID]
//!             [--label NAME] [--timeout SECS] [--rate REQ_PER_SEC] [--method POST|GET]
//! loadgen startup --addr 127.0.0.1:PORT [--timeout SECS] -- COMMAND ARGS...
//! ```
//!
//! Without `--rate` each client sends its next request as soon as the last is answered
//! (closed loop: measures capacity). With `--rate R` the clients together send R requests
//! a second on a fixed schedule and latency counts from when each was due (open loop:
//! measures latency at a given load, without coordinated omission).
//!
//! `run` prints one JSON object per line on stdout (count, req/s, p50/p90/p99/p99.9/max,
//! errors, and the peak RSS of `--watch-pid` plus its children, sampled every 20 ms) and a
//! human summary on stderr. `startup` spawns COMMAND, polls `GET /healthz` until it answers
//! 200, prints the time from spawn to that answer, and stops the process (SIGTERM).
//!
//! `--method GET` sends a plain unsigned `GET PATH` instead of the webhook (e.g. `--path
//! /healthz`): the floor the same load and the same connections set, to compare a call
//! against.
//!
//! Only loopback addresses are accepted: this tool never sends load anywhere else.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use ring::hmac;

/// Hard bounds whatever the arguments say, so a typo cannot turn into a flood.
const MAX_CONCURRENCY: usize = 1024;
const MAX_DURATION: Duration = Duration::from_secs(120);
const MAX_REQUESTS: u64 = 5_000_000;
/// A response larger than this is a bug in the server under test.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("startup") => startup(&args[1..]),
        _ => Err("usage: loadgen run --addr 127.0.0.1:PORT ... | loadgen startup --addr ... -- CMD".into()),
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(2);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// A new TCP connection per request, `Connection: close` (what Twilio does).
    Close,
    /// One connection per client thread, reused (reopened when the server closes it).
    KeepAlive,
}

struct Opts {
    addr: SocketAddr,
    path: String,
    /// `POST` (the signed webhook) or `GET` (no body, no signature: `/healthz`).
    get: bool,
    mode: Mode,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
    max_requests: u64,
    auth_token: String,
    public_url: String,
    from: String,
    expect: Option<String>,
    watch_pid: Option<u32>,
    label: String,
    timeout: Duration,
    /// Open loop: total requests per second across all clients (0 = as fast as answered).
    rate: f64,
}

fn parse_opts(args: &[String]) -> Result<(Opts, Vec<String>), String> {
    let mut o = Opts {
        addr: "127.0.0.1:8080".parse().unwrap(),
        path: "/voice".into(),
        get: false,
        mode: Mode::KeepAlive,
        concurrency: 1,
        duration: Duration::from_secs(5),
        warmup: Duration::ZERO,
        max_requests: 1_000_000,
        auth_token: String::new(),
        public_url: String::new(),
        from: "+15558889999".into(),
        expect: None,
        watch_pid: None,
        label: "server".into(),
        timeout: Duration::from_secs(10),
        rate: 0.0,
    };
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            rest.extend(it.cloned());
            break;
        }
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        let secs = |v: String| -> Result<Duration, String> {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or(format!("{a}: not a number of seconds: {v}"))
        };
        match a.as_str() {
            "--addr" => o.addr = val()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--path" => o.path = val()?,
            "--method" => {
                o.get = match val()?.to_ascii_uppercase().as_str() {
                    "GET" => true,
                    "POST" => false,
                    m => return Err(format!("--method: POST or GET, not {m}")),
                }
            }
            "--mode" => {
                o.mode = match val()?.as_str() {
                    "close" => Mode::Close,
                    "keepalive" | "keep-alive" => Mode::KeepAlive,
                    m => return Err(format!("--mode: close or keepalive, not {m}")),
                }
            }
            "--concurrency" | "-c" => o.concurrency = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--duration" | "-d" => o.duration = secs(val()?)?,
            "--warmup" => o.warmup = secs(val()?)?,
            "--max-requests" | "-n" => o.max_requests = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--auth-token" => o.auth_token = val()?,
            "--public-url" => o.public_url = val()?,
            "--from" => o.from = val()?,
            "--expect" => o.expect = Some(val()?),
            "--watch-pid" => o.watch_pid = Some(val()?.parse().map_err(|e| format!("{a}: {e}"))?),
            "--label" => o.label = val()?,
            "--timeout" => o.timeout = secs(val()?)?,
            "--rate" => {
                o.rate = val()?
                    .parse()
                    .ok()
                    .filter(|r: &f64| r.is_finite() && *r >= 0.0)
                    .ok_or("--rate: a number")?
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if !o.addr.ip().is_loopback() {
        return Err(format!("{}: only loopback addresses are allowed", o.addr));
    }
    if o.concurrency == 0 || o.concurrency > MAX_CONCURRENCY {
        return Err(format!("--concurrency must be 1..={MAX_CONCURRENCY}"));
    }
    if o.duration + o.warmup > MAX_DURATION {
        return Err(format!("--duration plus --warmup must be at most {}s", MAX_DURATION.as_secs()));
    }
    o.max_requests = o.max_requests.min(MAX_REQUESTS);
    if o.timeout.is_zero() {
        return Err("--timeout must be positive".into());
    }
    Ok((o, rest))
}

// ---- the request ------------------------------------------------------------------------

/// Percent-encoding for form values: unreserved characters stay, everything else is %XX.
fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Twilio's signature, computed here independently of the server's code:
/// base64(HMAC-SHA1(token, url + each param sorted by name, name then value)).
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut mac =
        hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes()));
    mac.update(url.as_bytes());
    let mut sorted = params.to_vec();
    sorted.sort();
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.sign())
}

/// The bytes of one signed webhook: a parameter set like the one Twilio sends for an
/// incoming call (about 600 bytes of body), with this call's own `CallSid`. Every request
/// is a new call, as Twilio's are: the server answers a repeated `CallSid` from memory
/// without deciding or recording it again, which is not what a bench should measure.
fn build_request(o: &Opts, call_sid: &str) -> Vec<u8> {
    let connection = if o.mode == Mode::Close { "Connection: close\r\n" } else { "" };
    if o.get {
        return format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: loadgen\r\nAccept: */*\r\n{connection}\r\n",
            o.path, o.addr
        )
        .into_bytes();
    }
    let params: [(&str, &str); 17] = [
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", call_sid),
        ("CallStatus", "ringing"),
        ("CallToken", "%7B%22parentCallInfoToken%22%3A%22bench%22%7D"),
        ("Called", "+15551234567"),
        ("CalledCity", "SPRINGFIELD"),
        ("CalledCountry", "US"),
        ("CalledState", "IL"),
        ("CalledZip", "62701"),
        ("Caller", &o.from),
        ("CallerCity", "SPRINGFIELD"),
        ("CallerCountry", "US"),
        ("CallerState", "IL"),
        ("Direction", "inbound"),
        ("From", &o.from),
        ("To", "+15551234567"),
    ];
    let body = params.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect::<Vec<_>>().join("&");
    let url = format!("{}{}", o.public_url, o.path);
    let signature = twilio_signature(&o.auth_token, &url, &params);
    format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: TwilioProxy/1.1\r\nAccept: */*\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\n\
         Content-Length: {}\r\n{connection}\r\n{body}",
        o.path,
        o.addr,
        body.len()
    )
    .into_bytes()
}

// ---- the response -----------------------------------------------------------------------

struct Answer {
    status: u16,
    /// The server said `Connection: close` (or spoke HTTP/1.0 without keep-alive).
    closes: bool,
    body_ok: bool,
}

/// Reads one response (head + `Content-Length` body) from `s` into `buf`.
fn read_answer(s: &mut TcpStream, buf: &mut Vec<u8>, expect: Option<&[u8]>) -> io::Result<Answer> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_RESPONSE_BYTES {
            return Err(io::Error::other("response head too large"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the answer"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| io::Error::other("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let http10 = status_line.starts_with("HTTP/1.0");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut length = None;
    let mut connection = None;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("connection") {
                connection = Some(v.to_ascii_lowercase());
            }
        }
    }
    let closes = match connection.as_deref() {
        Some("close") => true,
        Some("keep-alive") => false,
        _ => http10,
    };
    let total = match length {
        Some(l) => head_end + l,
        None if closes => usize::MAX, // body runs to EOF
        None => return Err(io::Error::other("no Content-Length on a kept-alive answer")),
    };
    while buf.len() < total {
        if buf.len() > MAX_RESPONSE_BYTES {
            return Err(io::Error::other("response too large"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            if total == usize::MAX {
                break;
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed mid-body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = &buf[head_end..];
    let body_ok = expect.map_or(true, |e| find(body, e).is_some());
    Ok(Answer { status, closes, body_ok })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

// ---- run --------------------------------------------------------------------------------

#[derive(Default)]
struct ThreadResult {
    /// Microseconds, one per measured successful request.
    latencies: Vec<u32>,
    errors: BTreeMap<String, u64>,
    /// Connections opened (in keep-alive mode: how often the server closed ours).
    connects: u64,
}

fn run(args: &[String]) -> Result<(), String> {
    let (o, rest) = parse_opts(args)?;
    if !rest.is_empty() {
        return Err(format!("unexpected arguments {rest:?}"));
    }
    if !o.get && (o.auth_token.is_empty() || o.public_url.is_empty()) {
        return Err("--auth-token and --public-url are needed to sign the webhook".into());
    }
    let o = Arc::new(o);
    // Distinct from every other run's CallSids, so a server that serves several runs
    // never takes one of them for a repeat.
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64 ^ u64::from(std::process::id()));
    let request = Arc::new(RequestMaker { run_id });
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rss_peak = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(o.concurrency + 1));

    let sampler = o.watch_pid.map(|pid| {
        let (stop, peak) = (stop.clone(), rss_peak.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib_tree(pid), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(20));
            }
        })
    });

    let mut workers = Vec::new();
    for i in 0..o.concurrency {
        let (o, request, issued, stop, barrier) =
            (o.clone(), request.clone(), issued.clone(), stop.clone(), barrier.clone());
        let w = thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                barrier.wait();
                client(&o, i, &request, &issued, &stop)
            })
            .map_err(|e| format!("cannot start a client thread: {e}"))?;
        workers.push(w);
    }
    barrier.wait();
    let start = Instant::now();
    let measure_from = start + o.warmup;
    let end = measure_from + o.duration;
    let mut cpu_from = None;
    // Stop at the deadline, or earlier once every request of --max-requests is issued.
    while Instant::now() < end && issued.load(Ordering::Relaxed) < o.max_requests {
        if cpu_from.is_none() && Instant::now() >= measure_from {
            cpu_from = Some((o.watch_pid.map(cpu_ticks_tree), cpu_ticks(std::process::id())));
        }
        thread::sleep(Duration::from_millis(5).min(end.saturating_duration_since(Instant::now())));
    }
    stop.store(true, Ordering::Relaxed);
    let stopped = Instant::now();
    // CPU time the server spent (user + system), in clock ticks of 10 ms.
    let (server_from, client_from) = cpu_from.unwrap_or((None, cpu_ticks(std::process::id())));
    let server_cpu = o.watch_pid.zip(server_from).map(|(pid, from)| cpu_ticks_tree(pid).saturating_sub(from));
    let client_cpu = cpu_ticks(std::process::id()).saturating_sub(client_from);

    let mut all = ThreadResult::default();
    for w in workers {
        let r = w.join().map_err(|_| "a client thread panicked")?;
        all.latencies.extend(r.latencies);
        for (k, v) in r.errors {
            *all.errors.entry(k).or_default() += v;
        }
        all.connects += r.connects;
    }
    if let Some(s) = sampler {
        let _ = s.join();
    }
    let measured = stopped.saturating_duration_since(measure_from).as_secs_f64().max(1e-9);
    report(&o, all, measured, rss_peak.load(Ordering::Relaxed), server_cpu, client_cpu);
    Ok(())
}

/// One client: sends requests back to back until told to stop or the count is used up.
/// Makes each request's bytes: a fresh `CallSid` per request.
struct RequestMaker {
    run_id: u64,
}

impl RequestMaker {
    fn make(&self, o: &Opts, n: u64) -> Vec<u8> {
        build_request(o, &format!("CA{:016x}{n:016x}", self.run_id))
    }
}

fn client(
    o: &Opts,
    index: usize,
    request: &RequestMaker,
    issued: &AtomicU64,
    stop: &AtomicBool,
) -> ThreadResult {
    let mut r = ThreadResult { latencies: Vec::with_capacity(64 * 1024), ..Default::default() };
    let start = Instant::now();
    let measure_from = start + o.warmup;
    // With --rate, this client's share of the schedule: one request every `interval`,
    // staggered so the clients together send evenly.
    let interval = (o.rate > 0.0).then(|| Duration::from_secs_f64(o.concurrency as f64 / o.rate));
    let mut next =
        start + Duration::from_secs_f64(index as f64 / o.rate.max(1e-9)).min(Duration::from_secs(1));
    let mut buf = Vec::with_capacity(4096);
    let mut conn: Option<TcpStream> = None;
    let expect = o.expect.as_deref().map(str::as_bytes);
    while !stop.load(Ordering::Relaxed) {
        let n = issued.fetch_add(1, Ordering::Relaxed);
        if n >= o.max_requests {
            break;
        }
        // Built before the clock starts for this request (HMAC-SHA1 over ~600 bytes, a
        // few microseconds of the load generator's CPU).
        let bytes = request.make(o, n);
        // Latency counts from when the request was due, so a server that falls behind the
        // schedule is charged for the wait (no coordinated omission).
        let t0 = match interval {
            Some(step) => {
                let due = next;
                next += step;
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                due
            }
            None => Instant::now(),
        };
        let reused = conn.is_some();
        let outcome = (|| -> io::Result<Answer> {
            if conn.is_none() {
                conn = Some(connect(o.addr, o.timeout)?);
                r.connects += 1;
            }
            let s = conn.as_mut().unwrap();
            s.write_all(&bytes)?;
            read_answer(s, &mut buf, expect)
        })();
        let elapsed = t0.elapsed();
        let measured = t0 >= measure_from;
        match outcome {
            Ok(a) => {
                if o.mode == Mode::Close || a.closes {
                    conn = None;
                }
                if a.status != 200 {
                    *r.errors.entry(format!("status {}", a.status)).or_default() += measured as u64;
                } else if !a.body_ok {
                    *r.errors.entry("unexpected body".into()).or_default() += measured as u64;
                } else if measured {
                    r.latencies.push(elapsed.as_micros().min(u32::MAX as u128) as u32);
                }
            }
            Err(e) => {
                conn = None;
                // A kept-alive connection the server closed while idle is not an error:
                // a real client retries on a fresh one. Anything else is.
                if reused && matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset)
                {
                    issued.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
                if measured {
                    *r.errors.entry(error_kind(&e)).or_default() += 1;
                }
                // Do not spin on a refusing server.
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    r
}

fn error_kind(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timeout".into(),
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::UnexpectedEof => "closed early".into(),
        _ => format!("io: {e}"),
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1] as f64 / 1000.0
}

fn report(
    o: &Opts,
    mut all: ThreadResult,
    secs: f64,
    rss_peak_kib: u64,
    server_cpu: Option<u64>,
    client_cpu: u64,
) {
    let answered = all.latencies.len().max(1) as f64;
    let per_req = |ticks: u64| (ticks as f64 * 1e6 / CLOCK_TICKS_PER_SEC / answered).round();
    all.latencies.sort_unstable();
    let l = &all.latencies;
    let ok = l.len() as u64;
    let errors: u64 = all.errors.values().sum();
    let mean =
        if l.is_empty() { 0.0 } else { l.iter().map(|&x| x as f64).sum::<f64>() / l.len() as f64 / 1000.0 };
    let mode = if o.mode == Mode::Close { "close" } else { "keepalive" };
    let json = serde_json::json!({
        "label": o.label,
        "mode": mode,
        "method": if o.get { "GET" } else { "POST" },
        "path": o.path,
        "concurrency": o.concurrency,
        "rate": o.rate,
        "seconds": (secs * 1000.0).round() / 1000.0,
        "ok": ok,
        "errors": errors,
        "error_kinds": all.errors,
        "connects": all.connects,
        "rps": (ok as f64 / secs).round(),
        "mean_ms": round3(mean),
        "p50_ms": round3(percentile(l, 50.0)),
        "p90_ms": round3(percentile(l, 90.0)),
        "p99_ms": round3(percentile(l, 99.0)),
        "p999_ms": round3(percentile(l, 99.9)),
        "max_ms": round3(l.last().map_or(0.0, |&x| x as f64 / 1000.0)),
        "rss_peak_kib": rss_peak_kib,
        // Server CPU (user + system) per answered request, from /proc/PID/stat.
        "server_cpu_us_per_req": server_cpu.filter(|_| ok > 0).map(per_req),
        // The load generator's own CPU per request: on a 2-core machine it competes with
        // the server, and with new connections it pays for half of every TCP handshake.
        "client_cpu_us_per_req": (ok > 0).then(|| per_req(client_cpu)),
    });
    println!("{json}");
    eprintln!(
        "{:>10} {:>9} c={:<3} {:>8.0} req/s  p50 {:>7.3} ms  p99 {:>8.3} ms  max {:>8.3} ms  ok {} errors {}{}",
        o.label,
        mode,
        o.concurrency,
        ok as f64 / secs,
        percentile(l, 50.0),
        percentile(l, 99.0),
        l.last().map_or(0.0, |&x| x as f64 / 1000.0),
        ok,
        errors,
        if errors > 0 { format!(" {:?}", all.errors) } else { String::new() }
    );
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux we run on.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of `pid` plus its live direct children, in clock ticks.
fn cpu_ticks_tree(pid: u32) -> u64 {
    children(pid).into_iter().chain([pid]).map(cpu_ticks).sum()
}

fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    let Some(close) = stat.rfind(')') else { return 0 };
    // Fields after the name start at field 3 (state); utime and stime are fields 14 and 15.
    let f: Vec<&str> = stat[close + 2..].split(' ').collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    num(11) + num(12)
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|&c| parent_of(c) == Some(pid))
        .collect()
}

/// VmRSS of `pid` plus its direct children (gunicorn's workers), in KiB.
fn rss_kib_tree(pid: u32) -> u64 {
    children(pid).into_iter().chain([pid]).map(rss_kib).sum()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields follow the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(1)?.parse().ok()
}

// ---- startup ----------------------------------------------------------------------------

/// Spawns the server, polls `GET /healthz` until 200, prints the elapsed time, stops it.
fn startup(args: &[String]) -> Result<(), String> {
    let (o, cmd) = parse_opts(args)?;
    let (program, cmd_args) = cmd.split_first().ok_or("startup needs -- COMMAND ARGS...")?;
    if TcpStream::connect_timeout(&o.addr, Duration::from_millis(200)).is_ok() {
        return Err(format!("{} already answers: pick a free port", o.addr));
    }
    let t0 = Instant::now();
    let mut child = Command::new(program)
        .args(cmd_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", o.addr);
    let mut buf = Vec::new();
    let mut answered = None;
    let mut polls = 0u64;
    while t0.elapsed() < o.timeout {
        polls += 1;
        let got = connect(o.addr, Duration::from_secs(2)).and_then(|mut s| {
            s.write_all(request.as_bytes())?;
            read_answer(&mut s, &mut buf, None)
        });
        if matches!(got, Ok(Answer { status: 200, .. })) {
            answered = Some(t0.elapsed());
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{program} exited with {status} before answering"));
        }
        thread::sleep(Duration::from_micros(500));
    }
    // SIGTERM, so a master process (gunicorn) can take its workers down with it.
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    let t = answered.ok_or(format!("no answer from {} within {:?}", o.addr, o.timeout))?;
    let ms = round3(t.as_secs_f64() * 1000.0);
    println!("{}", serde_json::json!({"label": o.label, "startup_ms": ms, "polls": polls}));
    eprintln!("{:>10} first answer {ms:.1} ms after spawn ({polls} polls)", o.label);
    Ok(())
}
