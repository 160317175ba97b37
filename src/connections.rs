//! The connections of one listener: the accept loop, the registry of open connections,
//! and the thread that serves each one. Reading and parsing a request, and writing the
//! answer, are `http.rs`'s; what to answer is the handler's (`webhook.rs`, `control.rs`).
//!
//! One thread per connection, at most [`MAX_CONNECTIONS`] per listener. When the cap is
//! reached, the connection that has waited longest for its request to arrive (and at
//! least a second) is dropped: an idle or trickling client, never one whose request is
//! being answered; when none qualifies the newcomer gets an immediate 503. A flood of
//! idle connections therefore cannot keep a real request from being answered.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::{self, Limits, Request, Response};
use crate::lock;

/// Concurrent connections (= threads) per listener. Each costs a small stack (a few KiB
/// touched); 512 is far beyond the real clients of a home intercom, bounds memory on a
/// Pi, and leaves headroom over a burst of 256 clients reconnecting per request (at 256,
/// closed connections not yet reaped made `make bench` see 503s).
pub const MAX_CONNECTIONS: usize = 512;
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
/// After refusing a request we read (and discard) at most this much of what the client
/// is still sending, so closing does not reset the connection before it sees our answer.
const DRAIN_BYTES: u64 = 64 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// What a listener does with each request: a function from request to response.
pub type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// One accepted connection, as the accept loop sees it (to pick an eviction victim).
struct Slot {
    stream: TcpStream,
    /// Milliseconds since `epoch` when it began waiting for a request; 0 while busy.
    waiting_since_ms: AtomicU64,
}

struct Listener {
    name: &'static str,
    limits: Limits,
    handler: Arc<Handler>,
    slots: Mutex<Vec<Arc<Slot>>>,
    epoch: Instant,
}

/// Accepts connections forever; accept errors (out of descriptors, …) are logged and retried.
pub fn serve(listener: TcpListener, name: &'static str, limits: Limits, handler: Arc<Handler>) -> ! {
    deepen_backlog(&listener);
    let shared =
        Arc::new(Listener { name, limits, handler, slots: Mutex::new(Vec::new()), epoch: Instant::now() });
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                log::warn!("{name}: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Some(slot) = shared.admit(&stream) else {
            log::warn!("{name}: {MAX_CONNECTIONS} connections busy; answered {peer} with 503");
            refuse_busy(stream);
            continue;
        };
        let (conn, registered) = (shared.clone(), slot.clone());
        let spawned = thread::Builder::new()
            .name(format!("{name}-conn"))
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                let _leave = Leave { listener: &conn, slot: &slot };
                conn.handle_connection(stream, peer, &slot);
            });
        if let Err(e) = spawned {
            // The connection was dropped with the closure; forget its slot too.
            log::error!("{name}: cannot start a thread: {e}");
            lock(&shared.slots).retain(|s| !Arc::ptr_eq(s, &registered));
        }
    }
}

/// Removes the connection from the registry when its thread ends, even by panic.
struct Leave<'a> {
    listener: &'a Listener,
    slot: &'a Arc<Slot>,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        lock(&self.listener.slots).retain(|s| !Arc::ptr_eq(s, self.slot));
    }
}

impl Listener {
    fn now_ms(&self) -> u64 {
        // Never 0, which means "busy".
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Registers a new connection, evicting the longest-waiting one at the cap.
    fn admit(&self, stream: &TcpStream) -> Option<Arc<Slot>> {
        let mut slots = lock(&self.slots);
        if slots.len() >= MAX_CONNECTIONS {
            let idle_before = self.now_ms().saturating_sub(EVICTABLE_AFTER.as_millis() as u64);
            let victim = slots
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.waiting_since_ms.load(Ordering::Relaxed)))
                .filter(|&(_, since)| since != 0 && since <= idle_before)
                .min_by_key(|&(_, since)| since)
                .map(|(i, _)| i)?;
            let victim = slots.swap_remove(victim);
            // Its blocked read returns at once and its thread ends.
            let _ = victim.stream.shutdown(Shutdown::Both);
        }
        let slot = Arc::new(Slot {
            stream: stream.try_clone().ok()?,
            waiting_since_ms: AtomicU64::new(self.now_ms()),
        });
        slots.push(slot.clone());
        Some(slot)
    }

    fn handle_connection(&self, stream: TcpStream, peer: SocketAddr, slot: &Slot) {
        let Ok(write_half) = stream.try_clone() else { return };
        let _ = write_half.set_write_timeout(Some(WRITE_TIMEOUT));
        let _ = stream.set_nodelay(true);
        let mut reader = http::conn(stream);
        let mut writer = write_half;
        for served in 0..MAX_REQUESTS_PER_CONNECTION {
            slot.waiting_since_ms.store(self.now_ms(), Ordering::Relaxed);
            let deadline = Instant::now() + REQUEST_TIMEOUT;
            let req = match http::read_request(&mut reader, &mut writer, deadline, peer, self.limits, || {
                slot.waiting_since_ms.store(0, Ordering::Relaxed)
            }) {
                Ok(Some(r)) => r,
                Ok(None) => return, // closed or timed out between requests
                Err(refusal) => {
                    log::debug!(
                        "{}: refused a request from {peer}: {} {}",
                        self.name,
                        refusal.status,
                        refusal.reason
                    );
                    let resp = Response::text(refusal.status, refusal.reason);
                    let _ = http::write_response(&mut writer, &resp, false, false);
                    close_gracefully(reader.into_inner().into_stream());
                    return;
                }
            };
            let keep_alive = http::wants_keep_alive(&req) && served + 1 < MAX_REQUESTS_PER_CONNECTION;
            let head_only = req.method == "HEAD";
            let resp = match catch_unwind(AssertUnwindSafe(|| (self.handler)(&req))) {
                Ok(r) => r,
                Err(_) => {
                    log::error!("{}: handler panicked on {} {}", self.name, req.method, req.path);
                    Response::text(500, "internal error")
                }
            };
            if http::write_response(&mut writer, &resp, keep_alive, head_only).is_err() || !keep_alive {
                return;
            }
        }
    }
}

/// Stops sending, reads a bounded amount of what the client still sends, then closes, so
/// the client gets our error instead of a connection reset.
fn close_gracefully(stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(DRAIN_TIMEOUT));
    let _ = io::copy(&mut (&stream).take(DRAIN_BYTES), &mut io::sink());
}

/// Raises the accept queue to [`LISTEN_BACKLOG`]. Calling listen(2) again on a listening
/// socket only changes its backlog; std has no API for it, and a failure just leaves
/// the default in place.
fn deepen_backlog(listener: &TcpListener) {
    if let Err(e) = socket2::SockRef::from(listener).listen(LISTEN_BACKLOG) {
        log::warn!("could not raise the listen backlog: {e}");
    }
}

/// Over the cap with every connection busy: answer 503 without blocking the accept loop.
fn refuse_busy(stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let resp = Response::text(503, "busy, try again").with_header("Retry-After", "1");
    let _ = http::write_response(&mut &stream, &resp, false, false);
}
