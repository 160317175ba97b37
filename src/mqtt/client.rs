//! One connection to the broker: connect (TCP, optionally TLS) and the CONNECT/CONNACK
//! handshake within named timeouts, then publishing, subscribing, keep-alive pings and
//! reading whatever the broker sends. Used by one thread (the bridge's); no reconnection
//! here: any error ends the connection and the bridge makes a new one.
//!
//! Every wait is bounded: a broker that accepts TCP and never answers costs the bridge
//! [`HANDSHAKE_TIMEOUT`]; one that stops answering later costs at most a ping interval
//! plus [`PING_TIMEOUT`]; a write that the broker does not read fails after
//! [`WRITE_TIMEOUT`].

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use super::codec::{self, Connect, DecodeError, Packet, MAX_INCOMING_BYTES};
use crate::util::ratelog::RateLog;

/// Looking up the broker's name and connecting to it. A LAN broker answers in milliseconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// From the TCP connection to CONNACK (with TLS, the handshake too).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// One write to the broker: it reads our few hundred bytes at once unless it hangs.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The keep-alive we ask for: the broker drops us (and publishes the will) after 1.5
/// times this without a packet, so Home Assistant shows "unavailable" within about 45 s
/// of a daemon that hangs; we ping at half of it.
pub const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// A ping unanswered this long means the broker or the path to it is gone.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one read waits for the broker, and so how often the bridge looks at its
/// queue while the broker is quiet: a window change reaches Home Assistant within this
/// (well under the promised second), a command at once; four wakeups a second cost the
/// idle daemon about 0.05 % of a core (BENCHMARKS.md).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Bytes read at a time; our incoming packets are a few dozen bytes.
const READ_CHUNK: usize = 1024;

/// Whoever can publish to our command topics can send large messages in a loop.
static OVERSIZED: RateLog = RateLog::new();

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A connection to the broker. Dropping it closes the socket at once, without
/// DISCONNECT: a connection we give up on is one whose will Home Assistant should see,
/// and the bridge reconnects within seconds.
pub struct Client {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    /// Bytes of an oversized packet still to be thrown away as they arrive.
    skip: usize,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    /// Packets that arrived with the CONNACK, for the first [`Client::read`].
    early: Vec<Packet>,
}

impl Client {
    /// Connects and completes the MQTT handshake, or says why not in words for the log.
    pub fn connect(host: &str, port: u16, tls: bool, hello: &Connect) -> Result<Client, String> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let socket = crate::system::outbound::connect(host, port, deadline).map_err(|e| e.to_string())?;
        socket
            .set_nodelay(true)
            .and_then(|()| socket.set_write_timeout(Some(WRITE_TIMEOUT)))
            .and_then(|()| socket.set_read_timeout(Some(POLL_INTERVAL)))
            .map_err(|e| format!("socket options: {e}"))?;
        let stream: Box<dyn Stream> = if tls { encrypt(socket, host)? } else { Box::new(socket) };
        let mut client = Client {
            stream,
            buf: Vec::new(),
            skip: 0,
            last_sent: Instant::now(),
            ping_sent: None,
            early: Vec::new(),
        };
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        client.send(&codec::connect(hello)).map_err(|e| format!("sending CONNECT: {e}"))?;
        while Instant::now() < deadline {
            let mut packets = client.read().map_err(|e| format!("waiting for CONNACK: {e}"))?.into_iter();
            match packets.next() {
                Some(Packet::ConnAck { code: 0 }) => {
                    client.early = packets.collect();
                    return Ok(client);
                }
                Some(Packet::ConnAck { code }) => return Err(codec::refusal(code)),
                Some(other) => return Err(format!("expected CONNACK, got {other:?}")),
                None => {}
            }
        }
        Err(format!("no CONNACK within {HANDSHAKE_TIMEOUT:?}"))
    }

    pub fn publish(&mut self, topic: &str, payload: &[u8], retain: bool) -> io::Result<()> {
        self.send(&codec::publish(topic, payload, retain))
    }

    pub fn subscribe(&mut self, filters: &[String]) -> io::Result<()> {
        // The connection's one SUBSCRIBE: any packet id but 0 will do.
        self.send(&codec::subscribe(1, filters))
    }

    /// Pings when the connection has been quiet for half the keep-alive; fails when a
    /// ping went unanswered for [`PING_TIMEOUT`].
    pub fn keep_alive(&mut self) -> io::Result<()> {
        if let Some(sent) = self.ping_sent {
            if sent.elapsed() > PING_TIMEOUT {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the broker did not answer a ping"));
            }
        } else if self.last_sent.elapsed() >= KEEP_ALIVE / 2 {
            self.send(&codec::PINGREQ)?;
            self.ping_sent = Some(Instant::now());
        }
        Ok(())
    }

    /// Waits up to [`POLL_INTERVAL`] for bytes and returns the packets they complete.
    /// A QoS 1 message is acknowledged here; an oversized packet is skipped with a warning.
    pub fn read(&mut self) -> io::Result<Vec<Packet>> {
        if !self.early.is_empty() {
            return Ok(std::mem::take(&mut self.early));
        }
        let mut chunk = [0u8; READ_CHUNK];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the broker closed the connection"))
            }
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let mut packets = Vec::new();
        loop {
            if self.skip > 0 {
                let n = self.skip.min(self.buf.len());
                self.buf.drain(..n);
                self.skip -= n;
                if self.skip > 0 {
                    break;
                }
            }
            match codec::decode(&self.buf) {
                Ok(Some((packet, n))) => {
                    self.buf.drain(..n);
                    self.ping_sent = None; // any packet shows the broker is there
                    if let Packet::Publish { qos1_id: Some(id), .. } = &packet {
                        self.send(&codec::puback(*id))?;
                    }
                    packets.push(packet);
                }
                Ok(None) => break,
                Err(DecodeError::TooLarge { total }) => {
                    OVERSIZED.warn(format_args!(
                        "MQTT: skipped a packet of {total} bytes (more than {MAX_INCOMING_BYTES})"
                    ));
                    self.skip = total;
                }
                Err(DecodeError::Malformed(why)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("malformed packet: {why}"),
                    ))
                }
            }
        }
        Ok(packets)
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()?;
        self.last_sent = Instant::now();
        Ok(())
    }
}

