//! A flood of idle and trickling connections on both listeners must not keep a genuine
//! webhook from being answered within a second. Bounded in time and count; loopback only.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::*;

/// Connections a flooder opens per listener: above each listener's cap
/// (`web::webhook::MAX_CONNECTIONS`, `web::control::MAX_CONNECTIONS`).
const FLOOD_CONNECTIONS: usize = 1200;
/// Tricklers per listener: they send one byte of a request head every 200 ms.
const TRICKLERS: usize = 20;
/// Genuine webhooks sent while the flood runs, one every 100 ms.
const GENUINE_CALLS: usize = 50;
const ANSWER_BOUND: Duration = Duration::from_secs(1);
/// How long attacking connections are left to age before measuring: past the second
/// after which the server may evict them (`http::connections::EVICTABLE_AFTER`), with a
/// margin. Their age is what is waited for; nothing else would show it.
const AGED: Duration = Duration::from_millis(1500);

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
    // Before measuring, let the two floods open FLOOD_CONNECTIONS between them: past the
    // control listener's cap; the webhook's flood passes its own while the calls run.
    let warmup = Instant::now();
    while opened.load(Ordering::Relaxed) < FLOOD_CONNECTIONS && warmup.elapsed() < Duration::from_secs(10) {
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

/// What one attacking connection does each tick.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Attack {
    /// Connects and sends nothing.
    Idle,
    /// Sends a head that never ends, one byte a tick.
    SlowHead,
    /// Sends a complete head with `Content-Length`, then the body one byte a tick.
    SlowBody,
    /// Like `SlowBody` with a body short enough to complete within the request timeout,
    /// then the next request at once, on the same connection, for as long as it is allowed.
    KeepAliveTrickle,
    /// Sends forged requests in batches, without waiting for the answers.
    Pipeline,
}

/// One client host's attack on the webhook listener: 1,000 connections in all, more
/// than half of them (slow bodies and keep-alive tricklers) past their head at any time,
/// which is what used to make a connection unevictable.
const ATTACKERS: &[(Attack, usize)] = &[
    (Attack::Idle, 150),
    (Attack::SlowHead, 150),
    (Attack::SlowBody, 350),
    (Attack::KeepAliveTrickle, 300),
    (Attack::Pipeline, 50),
];
/// Tricklers send one byte per tick per connection.
const TICK: Duration = Duration::from_millis(50);
/// A keep-alive trickler's body: 60 bytes at one per 50 ms completes in 3 s, inside the
/// server's request timeout (`http::connections::REQUEST_TIMEOUT`, 5 s), so each request
/// is answered and the next one follows.
const TRICKLED_BODY: usize = 60;
const SLOW_BODY: usize = 10_000;
const PIPELINE_BATCH: usize = 10;
/// Genuine signed calls measured while the attack runs, spaced out over several of the
/// tricklers' request cycles.
const GENUINE_SIGNED_CALLS: usize = 12;
const GENUINE_SPACING: Duration = Duration::from_millis(600);

/// The bytes of one request of an attack, and how many of them may go out now, given
/// how many were sent already.
fn next_bytes(kind: Attack, sent: usize) -> (Vec<u8>, usize) {
    let head = |len: usize| {
        format!(
            "POST /voice HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             X-Twilio-Signature: forged\r\nContent-Length: {len}\r\n\r\n"
        )
        .into_bytes()
    };
    let with_body = |len| {
        let mut r = head(len);
        let head_len = r.len();
        r.resize(head_len + len, b'a');
        let now = if sent < head_len { head_len - sent } else { 1 };
        (r, now)
    };
    match kind {
        Attack::Idle => (Vec::new(), 0),
        Attack::SlowHead => {
            let mut h = b"POST /voice HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
            h.resize(8000, b'a');
            (h, 1)
        }
        Attack::SlowBody => with_body(SLOW_BODY),
        Attack::KeepAliveTrickle => with_body(TRICKLED_BODY),
        Attack::Pipeline => {
            let one = [head(TRICKLED_BODY), vec![b'a'; TRICKLED_BODY]].concat();
            let batch = one.repeat(PIPELINE_BATCH);
            let n = batch.len();
            (batch, n)
        }
    }
}

struct AttackConn {
    stream: Option<TcpStream>,
    sent: usize,
}

/// Runs `count` connections of one kind until `stop`; returns how many answers they read.
fn attack(
    addr: SocketAddr,
    kind: Attack,
    count: usize,
    stop: Arc<AtomicBool>,
    connected: Arc<AtomicUsize>,
) -> thread::JoinHandle<usize> {
    use std::io::{ErrorKind, Read};
    thread::spawn(move || {
        let mut conns: Vec<AttackConn> = (0..count).map(|_| AttackConn { stream: None, sent: 0 }).collect();
        let mut answers = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            let tick = Instant::now();
            for c in &mut conns {
                let Some(s) = &mut c.stream else {
                    // Reconnect at most once a tick: a real attacker would not do better
                    // than the server's accept rate anyway.
                    if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                        s.set_nonblocking(true).unwrap();
                        connected.fetch_add(1, Ordering::Relaxed);
                        *c = AttackConn { stream: Some(s), sent: 0 };
                    }
                    continue;
                };
                let mut alive = true;
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => {
                            alive = false;
                            break;
                        }
                        Ok(n) => answers += buf[..n].windows(9).filter(|w| w == b"HTTP/1.1 ").count(),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            alive = false;
                            break;
                        }
                    }
                }
                let (bytes, now) = next_bytes(kind, c.sent);
                if alive && now > 0 && c.sent < bytes.len() {
                    let end = (c.sent + now).min(bytes.len());
                    match s.write(&bytes[c.sent..end]) {
                        Ok(n) => c.sent += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => alive = false,
                    }
                }
                if c.sent == bytes.len() && matches!(kind, Attack::KeepAliveTrickle | Attack::Pipeline) {
                    c.sent = 0; // the next request, at once
                }
                if !alive {
                    c.stream = None;
                }
            }
            thread::sleep(TICK.saturating_sub(tick.elapsed()));
        }
        answers
    })
}

