//! Outbound HTTPS through the real binary: a notification to a local TLS server is sent
//! only when the server's CA is in the trusted bundle (`SSL_CERT_FILE`, as src/system/tls.rs
//! reads it), refused otherwise, and a missing bundle is said in the log at start while
//! calls are still answered. The certificates are test fixtures (tests/fixtures/tls).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

const LEAF: &str = include_str!("../fixtures/tls/localhost.pem");
const LEAF_KEY: &str = include_str!("../fixtures/tls/localhost.key");
/// Connections one fake accepts before its thread ends (the retries of one notification).
const MAX_CONNECTIONS: usize = 8;
const WAIT: Duration = Duration::from_secs(15);

fn fixture(name: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", "tls", name].iter().collect();
    p.to_string_lossy().into_owned()
}

/// What a TLS fake saw: request heads after good handshakes, and failed handshakes.
#[derive(Default)]
struct Seen {
    requests: Vec<String>,
    failed_handshakes: Vec<String>,
}

/// A TLS server on 127.0.0.1 with the fixture certificate (CA: fixtures/tls/ca.pem),
/// answering each request 200.
struct TlsFake {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl TlsFake {
    fn start() -> TlsFake {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = vec![CertificateDer::from_pem_slice(LEAF.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(LEAF_KEY.as_bytes()).unwrap();
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let keep = seen.clone();
        thread::spawn(move || {
            for stream in listener.incoming().take(MAX_CONNECTIONS).flatten() {
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut tls =
                    rustls::StreamOwned::new(rustls::ServerConnection::new(config.clone()).unwrap(), stream);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                let outcome = loop {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        Ok(_) => break Err("closed".to_string()),
                        Err(e) => break Err(e.to_string()),
                    }
                    if head.ends_with(b"\r\n\r\n") || head.len() > 8192 {
                        break Ok(String::from_utf8_lossy(&head).into_owned());
                    }
                };
                match outcome {
                    Ok(h) => {
                        let _ = tls
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        tls.conn.send_close_notify();
                        let _ = tls.flush();
                        keep.lock().unwrap().requests.push(h);
                    }
                    Err(e) => keep.lock().unwrap().failed_handshakes.push(e),
                }
            }
        });
        TlsFake { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until `done` holds for what was seen, or `WAIT` passes.
    fn wait(&self, done: impl Fn(&Seen) -> bool) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if done(&self.seen.lock().unwrap()) {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

fn start(hook: &str, ca_file: &str) -> (TempDir, Server) {
    let mut c = base_config();
    c["notify"] = json!({"webhook_url": hook, "events": ["window_opened"]});
    let dir = TempDir::new("tls");
    let s = Server::start_in(dir.path(), c, &[("SSL_CERT_FILE", ca_file)]);
    (dir, s)
}

#[test]
fn https_notifications_go_out_verified_against_the_trusted_bundle() {
    let fake = TlsFake::start();
    let (_dir, s) = start(&fake.url("/hook"), &fixture("ca.pem"));
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5}"#).status, 200);
    assert!(fake.wait(|seen| !seen.requests.is_empty()), "nothing arrived; log:\n{}", s.logs());
    let seen = fake.seen.lock().unwrap();
    assert!(seen.requests[0].starts_with("POST /hook HTTP/1.1\r\n"), "{}", seen.requests[0]);
    assert!(seen.failed_handshakes.is_empty(), "{:?}", seen.failed_handshakes);
}

#[test]
fn https_to_a_server_from_another_ca_is_refused() {
    let fake = TlsFake::start();
    let (_dir, s) = start(&fake.url("/hook"), &fixture("other-ca.pem"));
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5}"#).status, 200);
    // The client gives up during the handshake: the server never gets a request.
    assert!(fake.wait(|seen| !seen.failed_handshakes.is_empty()), "log:\n{}", s.logs());
    // The fake serves one connection at a time, so once the retry's connection (a second
    // after the first) is seen, a request between the two would have been too.
    assert!(fake.wait(|seen| seen.failed_handshakes.len() + seen.requests.len() >= 2), "log:\n{}", s.logs());
    let seen = fake.seen.lock().unwrap();
    assert!(seen.requests.is_empty(), "sent to an unverified server: {:?}", seen.requests);
}

#[test]
fn without_a_bundle_the_log_says_what_to_install_and_calls_are_still_answered() {
    let fake = TlsFake::start();
    let (_dir, s) = start(&fake.url("/hook"), "/nonexistent/ca-certificates.crt");
    assert!(s.wait_for_log("HTTPS cannot verify anyone"), "{}", s.logs());
    let logs = s.logs();
    assert!(
        logs.contains("/nonexistent/ca-certificates.crt") && logs.contains("ca-bundle (OpenWrt)"),
        "{logs}"
    );
    assert!(s.ring("+15550000000").status < 500, "the webhook still answers");
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5}"#).status, 200);
    assert!(fake.wait(|seen| !seen.failed_handshakes.is_empty()), "log:\n{}", s.logs());
    assert!(fake.seen.lock().unwrap().requests.is_empty());
}
