//! systemd's notify protocol from the real binary, without systemd: the test binds its
//! own `NOTIFY_SOCKET` and reads what the server sends. `READY=1` once the listeners are
//! bound, `WATCHDOG=1` while the self-check passes, and no ping while a listener cannot
//! take connections.

use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::harness::*;

/// A short watchdog interval, so pings come every 200 ms.
const WATCHDOG_USEC: &str = "600000";
/// Descriptors the wedged server may hold: its listeners, files and a few connections.
const FD_LIMIT: usize = 64;

fn notify_socket(dir: &TempDir) -> (UnixDatagram, String) {
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    (socket, path.to_str().unwrap().to_string())
}

/// Messages received within `wait`.
fn messages(socket: &UnixDatagram, wait: Duration) -> Vec<String> {
    messages_until(socket, wait, |_| false)
}

/// Messages received until `done` holds for them, or `wait` passes.
fn messages_until(socket: &UnixDatagram, wait: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let end = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while Instant::now() < end && !done(&out) {
        if let Ok(n) = socket.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    out
}

fn pings(got: &[String]) -> usize {
    got.iter().filter(|m| *m == "WATCHDOG=1").count()
}

#[test]
fn ready_once_listening_then_watchdog_pings() {
    let dir = TempDir::new("sdnotify");
    let (socket, path) = notify_socket(&dir);
    let s = Server::start_in(
        dir.path(),
        base_config(),
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", WATCHDOG_USEC)],
    );
    let got = messages_until(&socket, Duration::from_millis(1500), |got| pings(got) >= 3);
    assert_eq!(got.first().map(String::as_str), Some("READY=1"), "{got:?}");
    assert!(pings(&got) >= 3, "pings every 200 ms: {got:?}");
    assert!(s.ring(INTERCOM).body.contains("<Dial"));
}

#[test]
fn an_abstract_notify_socket_works() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("intercom-it-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let dir = TempDir::new("sdnotify-abstract");
    let _s = Server::start_in(dir.path(), base_config(), &[("NOTIFY_SOCKET", &format!("@{name}"))]);
    let got = messages(&socket, Duration::from_millis(500));
    assert_eq!(got, ["READY=1"], "READY=1 and no watchdog when none was asked for");
}

#[test]
fn no_watchdog_ping_while_a_listener_cannot_take_connections() {
    let dir = TempDir::new("sdnotify-wedge");
    let (socket, path) = notify_socket(&dir);
    let limit = format!("ulimit -n {FD_LIMIT} && exec \"$0\" \"$@\"");
    let s = Server::start_wrapped(
        dir.path(),
        base_config(),
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", WATCHDOG_USEC)],
        &["sh", "-c", &limit],
    );
    let before = messages_until(&socket, Duration::from_millis(800), |got| pings(got) > 0);
    assert!(before.iter().any(|m| m == "WATCHDOG=1"), "{before:?}");

    // Use up the server's descriptors with idle connections: its accept fails, so the
    // control listener takes no connection (the kernel still completes handshakes).
    let held: Vec<TcpStream> =
        (0..FD_LIMIT + 16).filter_map(|_| TcpStream::connect(s.control).ok()).collect();
    assert!(s.wait_for_log("accept failed"), "{}", s.logs());
    let _ = messages(&socket, Duration::from_millis(300)); // pings already under way
    let wedged = messages(&socket, Duration::from_millis(1500));
    assert!(!wedged.iter().any(|m| m == "WATCHDOG=1"), "pinged while wedged: {wedged:?}");
    assert!(s.logs().contains("self-check failed"), "{}", s.logs());

    // Once the connections are gone the listener works again, and so do the pings.
    drop(held);
    let after = messages_until(&socket, Duration::from_secs(3), |got| pings(got) > 0);
    assert!(after.iter().any(|m| m == "WATCHDOG=1"), "{after:?}");
}

/// A state disk that hangs at start: the listeners answer (calls are forwarded), so
/// systemd hears READY=1 and the pings go on while the stores wait for the disk; a
/// restart would only hang on the same files.
#[test]
fn ready_and_pings_while_the_state_disk_hangs_at_start() {
    let dir = TempDir::new("sdnotify-hang");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let fifo = state.join("state.json");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (socket, path) = notify_socket(&dir);
    let s = Server::start_listening(
        dir.path(),
        base_config(),
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", WATCHDOG_USEC)],
    );
    let got = messages_until(&socket, Duration::from_millis(1500), |got| pings(got) >= 3);
    assert_eq!(got.first().map(String::as_str), Some("READY=1"), "{got:?}");
    assert!(pings(&got) >= 3, "pings every 200 ms while the disk hangs: {got:?}");
    assert!(s.ring(INTERCOM).body.contains("<Dial"), "and calls are forwarded");
    assert!(!s.logs().contains("state loaded"), "the state really was not loaded: {}", s.logs());
}