#[test]
fn slow_bodies_keep_alive_tricklers_and_pipelining_do_not_delay_genuine_signed_calls() {
    let s = Server::start(signed_config());
    let stop = Arc::new(AtomicBool::new(false));
    let connected = Arc::new(AtomicUsize::new(0));
    let total: usize = ATTACKERS.iter().map(|(_, n)| n).sum();
    let attackers: Vec<_> = ATTACKERS
        .iter()
        .map(|&(kind, n)| (kind, attack(s.webhook, kind, n, stop.clone(), connected.clone())))
        .collect();
    // All connections open, and the slow bodies' heads in, before measuring.
    let warmup = Instant::now();
    while connected.load(Ordering::Relaxed) < total && warmup.elapsed() < Duration::from_secs(15) {
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(AGED);

    let signature = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), CALL);
    let body = form_body(CALL);
    let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("X-Twilio-Signature", &signature)];
    let mut latencies = Vec::new();
    for _ in 0..GENUINE_SIGNED_CALLS {
        let t = Instant::now();
        let r = request(s.webhook, "POST", "/voice", &headers, body.as_bytes());
        let took = t.elapsed();
        assert_eq!(r.status, 200, "a genuine call got {} after {took:?}: {}", r.status, r.body);
        assert!(r.body.contains("<Dial"), "{}", r.body);
        latencies.push(took);
        thread::sleep(GENUINE_SPACING);
    }
    stop.store(true, Ordering::Relaxed);
    let answered: Vec<_> = attackers.into_iter().map(|(kind, t)| (kind, t.join().unwrap())).collect();
    eprintln!(
        "attack: {} connections made ({total} at once), answers read {answered:?}; genuine signed calls {latencies:?}",
        connected.load(Ordering::Relaxed)
    );
    for (i, took) in latencies.iter().enumerate() {
        assert!(*took < ANSWER_BOUND, "genuine call {i} took {took:?}: {latencies:?}");
    }
    // The tricklers really completed requests on kept-alive connections, and the
    // pipeline was answered: the attack ran as described, it was not just cut off.
    let answers = |k| answered.iter().find(|(kind, _)| *kind == k).unwrap().1;
    assert!(answers(Attack::KeepAliveTrickle) > 0 && answers(Attack::Pipeline) > 0, "{answered:?}");
    assert!(!s.logs().contains(" with 503"), "no 503 at all:\n{}", s.logs());
}

/// A connection still sending its body is waiting, not busy: at the cap it is evicted
/// for a genuine request. (Counted as busy once its head had arrived, 600 slow bodies
/// used to hold every slot and genuine requests got 503.)
#[test]
fn slow_bodies_beyond_the_cap_are_evicted_for_genuine_requests() {
    // Over the control listener's cap (`web::control::MAX_CONNECTIONS`), and over 512, the
    // cap both listeners had when slow bodies held every slot.
    const SLOW_BODIES: usize = 600;
    let s = Server::start(base_config());
    let head = "POST /api/open HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{";
    let held: Vec<TcpStream> = (0..SLOW_BODIES)
        .filter_map(|_| {
            let mut c = TcpStream::connect_timeout(&s.control, Duration::from_secs(1)).ok()?;
            c.write_all(head.as_bytes()).ok()?;
            Some(c)
        })
        .collect();
    assert!(held.len() > 512, "{} connections", held.len());
    // Old enough to be evicted, and well inside the time they have to send their bodies
    // (`http::connections::REQUEST_TIMEOUT`, 5 s).
    thread::sleep(AGED);
    for _ in 0..5 {
        let t = Instant::now();
        let r = s.api("GET", "/api/status", "");
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(t.elapsed() < ANSWER_BOUND, "{:?}", t.elapsed());
    }
}

/// However well a keep-alive client behaves, its connection ends after its configured
/// lifetime (`limits.connection_lifetime`, 30 s unless set; shortened here so the test
/// takes seconds): the request under way is answered with `Connection: close` and no
/// other starts.
#[test]
fn a_keep_alive_connection_has_an_absolute_lifetime() {
    use std::io::{BufRead, BufReader, Read};
    const LIFETIME: Duration = Duration::from_secs(2);
    /// Several requests within the lifetime, so the close is seen soon after it passes.
    const INTERVAL: Duration = Duration::from_millis(250);
    let mut config = base_config();
    config["limits"] = serde_json::json!({"connection_lifetime": format!("{}s", LIFETIME.as_secs())});
    let s = Server::start(config);
    let c = TcpStream::connect(s.webhook).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(c.try_clone().unwrap());
    let mut writer = c;
    let start = Instant::now();
    let closed_at = loop {
        assert!(start.elapsed() < LIFETIME + Duration::from_secs(10), "never closed");
        writer.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            head.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut body = [0u8; 3];
        reader.read_exact(&mut body).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        if head.contains("Connection: close") {
            break start.elapsed();
        }
        thread::sleep(INTERVAL);
    };
    assert!(closed_at >= LIFETIME && closed_at < LIFETIME + Duration::from_secs(5), "{closed_at:?}");
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).unwrap(), 0, "the server closed it");
}
