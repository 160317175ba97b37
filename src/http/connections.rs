//! The connections of one listener: the accept loop, the registry of open connections,
//! and the thread that serves each one. Reading and parsing a request, and writing the
//! answer, are `mod.rs`'s; what to answer is the handler's (the listeners in `web/`).
//!
//! One thread per connection (taken from a bounded pool of idle threads, `pool.rs`), at
//! most `Limits::max_connections` per listener. A connection is busy only while a handler
//! runs on its complete request; the rest of the time (waiting for, or receiving, a head
//! or body, or writing an answer) it is waiting. When the cap is reached, the connection
//! that has waited longest for its current request (at least a second) is dropped: an
//! idle, slow or trickling client, never one whose request is being answered; when none
//! qualifies the newcomer gets an immediate 503. Every connection also has an absolute
//! lifetime (`Limits::connection_lifetime`, from the config): no request starts on an
//! older one and the one under way is answered with `Connection: close`, so keep-alive
//! cannot stretch a connection forever.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::pool::Pool;
use crate::http::{self, Limits, Request, Response};
use crate::util::ratelog::RateLog;
use crate::util::{lock, Timed};

/// A whole request (head and body) must arrive within this time from when we start
/// waiting for it, so a client that trickles bytes cannot hold a thread. Twilio sends a
/// request in one go; five seconds leaves room for a slow tunnel.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A client that does not read its answer is dropped after this.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is only evicted once it has waited this long for its request: a genuine
/// client sends within milliseconds of connecting, so a fresh connection at the cap is
/// never dropped before its request could even be read; idle and trickling ones are.
const EVICTABLE_AFTER: Duration = Duration::from_secs(1);
/// Pending connections the kernel queues before we accept them. Rust's default is 128;
/// a burst of new connections beyond it is dropped by the kernel and retried by the
/// client a second or more later (measured by `make bench` at 256 clients).
const LISTEN_BACKLOG: i32 = 1024;
/// Keep-alive requests per connection before we close it, so no client keeps a thread forever.
const MAX_REQUESTS_PER_CONNECTION: usize = 1000;
/// Request threads run short handlers that build small strings; 256 KiB is ample (the
/// default 2 MiB would only be address space, but this keeps the bound explicit).
const THREAD_STACK_BYTES: usize = 256 * 1024;
/// Connection threads kept waiting for the next connection, per listener. 64 covers the
/// bench's 64 callers that reconnect for every request (and any real load of a home
/// intercom many times over); after a flood the threads beyond it end at once.
const MAX_IDLE_THREADS: usize = 64;
/// An idle connection thread ends after this, so a quiet daemon holds no spare threads.
const IDLE_THREAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Head buffer per connection, reused for each of its requests; grows up to
/// `http::MAX_HEAD_BYTES` for a larger head. Twilio's heads are under 2 KiB.
const HEAD_BUFFER_BYTES: usize = 2 * 1024;
/// After refusing a request we read (and discard) at most this much of what the client
/// is still sending, so closing does not reset the connection before it sees our answer.
const DRAIN_BYTES: u64 = 64 * 1024;
/// The whole drain, however the bytes trickle in: a client sending a byte now and then
/// must not hold the thread for hours (64 KiB at one byte per timeout).
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// What a listener does with each request: a function from request to response.
pub type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// What one listener serves and how: its name (for the log), limits and handlers.
pub struct Site {
    pub name: &'static str,
    pub limits: Limits,
    pub handler: Arc<Handler>,
    /// How it answers a request refused before its handler saw it.
    pub refusal: http::Render,
}

/// One accepted connection, as the accept loop sees it (to pick an eviction victim).
struct Slot {
    stream: Arc<TcpStream>,
    /// Milliseconds since `epoch` when it began waiting for a request; 0 while busy.
    waiting_since_ms: AtomicU64,
}

struct Listener {
    site: Site,
    slots: Mutex<Vec<Arc<Slot>>>,
    epoch: Instant,
    busy_log: RateLog,
    panic_log: RateLog,
}

/// Accepts connections forever; accept errors (out of descriptors, …) are logged and retried.
pub fn serve(listener: TcpListener, site: Site) -> ! {
    // Calling listen(2) again on a listening socket only changes its backlog; std has no
    // API for it, and a failure just leaves the default in place.
    if let Err(e) = socket2::SockRef::from(&listener).listen(LISTEN_BACKLOG) {
        log::warn!("could not raise the listen backlog: {e}");
    }
    let name = site.name;
    let pool = Pool::new(name, THREAD_STACK_BYTES, MAX_IDLE_THREADS, IDLE_THREAD_TIMEOUT);
    let shared = Arc::new(Listener {
        site,
        slots: Mutex::new(Vec::new()),
        epoch: Instant::now(),
        busy_log: RateLog::new(),
        panic_log: RateLog::new(),
    });
    let accept_log = RateLog::new();
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                accept_log.warn(format_args!("{name}: accept failed: {e}"));
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let accepted = Instant::now();
        let stream = Arc::new(stream);
        let Some(slot) = shared.admit(&stream) else {
            let max = shared.site.limits.max_connections;
            shared.busy_log.warn(format_args!("{name}: {max} connections busy; answered {peer} with 503"));
            // Without blocking the accept loop.
            let _ = stream.set_nonblocking(true);
            let resp = Response::text(503, "busy, try again").with_header("Retry-After", "1");
            let _ = http::write_response(&mut &*stream, &resp, false, false);
            continue;
        };
        let conn = Leave { listener: shared.clone(), slot };
        let job = Box::new(move || conn.listener.handle_connection(&conn.slot, peer, accepted));
        if let Err(e) = pool.run(job) {
            // The connection was dropped with the job, and its slot with it.
            shared.busy_log.error(format_args!("{name}: cannot start a thread: {e}"));
        }
    }
}

