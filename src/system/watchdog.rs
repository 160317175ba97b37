//! systemd's readiness and watchdog protocol (`Type=notify`, `WatchdogSec=`): `READY=1`
//! once the listeners are bound, then `WATCHDOG=1` at a third of the watchdog interval,
//! but only while a self-check passes. A wedged daemon (listeners that no longer answer,
//! a state lock that is never released, a stopped process) stops pinging and systemd
//! restarts it.
//!
//! The protocol is one datagram per message to the `AF_UNIX` socket named by
//! `$NOTIFY_SOCKET` (a path, or an abstract name written with a leading `@`): a few lines
//! on std's `UnixDatagram`, so no crate and no unsafe code. Without `$NOTIFY_SOCKET` (not
//! under systemd, or `Type=simple`) nothing is sent and no thread is started.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::ratelog::RateLog;

/// A self-check: `Err` names what failed.
pub type Check = Box<dyn Fn() -> Result<(), String> + Send>;

/// Pings per watchdog interval. systemd suggests two; three leave room for one slow
/// self-check (a probe waits up to a third of the interval) without a restart.
const PINGS_PER_INTERVAL: u32 = 3;

/// Where systemd listens for our notifications.
pub struct SdNotify {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl SdNotify {
    /// Opens the socket once, so a daemon that has run out of descriptors can still ping.
    pub fn new(name: &str) -> io::Result<SdNotify> {
        Ok(SdNotify { socket: UnixDatagram::unbound()?, addr: notify_addr(name)? })
    }

    /// Sends one message (`READY=1`, `WATCHDOG=1`, …) as one datagram.
    pub fn send(&self, message: &str) -> io::Result<()> {
        self.socket.send_to_addr(message.as_bytes(), &self.addr).map(drop)
    }
}

fn bad_name(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.to_string())
}

/// `@name` is a Linux abstract socket (the `@` stands for the leading NUL byte); anything
/// else is a filesystem path.
fn notify_addr(name: &str) -> io::Result<SocketAddr> {
    match name.strip_prefix('@') {
        Some(abstract_name) => abstract_addr(abstract_name),
        None if name.starts_with('/') => SocketAddr::from_pathname(name),
        None => Err(bad_name("NOTIFY_SOCKET is neither an absolute path nor an @abstract name")),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &str) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_: &str) -> io::Result<SocketAddr> {
    Err(bad_name("abstract sockets exist only on Linux"))
}

/// The watchdog interval systemd asked for (`$WATCHDOG_USEC`), if it is meant for us
/// (`$WATCHDOG_PID` unset or our pid).
pub fn interval_from_env() -> Option<Duration> {
    let ours = std::env::var_os("WATCHDOG_PID")
        .map_or(true, |pid| pid.to_str().and_then(|p| p.parse().ok()) == Some(std::process::id()));
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (ours && usec > 0).then(|| Duration::from_micros(usec))
}

/// How long one probe of the self-check may take: a third of the watchdog interval (so
/// a stuck probe costs one ping, not the restart), at most 5 s (far beyond an answer).
pub fn probe_timeout(interval: Duration) -> Duration {
    (interval / PINGS_PER_INTERVAL).min(Duration::from_secs(5))
}

/// Tells systemd we are ready and, when it asked for a watchdog, starts the thread that
/// pings while `check` passes. Not under systemd (`$NOTIFY_SOCKET` unset, or not
/// `Type=notify`): does nothing.
pub fn start(check: Check) -> io::Result<()> {
    let Some(name) = std::env::var_os("NOTIFY_SOCKET") else { return Ok(()) };
    let name = name.into_string().map_err(|_| bad_name("NOTIFY_SOCKET is not UTF-8"))?;
    let notify = SdNotify::new(&name)?;
    notify.send("READY=1")?;
    let Some(interval) = interval_from_env() else {
        log::info!("ready (systemd notified; no watchdog requested)");
        return Ok(());
    };
    let every = interval / PINGS_PER_INTERVAL;
    log::info!("ready; pinging the systemd watchdog every {every:?} while the self-check passes");
    thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || ping_while_healthy(&notify, &check, every))?;
    Ok(())
}

/// Forever: run the check, ping if it passed, wait for the next turn. A check that hangs
/// (a lock never released) hangs this thread too, which is the point: no more pings.
fn ping_while_healthy(notify: &SdNotify, check: &Check, every: Duration) -> ! {
    let failures = RateLog::new();
    loop {
        let started = Instant::now();
        match check() {
            Ok(()) => {
                if let Err(e) = notify.send("WATCHDOG=1") {
                    failures.warn(format_args!("watchdog: cannot notify systemd: {e}"));
                }
            }
            Err(e) => failures.error(format_args!("self-check failed, not pinging the watchdog: {e}")),
        }
        thread::sleep(every.saturating_sub(started.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_socket_and_an_abstract_one() {
        let dir = std::env::temp_dir().join(format!("intercom-sdnotify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        SdNotify::new(path.to_str().unwrap()).unwrap().send("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_dir_all(&dir).unwrap();

        let name = format!("intercom-sdnotify-test-{}", std::process::id());
        let server = UnixDatagram::bind_addr(&abstract_addr(&name).unwrap()).unwrap();
        SdNotify::new(&format!("@{name}")).unwrap().send("WATCHDOG=1").unwrap();
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[test]
    fn odd_socket_names_are_refused() {
        assert!(SdNotify::new("relative/path").is_err());
        assert!(SdNotify::new("").is_err());
    }

    #[test]
    fn a_failing_check_sends_no_ping() {
        let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let h = healthy.clone();
        let check: Check = Box::new(move || {
            if h.load(std::sync::atomic::Ordering::Relaxed) {
                Ok(())
            } else {
                Err("wedged".into())
            }
        });
        let dir = std::env::temp_dir().join(format!("intercom-sdnotify-loop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let server = UnixDatagram::bind(dir.join("n")).unwrap();
        server.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let notify = SdNotify::new(dir.join("n").to_str().unwrap()).unwrap();
        thread::spawn(move || ping_while_healthy(&notify, &check, Duration::from_millis(20)));
        let mut buf = [0u8; 64];
        assert!(server.recv(&mut buf).is_err(), "no ping while the check fails");
        healthy.store(true, std::sync::atomic::Ordering::Relaxed);
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn probes_wait_a_third_of_the_interval_at_most_five_seconds() {
        assert_eq!(probe_timeout(Duration::from_secs(20)), Duration::from_secs(5));
        assert_eq!(probe_timeout(Duration::from_millis(900)), Duration::from_millis(300));
    }
}
