//! A flood of idle and trickling connections on both listeners must not keep a genuine
//! webhook from being answered within a second. Bounded in time and count; loopback only.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::*;

/// Connections a flooder opens per listener (well above the server's cap of 512).
const FLOOD_CONNECTIONS: usize = 1200;
/// Tricklers per listener: they send one byte of a request head every 200 ms.
const TRICKLERS: usize = 20;
/// Genuine webhooks sent while the flood runs, one every 100 ms.
const GENUINE_CALLS: usize = 50;
const ANSWER_BOUND: Duration = Duration::from_secs(1);

fn flood(addr: SocketAddr, stop: Arc<AtomicBool>, opened: Arc<AtomicUsize>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut held = Vec::new();
        while !stop.load(Ordering::Relaxed) && held.len() < FLOOD_CONNECTIONS {
            if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                held.push(c);
                opened.fetch_add(1, Ordering::Relaxed);
            }
            thread::sleep(Duration::from_millis(5));
        }
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(20));
        }
    })
}

fn trickle(addr: SocketAddr, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let head = b"POST /voice HTTP/1.1\r\nHost: x\r\nX-Padding: ";
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { continue };
            for i in 0.. {
                if stop.load(Ordering::Relaxed) || c.write_all(&[*head.get(i).unwrap_or(&b'a')]).is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(200));
            }
        }
    })
}

#[test]
fn genuine_webhooks_are_answered_within_a_second_under_a_connection_flood() {
    let s = Server::start(base_config());
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for addr in [s.webhook, s.control] {
        threads.push(flood(addr, stop.clone(), opened.clone()));
        for _ in 0..TRICKLERS {
            threads.push(trickle(addr, stop.clone()));
        }
    }
    // Let the flood pass the cap before measuring.
    let warmup = Instant::now();
    while opened.load(Ordering::Relaxed) < 1200 && warmup.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(50));
    }

    let mut latencies = Vec::new();
    let mut control_latencies = Vec::new();
    for _ in 0..GENUINE_CALLS {
        let t = Instant::now();
        let r = s.ring(INTERCOM);
        latencies.push(t.elapsed());
        assert!(r.body.contains("<Dial"), "{}: {}", r.status, r.body);
        let t = Instant::now();
        assert_eq!(s.api("GET", "/api/status", "").status, 200);
        control_latencies.push(t.elapsed());
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    latencies.sort();
    control_latencies.sort();
    let p = |v: &[Duration], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    eprintln!(
        "flood: {} connections opened; webhook p50 {:?} max {:?}; control p50 {:?} max {:?}",
        opened.load(Ordering::Relaxed),
        p(&latencies, 0.5),
        latencies.last().unwrap(),
        p(&control_latencies, 0.5),
        control_latencies.last().unwrap()
    );
    assert!(*latencies.last().unwrap() < ANSWER_BOUND, "{latencies:?}");
    assert!(*control_latencies.last().unwrap() < ANSWER_BOUND, "{control_latencies:?}");
}