/// A connection's job: removes the connection from the registry when it ends, even by
/// panic, or when no thread could be started for it.
struct Leave {
    listener: Arc<Listener>,
    slot: Arc<Slot>,
}

impl Drop for Leave {
    fn drop(&mut self) {
        lock(&self.listener.slots).retain(|s| !Arc::ptr_eq(s, &self.slot));
    }
}

impl Listener {
    fn now_ms(&self) -> u64 {
        // Never 0, which means "busy".
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Registers a new connection, evicting the longest-waiting one at the cap.
    fn admit(&self, stream: &Arc<TcpStream>) -> Option<Arc<Slot>> {
        let mut slots = lock(&self.slots);
        if slots.len() >= self.site.limits.max_connections {
            let idle_before = self.now_ms().saturating_sub(EVICTABLE_AFTER.as_millis() as u64);
            let victim = slots
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.waiting_since_ms.load(Ordering::Relaxed)))
                .filter(|&(_, since)| since != 0 && since <= idle_before)
                .min_by_key(|&(_, since)| since)
                .map(|(i, _)| i)?;
            let victim = slots.swap_remove(victim);
            // Its blocked read (or write) returns at once and its thread moves on.
            let _ = victim.stream.shutdown(Shutdown::Both);
        }
        let slot = Arc::new(Slot { stream: stream.clone(), waiting_since_ms: AtomicU64::new(self.now_ms()) });
        slots.push(slot.clone());
        Some(slot)
    }

    /// Serves one connection's requests in turn. The connection is busy (not evictable)
    /// only while the handler runs on a complete request: a client still sending its
    /// head or body, or not reading its answer, can be evicted at the cap.
    fn handle_connection(&self, slot: &Slot, peer: SocketAddr, accepted: Instant) {
        let stream: &TcpStream = &slot.stream;
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let _ = stream.set_nodelay(true);
        let mut reader = http::conn(slot.stream.clone());
        let mut head = Vec::with_capacity(HEAD_BUFFER_BYTES);
        let wait = || slot.waiting_since_ms.store(self.now_ms(), Ordering::Relaxed);
        for served in 0..MAX_REQUESTS_PER_CONNECTION {
            wait();
            let deadline = Instant::now() + REQUEST_TIMEOUT;
            let req = match http::read_request(&mut reader, &mut head, deadline, peer, self.site.limits) {
                Ok(Some(r)) => r,
                Ok(None) => return, // closed or timed out between requests
                Err((status, reason)) => {
                    let name = self.site.name;
                    log::debug!("{name}: refused a request from {peer}: {status} {reason}");
                    let resp = (self.site.refusal)(status, reason);
                    let _ = http::write_response(&mut &*stream, &resp, false, false);
                    close_gracefully(stream, &mut reader);
                    return;
                }
            };
            slot.waiting_since_ms.store(0, Ordering::Relaxed);
            let last = served + 1 == MAX_REQUESTS_PER_CONNECTION
                || accepted.elapsed() >= self.site.limits.connection_lifetime;
            let keep_alive = http::wants_keep_alive(&req) && !last;
            let head_only = req.method == "HEAD";
            let resp = catch_unwind(AssertUnwindSafe(|| (self.site.handler)(&req))).unwrap_or_else(|_| {
                let (name, method) = (self.site.name, &req.method);
                self.panic_log.error(format_args!("{name}: handler panicked on {method} {}", req.path));
                Response::text(500, "internal error")
            });
            // Answered: whether the client reads it is up to the client.
            wait();
            if http::write_response(&mut &*stream, &resp, keep_alive, head_only).is_err() || !keep_alive {
                return;
            }
        }
    }
}

/// Stops sending, reads a bounded amount of what the client still sends, then closes, so
/// the client gets our error instead of a connection reset.
fn close_gracefully(stream: &TcpStream, reader: &mut http::Conn) {
    let _ = stream.shutdown(Shutdown::Write);
    reader.get_mut().deadline = Instant::now() + DRAIN_TIMEOUT;
    let _ = io::copy(&mut reader.take(DRAIN_BYTES), &mut io::sink());
}

/// Whether the listener bound to `addr` accepts a connection and answers a request
/// within `timeout` (any HTTP status counts: a 404 or a 503 still proves the accept loop
/// and a connection thread work). For the watchdog's self-check.
pub fn probe(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    let target = crate::util::local_address(addr);
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: watchdog\r\nConnection: close\r\n\r\n")?;
    let mut answer = [0u8; 9];
    match (Timed { stream, deadline }).read_exact(&mut answer) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(io::Error::new(e.kind(), "closed without an answer"))
        }
        Err(e) => Err(e),
        Ok(()) if &answer == b"HTTP/1.1 " => Ok(()),
        Ok(()) => Err(io::Error::new(io::ErrorKind::InvalidData, "not an HTTP answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_needs_an_answer_not_just_an_accepted_connection() {
        let timeout = Duration::from_millis(300);
        // Bound and listening, but nobody accepts or answers: the kernel completes the
        // handshake, so only waiting for an answer tells it apart from a working listener.
        let wedged = TcpListener::bind("127.0.0.1:0").unwrap();
        let t = Instant::now();
        assert!(probe(wedged.local_addr().unwrap(), timeout).is_err());
        assert!(t.elapsed() < Duration::from_secs(2), "bounded by the timeout");

        let working = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = working.local_addr().unwrap().port();
        thread::spawn(move || {
            let (mut s, _) = working.accept().unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        });
        // An unspecified address is probed on loopback.
        probe(SocketAddr::from(([0, 0, 0, 0], port)), Duration::from_secs(5)).unwrap();
    }
}
