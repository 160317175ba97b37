//! MQTT 3.1.1 packets on the wire (OASIS standard, 2014): the few a client that
//! publishes state and takes commands needs. Pure: bytes in, bytes out, no I/O.
//!
//! Written by hand rather than taken from a crate: the packets below are about 200
//! lines, and the crates considered (see BENCHMARKS.md) bring MQTT 5, QoS 2 and
//! async plumbing we would not use. Every encoder and the decoder are checked against
//! byte vectors worked out from the standard's figures.

/// The longest packet we accept from the broker. We subscribe only to our own command
/// topics and Home Assistant's status topic, whose messages are a word; a larger one is
/// skipped unread rather than buffered (see `client.rs`).
pub const MAX_INCOMING_BYTES: usize = 4096;
/// The standard's limit of the remaining-length field (four 7-bit digits).
const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// A connection's identity and credentials, and the message the broker publishes for
/// us when the connection ends without a DISCONNECT (the last will).
pub struct Connect<'a> {
    pub client_id: &'a str,
    pub keep_alive_secs: u16,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    pub will_topic: &'a str,
    pub will_payload: &'a [u8],
}

/// What the broker sends us: CONNACK's return code (0 is accepted), and SUBACK's granted
/// QoS per filter (0x80 is a refusal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    ConnAck { code: u8 },
    Publish { topic: String, payload: Vec<u8>, retain: bool, qos1_id: Option<u16> },
    PubAck { id: u16 },
    SubAck { id: u16, codes: Vec<u8> },
    PingResp,
}

/// Why bytes are not a packet. One longer than [`MAX_INCOMING_BYTES`] is `TooLarge`: the
/// caller skips its `total` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    TooLarge { total: usize },
    Malformed(&'static str),
}

/// A CONNACK that refuses us (any return code but 0), in words for the log (3.2.2.3).
pub fn refusal(code: u8) -> String {
    let why = match code {
        1 => "the broker does not speak MQTT 3.1.1",
        2 => "the client id was refused",
        3 => "the broker is unavailable",
        4 => "bad user name or password (mqtt.username, INTERCOM_MQTT_PASSWORD)",
        5 => "not authorized (check mqtt.username and its password)",
        _ => "an unknown refusal",
    };
    format!("the broker refused us: {why} (code {code})")
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    // Our strings are bounded far below 64 KiB by the config; a longer one is cut rather
    // than written with a wrong length.
    let s = &s[..s.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// The fixed header (type and flags, remaining length) followed by `body`.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    // Seven bits a byte, least significant first; the top bit says another follows.
    let mut len = body.len().min(MAX_REMAINING_LENGTH);
    while len >= 0x80 {
        out.push((len % 0x80) as u8 | 0x80);
        len /= 0x80;
    }
    out.push(len as u8);
    out.extend_from_slice(body);
    out
}

/// CONNECT with a clean session and a retained QoS 1 will.
pub fn connect(c: &Connect) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.push(4); // protocol level 3.1.1

    // Clean session, will, will QoS 1, will retain; a user name, and a password only with one.
    let password = c.password.filter(|_| c.username.is_some());
    let credentials = (u8::from(c.username.is_some()) << 7) | (u8::from(password.is_some()) << 6);
    body.push(0x02 | 0x04 | (1 << 3) | 0x20 | credentials);
    body.extend_from_slice(&c.keep_alive_secs.to_be_bytes());
    put_str(&mut body, c.client_id.as_bytes());
    put_str(&mut body, c.will_topic.as_bytes());
    put_str(&mut body, c.will_payload);
    for s in [c.username, password].into_iter().flatten() {
        put_str(&mut body, s.as_bytes());
    }
    packet(0x10, &body)
}

/// PUBLISH at QoS 0 (no packet id, no acknowledgement).
pub fn publish(topic: &str, payload: &[u8], retain: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 2);
    put_str(&mut body, topic.as_bytes());
    body.extend_from_slice(payload);
    packet(0x30 | u8::from(retain), &body)
}

pub fn puback(id: u16) -> Vec<u8> {
    packet(0x40, &id.to_be_bytes())
}

/// SUBSCRIBE to each filter with at most QoS 1.
pub fn subscribe(id: u16, filters: &[String]) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    for f in filters {
        put_str(&mut body, f.as_bytes());
        body.push(1);
    }
    packet(0x82, &body)
}

