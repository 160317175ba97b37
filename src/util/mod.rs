//! `util/`: small helpers every folder may use, and nothing else of ours: poison-tolerant
//! locks (and locks with a deadline), the process's instance id, text made safe for a log
//! line, time (one type for a point in time, one way to show it), random hex from the
//! OS, the rate-limited log for warnings an attacker can repeat, the drop-oldest queue
//! from threads that must not wait to a worker, a socket with one deadline for all its
//! reads and writes, and whose files we trust (`ownership`: as ssh does, only files root
//! or we own and nobody else can write).
//!
//! Uses: nothing of ours.

pub mod ownership;
pub mod queue;
pub mod ratelog;
pub mod time;

use std::borrow::Borrow;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// Locks a mutex even if a thread panicked while holding it. Every mutex here guards
/// state that changes in single assignments or appends whole lines, so a poisoned lock
/// holds nothing half-written, and one panicking request must not wedge the daemon.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a call waits for a lock that a disk write may hold (the state's, the guest
/// codes'): a write stuck in the kernel (a hanging SD card) must not stop calls. Short,
/// because a call may meet two such locks and then the history's wait
/// ([`crate::store::history::APPEND_WAIT`]) before Twilio's 15 s run out; a healthy write takes
/// milliseconds.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);
/// How often a waiting call tries such a lock again once yielding has not got it: fine
/// enough to add little delay behind a disk write, coarse enough not to burn a core.
const LOCK_POLL: Duration = Duration::from_millis(1);
/// Tries that only yield the CPU first: these locks are normally held for microseconds
/// (a status read), so under load a busy lock is almost always free again at once, and a
/// sleep would add a millisecond to the call for nothing (measured with `make bench`).
const LOCK_YIELDS: u32 = 200;

/// Like [`lock`], but gives up after `wait` (`None`): for callers that would rather
/// fail closed than wait behind a write that hangs.
pub fn lock_within<T>(m: &Mutex<T>, wait: Duration) -> Option<MutexGuard<'_, T>> {
    let deadline = Instant::now() + wait;
    for attempt in 0u32.. {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() >= deadline => return None,
            Err(TryLockError::WouldBlock) if attempt < LOCK_YIELDS => std::thread::yield_now(),
            Err(TryLockError::WouldBlock) => std::thread::sleep(LOCK_POLL),
        }
    }
    None
}

/// Compares secrets (tokens, guest codes) in time that depends only on their lengths, so
/// the time an answer takes says nothing about how close a guess came.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A socket (owned, or shared as `Arc<TcpStream>`) whose every read and write must finish
/// by `deadline`, however the bytes trickle in: each waits at most what is left of it.
pub struct Timed<S> {
    pub stream: S,
    pub deadline: Instant,
}

impl<S: Borrow<TcpStream>> Timed<S> {
    /// The socket, its timeout for the next read or write set to what is left.
    fn within(&self, set: fn(&TcpStream, Option<Duration>) -> io::Result<()>) -> io::Result<&TcpStream> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        set(self.stream.borrow(), Some(left))?;
        Ok(self.stream.borrow())
    }
}

impl<S: Borrow<TcpStream>> Read for Timed<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.within(TcpStream::set_read_timeout)?.read(buf)
    }
}

impl<S: Borrow<TcpStream>> Write for Timed<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.within(TcpStream::set_write_timeout)?.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.borrow().flush()
    }
}

/// Where this machine reaches a listener: loopback when it listens on every address.
pub fn local_address(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port()),
        _ => listen,
    }
}

/// `bytes` random bytes from the OS, as twice as many lowercase hex digits: every secret,
/// id and code we make (hex goes into URLs, cookies, file names and JSON as it is). An
/// error only if the OS has no randomness, and then nothing must be made up instead.
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .map_err(|_| std::io::Error::other("the OS gave no randomness"))?;
    Ok(hex(&buf))
}

/// Bytes as lowercase hex digits.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// This process's instance id: 64 random bits, hex, made on first use (`serve` uses it
/// at start). `/healthz` shows it and `/api/status` (token-protected) reports it, so
/// `intercom doctor` can tell that `public_url` reaches this very process and not a stale
/// tunnel or another server. It reveals nothing: it is random and changes at each start.
pub fn instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        // Without randomness the clock makes a weaker but still per-process id.
        random_hex(8).unwrap_or_else(|_| {
            let nanos = jiff::Timestamp::now().as_nanosecond();
            format!("{:016x}", nanos as u64 ^ u64::from(std::process::id()))
        })
    })
}

/// The response header that carries [`instance_id`] on `/healthz`.
pub const INSTANCE_HEADER: &str = "X-Intercom-Instance";

/// Makes a client-supplied string safe for one log line: no controls, bounded length.
pub fn loggable(s: &str) -> String {
    const MAX_LOGGED_CHARS: usize = 64;
    // Most values (numbers, call ids) are short and clean, and stay as they are.
    if s.len() <= MAX_LOGGED_CHARS && !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let clean: String = s.chars().filter(|c| !c.is_control()).take(MAX_LOGGED_CHARS).collect();
    let cut = if s.chars().count() > MAX_LOGGED_CHARS { "…" } else { "" };
    format!("{clean}{cut}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn random_hex_is_hex_of_the_asked_length_and_differs_each_time() {
        let a = random_hex(16).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{a}");
        assert_ne!(a, random_hex(16).unwrap());
        assert_eq!(hex(&[0, 0xab, 0x7f]), "00ab7f");
    }

    #[test]
    fn local_address_replaces_unspecified() {
        assert_eq!(local_address("0.0.0.0:8081".parse().unwrap()).to_string(), "127.0.0.1:8081");
        assert_eq!(local_address("[::]:8081".parse().unwrap()).to_string(), "[::1]:8081");
        assert_eq!(local_address("192.0.2.5:8081".parse().unwrap()).to_string(), "192.0.2.5:8081");
    }

    #[test]
    fn loggable_strips_controls() {
        assert_eq!(loggable("a\nb\x1b[31m"), "ab[31m");
        assert!(loggable(&"x".repeat(100)).ends_with('…'));
    }

    #[test]
    fn lock_within_gives_up_on_a_held_lock_and_takes_a_free_or_poisoned_one() {
        let m = std::sync::Arc::new(std::sync::Mutex::new(1));
        let held = m.lock().unwrap();
        let started = std::time::Instant::now();
        assert!(lock_within(&m, std::time::Duration::from_millis(50)).is_none());
        assert!(started.elapsed() >= std::time::Duration::from_millis(50));
        drop(held);
        assert_eq!(*lock_within(&m, std::time::Duration::ZERO).unwrap(), 1);
        let poison = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = poison.lock().unwrap();
            panic!("poisons the lock on purpose");
        })
        .join();
        assert_eq!(*lock_within(&m, std::time::Duration::ZERO).unwrap(), 1);
    }
}
