//! Strangers who know the Twilio number: their genuine, signed calls are rejected, and
//! however many they make, the resident's records (who came in) stay readable.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::harness::*;

const STRANGER: &str = "+15550000000";
/// Stranger calls in the flood: more than twice what flushed both history files before.
const FLOOD_CALLS: usize = 5000;
/// The whole flood over keep-alive connections on a loaded machine; each reject that is
/// not recorded costs no disk write, so this is generous.
const FLOOD_WITHIN: Duration = Duration::from_secs(120);

/// One keep-alive connection to the webhook listener, reopened when the server ends it.
struct KeepAlive {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl KeepAlive {
    /// Posts `body` to `/voice` with `signature`; the status and the body of the answer.
    fn post(&mut self, body: &str, signature: &str) -> (u16, String) {
        let request = format!(
            "POST /voice HTTP/1.1\r\nHost: door\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let conn = self.conn.get_or_insert_with(|| {
            let s = TcpStream::connect(self.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            BufReader::new(s)
        });
        conn.get_mut().write_all(request.as_bytes()).unwrap();
        let mut status = String::new();
        conn.read_line(&mut status).unwrap();
        let code: u16 =
            status.split(' ').nth(1).unwrap_or_else(|| panic!("status line {status:?}")).parse().unwrap();
        let (mut length, mut close) = (0, false);
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).unwrap();
            let line = line.trim_end().to_ascii_lowercase();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            close |= line == "connection: close";
        }
        let mut body = vec![0; length];
        conn.read_exact(&mut body).unwrap();
        if close {
            self.conn = None;
        }
        (code, String::from_utf8(body).unwrap())
    }
}

#[test]
fn five_thousand_stranger_calls_leave_every_earlier_unlock_readable() {
    let s = Server::start(signed_config());
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 60}"#).status, 200);
    let mut unlocked_sids = Vec::new();
    for _ in 0..5 {
        let sid = fresh_call_sid();
        let form = with_call_sid(CALL, &sid);
        let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &form);
        assert!(post_signed(&s, "/voice", &form, Some(&sig)).body.contains("<Play"));
        unlocked_sids.push(sid);
    }
    assert_eq!(s.api("POST", "/api/close", "").status, 200);

    let mut client = KeepAlive { addr: s.webhook, conn: None };
    let started = Instant::now();
    for n in 0..FLOOD_CALLS {
        let sid = fresh_call_sid();
        let form = [("AccountSid", "ACtest"), ("CallSid", &sid), ("From", STRANGER), ("To", "+15550001111")];
        let sig = sign(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &form);
        let (status, body) = client.post(&form_body(&form), &sig);
        assert!(status == 200 && body.contains("<Reject/>"), "call {n}: {status} {body}");
        assert!(started.elapsed() < FLOOD_WITHIN, "only {n} calls in {FLOOD_WITHIN:?}");
    }
    eprintln!("{FLOOD_CALLS} stranger calls in {:?}", started.elapsed());

    let all = events(&s, 500);
    for sid in &unlocked_sids {
        assert!(
            all.iter().any(|e| e["event"] == "call_unlocked" && e["call_sid"] == sid.as_str()),
            "the unlock of {sid} is gone: {:?}",
            names(&all)
        );
    }
    let rejects = all.iter().filter(|e| e["event"] == "call_rejected").count();
    assert!(rejects > 0 && rejects < 100, "rejects recorded at a bounded rate: {rejects}");
    assert!(s.wait_for_log("rejected calls a minute"), "{}", s.logs());
}