pub const PINGREQ: [u8; 2] = [0xC0, 0x00];

/// The first complete packet in `buf` and its length, or `None` if more bytes are needed.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let (mut len, mut shift, mut at) = (0usize, 0u32, 1usize);
    loop {
        let Some(&b) = buf.get(at) else { return Ok(None) };
        len |= usize::from(b & 0x7F) << shift;
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if at > 4 {
            return Err(DecodeError::Malformed("remaining length longer than 4 bytes"));
        }
    }
    let total = at + len;
    if total > MAX_INCOMING_BYTES {
        return Err(DecodeError::TooLarge { total });
    }
    let Some(body) = buf.get(at..total) else { return Ok(None) };
    // A packet id or a string's length: two bytes, big-endian.
    let two_bytes = |b: &[u8], what| match b {
        [hi, lo, ..] => Ok(u16::from_be_bytes([*hi, *lo])),
        _ => Err(DecodeError::Malformed(what)),
    };
    let id = |b: &[u8]| two_bytes(b, "too short for a packet id");
    let packet = match first >> 4 {
        2 if body.len() == 2 => Packet::ConnAck { code: body[1] },
        3 => {
            let qos = (first >> 1) & 0x03;
            let topic_len = usize::from(two_bytes(body, "publish without a topic")?);
            let topic =
                body.get(2..2 + topic_len).ok_or(DecodeError::Malformed("topic beyond the packet"))?;
            let topic =
                String::from_utf8(topic.to_vec()).map_err(|_| DecodeError::Malformed("topic not UTF-8"))?;
            let rest = &body[2 + topic_len..];
            let (qos1_id, payload) = match qos {
                0 => (None, rest),
                1 => (Some(id(rest)?), &rest[2..]),
                _ => return Err(DecodeError::Malformed("QoS 2 was never subscribed to")),
            };
            Packet::Publish { topic, payload: payload.to_vec(), retain: first & 0x01 != 0, qos1_id }
        }
        4 if body.len() == 2 => Packet::PubAck { id: id(body)? },
        9 if body.len() >= 3 => Packet::SubAck { id: id(body)?, codes: body[2..].to_vec() },
        13 if body.is_empty() => Packet::PingResp,
        _ => return Err(DecodeError::Malformed("a packet type or length a client never receives")),
    };
    Ok(Some((packet, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_matches_the_standard_layout() {
        // 3.1.2: protocol name, level 4, then our flags 0b1110_1110 (user,
        // password, will retain, will QoS 1, will flag, clean session), keep alive 30.
        let bytes = connect(&Connect {
            client_id: "c",
            keep_alive_secs: 30,
            username: Some("u"),
            password: Some("p"),
            will_topic: "t/a",
            will_payload: b"offline",
        });
        let mut want = vec![0x10, 33, 0, 4, b'M', b'Q', b'T', b'T', 4, 0b1110_1110, 0, 30];
        want.extend_from_slice(&[0, 1, b'c', 0, 3, b't', b'/', b'a', 0, 7]);
        want.extend_from_slice(b"offline");
        want.extend_from_slice(&[0, 1, b'u', 0, 1, b'p']);
        assert_eq!(bytes, want);
        // Without credentials neither flag is set, and no password goes without a user.
        let anonymous = Connect { username: None, password: Some("p"), ..connect_args() };
        assert_eq!(connect(&anonymous)[9], 0b0010_1110);
    }

    fn connect_args() -> Connect<'static> {
        Connect {
            client_id: "c",
            keep_alive_secs: 30,
            username: None,
            password: None,
            will_topic: "t",
            will_payload: b"x",
        }
    }

    #[test]
    fn remaining_length_uses_the_standards_boundaries() {
        // Table 2.4: 127 fits one byte, 128 takes two (0x80 0x01), 16383 two, 16384 three.
        for (len, header) in [
            (0usize, vec![0x00]),
            (127, vec![0x7F]),
            (128, vec![0x80, 0x01]),
            (16_383, vec![0xFF, 0x7F]),
            (16_384, vec![0x80, 0x80, 0x01]),
        ] {
            let p = packet(0x30, &vec![0; len]);
            assert_eq!(&p[1..1 + header.len()], &header[..], "{len}");
            assert_eq!(p.len(), 1 + header.len() + len);
        }
    }

    #[test]
    fn publish_subscribe_puback_and_ping_bytes() {
        assert_eq!(publish("a/b", b"ON", true), [0x31, 7, 0, 3, b'a', b'/', b'b', b'O', b'N']);
        assert_eq!(publish("a", b"", false), [0x30, 3, 0, 1, b'a']);
        assert_eq!(
            subscribe(10, &["a/b".into(), "c".into()]),
            [0x82, 12, 0, 10, 0, 3, b'a', b'/', b'b', 1, 0, 1, b'c', 1]
        );
        assert_eq!(puback(0x1234), [0x40, 2, 0x12, 0x34]);
        assert_eq!(PINGREQ, [0xC0, 0]);
    }

    #[test]
    fn decodes_what_a_broker_sends_and_waits_for_the_rest() {
        assert_eq!(decode(&[0x20, 2, 0, 0]).unwrap(), Some((Packet::ConnAck { code: 0 }, 4)));
        assert_eq!(decode(&[0x20, 2, 0, 5]).unwrap(), Some((Packet::ConnAck { code: 5 }, 4)));
        assert_eq!(decode(&[0xD0, 0, 0x20]).unwrap(), Some((Packet::PingResp, 2)));
        assert_eq!(
            decode(&[0x90, 4, 0, 7, 1, 0x80]).unwrap(),
            Some((Packet::SubAck { id: 7, codes: vec![1, 0x80] }, 6))
        );
        assert_eq!(decode(&[0x40, 2, 0, 9]).unwrap(), Some((Packet::PubAck { id: 9 }, 4)));
        // A retained QoS 1 publish: id 0x0102 follows the topic.
        let qos1 = [0x33, 7, 0, 1, b't', 1, 2, b'O', b'N'];
        let want = Packet::Publish {
            topic: "t".into(),
            payload: b"ON".to_vec(),
            retain: true,
            qos1_id: Some(0x0102),
        };
        assert_eq!(decode(&qos1).unwrap(), Some((want, 9)));
        for cut in 0..qos1.len() {
            assert_eq!(decode(&qos1[..cut]).unwrap(), None, "{cut} bytes");
        }
        // Our own publish, read back.
        let (p, n) = decode(&publish("x/y", b"PRESS", false)).unwrap().unwrap();
        assert_eq!(n, 12);
        assert_eq!(
            p,
            Packet::Publish { topic: "x/y".into(), payload: b"PRESS".to_vec(), retain: false, qos1_id: None }
        );
    }

    #[test]
    fn refuses_malformed_and_oversized_packets() {
        for bad in [
            &[0x30, 1, 0][..],                // topic length cut
            &[0x30, 3, 0, 9, b'a'][..],       // topic longer than the packet
            &[0x34, 3, 0, 1, b'a'][..],       // QoS 2
            &[0x32, 3, 0, 1, b'a'][..],       // QoS 1 without an id
            &[0x30, 4, 0, 2, 0xFF, 0xFE][..], // topic not UTF-8
            &[0x10, 0][..],                   // CONNECT: only brokers receive it
            &[0xD0, 1, 0][..],                // PINGRESP with a body
            &[0x30, 0x80, 0x80, 0x80, 0x80, 0x01][..],
        ] {
            assert!(matches!(decode(bad), Err(DecodeError::Malformed(_))), "{bad:?}");
        }
        let big = publish("t", &vec![0; MAX_INCOMING_BYTES], false);
        assert_eq!(decode(&big[..3]), Err(DecodeError::TooLarge { total: big.len() }));
    }

    #[test]
    fn random_bytes_never_panic_and_never_claim_more_than_they_hold() {
        // What a hostile broker can send: every decode ends in a packet within the
        // buffer, a wait for more, or an error.
        // Fixed noise (xorshift), so that a failure repeats.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..1 << 16)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for start in 0..4096 {
            let len = usize::from(noise[start]) % 64;
            let mut buf = noise[start..start + len].to_vec();
            // Half the time a plausible first byte, so the bodies get parsed too.
            if start % 2 == 0 && !buf.is_empty() {
                buf[0] = [0x20, 0x30, 0x32, 0x33, 0x40, 0x90, 0xD0][start % 7];
            }
            if let Ok(Some((_, used))) = decode(&buf) {
                assert!(used <= buf.len());
            }
        }
    }
}