/// MQTT over TLS with the client settings of [`crate::system::tls`], so the broker is
/// verified exactly as Twilio is: the handshake within [`HANDSHAKE_TIMEOUT`], then the
/// socket's read timeout back at [`POLL_INTERVAL`].
fn encrypt(mut socket: TcpStream, host: &str) -> Result<Box<dyn Stream>, String> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("TLS: {host}: {e}"))?;
    let mut conn = rustls::ClientConnection::new(crate::system::tls::client_config()?, name)
        .map_err(|e| format!("TLS: {e}"))?;
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let set = |s: &TcpStream, t| s.set_read_timeout(Some(t)).map_err(|e| format!("socket options: {e}"));
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no TLS handshake within {HANDSHAKE_TIMEOUT:?}"));
        }
        set(&socket, left)?;
        conn.complete_io(&mut socket).map_err(|e| format!("TLS handshake with {host}: {e}"))?;
    }
    set(&socket, POLL_INTERVAL)?;
    Ok(Box::new(rustls::StreamOwned::new(conn, socket)))
}

#[cfg(test)]
mod tests {
    //! Against a scripted broker on loopback; the real one is in tests/it/mqtt.rs.
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn hello() -> Connect<'static> {
        Connect {
            client_id: "t",
            keep_alive_secs: 30,
            username: None,
            password: None,
            will_topic: "t/availability",
            will_payload: b"offline",
        }
    }

    /// A broker that reads our CONNECT, sends `script` a chunk at a time (a poll apart),
    /// then returns what we sent after.
    fn scripted(script: Vec<Vec<u8>>) -> (u16, thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let broker = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut connect = [0u8; 64];
            let n = s.read(&mut connect).unwrap();
            assert_eq!(connect[0], 0x10, "CONNECT first: {:?}", &connect[..n]);
            for chunk in script {
                s.write_all(&chunk).unwrap();
                thread::sleep(POLL_INTERVAL);
            }
            let mut after = vec![0u8; 64];
            let n = s.read(&mut after).unwrap_or(0);
            after.truncate(n);
            after
        });
        (port, broker)
    }

    #[test]
    fn acknowledges_qos1_and_drops_a_broker_that_sends_garbage() {
        // CONNACK with a QoS 1 publish in the same segment, then a CONNECT: nothing a
        // broker sends.
        let mut first = vec![0x20, 2, 0, 0];
        first.extend_from_slice(&[0x32, 7, 0, 1, b't', 0x12, 0x34, b'O', b'N']);
        let (port, broker) = scripted(vec![first, vec![0x10, 0]]);
        let mut c = Client::connect("127.0.0.1", port, false, &hello()).unwrap();
        let mut seen = Vec::new();
        let err = loop {
            match c.read() {
                Ok(p) => seen.extend(p),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(matches!(&seen[..], [Packet::Publish { qos1_id: Some(0x1234), .. }]), "{seen:?}");
        assert_eq!(broker.join().unwrap(), codec::puback(0x1234));
    }

    #[test]
    fn a_refused_connect_says_why() {
        let (port, _broker) = scripted(vec![vec![0x20, 2, 0, 4]]);
        let e = Client::connect("127.0.0.1", port, false, &hello()).err().unwrap();
        assert!(e.contains("bad user name or password"), "{e}");
        let (port, _broker) = scripted(vec![vec![0xD0, 0]]);
        let e = Client::connect("127.0.0.1", port, false, &hello()).err().unwrap();
        assert!(e.contains("expected CONNACK"), "{e}");
    }

    #[test]
    fn pings_when_quiet_and_gives_up_on_an_unanswered_ping() {
        let (port, broker) = scripted(vec![vec![0x20, 2, 0, 0]]);
        let mut c = Client::connect("127.0.0.1", port, false, &hello()).unwrap();
        c.keep_alive().unwrap();
        assert!(c.ping_sent.is_none(), "no ping on a fresh connection");
        c.last_sent = Instant::now().checked_sub(KEEP_ALIVE / 2).unwrap();
        c.keep_alive().unwrap();
        assert_eq!(broker.join().unwrap(), codec::PINGREQ);
        c.ping_sent = Instant::now().checked_sub(PING_TIMEOUT + Duration::from_secs(1));
        assert_eq!(c.keep_alive().unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
