//! MQTT over TLS: rustls (already in the binary for HTTPS, through ureq) with the
//! system's roots from [`crate::system::tls`], so the broker is verified exactly as Twilio is.

use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};

/// The encrypted stream over the broker's socket.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// The client settings, built once: the roots never change while we run.
fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for c in crate::system::tls::system_roots().iter() {
                // A root rustls cannot parse is skipped, as the HTTP agents skip it.
                let _ = roots.add(CertificateDer::from(c.der().to_vec()));
            }
            let provider = crate::system::tls::provider();
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS settings: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// Completes a verified TLS handshake with `host` on `socket` within `handshake`, then
/// leaves the socket's read timeout at `poll` and returns the encrypted stream.
pub(super) fn wrap(
    mut socket: TcpStream,
    host: &str,
    handshake: Duration,
    poll: Duration,
) -> Result<TlsStream, String> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("TLS: {host}: {e}"))?;
    let mut conn = rustls::ClientConnection::new(client_config()?, name).map_err(|e| format!("TLS: {e}"))?;
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
