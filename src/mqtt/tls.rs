//! MQTT over TLS: the client settings of [`crate::system::tls`], so the broker is verified
//! exactly as Twilio is.

use std::net::TcpStream;

use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

/// Completes a verified TLS handshake with `host` on `socket` within `handshake`, then
/// leaves the socket's read timeout at `poll` and returns the encrypted stream.
pub(super) fn wrap(
    mut socket: TcpStream,
    host: &str,
    handshake: Duration,
    poll: Duration,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("TLS: {host}: {e}"))?;
    let mut conn = rustls::ClientConnection::new(crate::system::tls::client_config()?, name)
        .map_err(|e| format!("TLS: {e}"))?;
    let deadline = Instant::now() + handshake;
    let set = |s: &TcpStream, t| s.set_read_timeout(Some(t)).map_err(|e| format!("socket options: {e}"));
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no TLS handshake within {handshake:?}"));
        }
        set(&socket, left)?;
        conn.complete_io(&mut socket).map_err(|e| format!("TLS handshake with {host}: {e}"))?;
    }
    set(&socket, poll)?;
    Ok(rustls::StreamOwned::new(conn, socket))
}
