//! MQTT over TLS: rustls (already in the binary for HTTPS, through ureq) with the
//! system's roots from [`crate::tls`], so the broker is verified exactly as Twilio is.

use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::pki_types::{CertificateDer, ServerName};

use super::client::{Stream, HANDSHAKE_TIMEOUT, POLL_INTERVAL};

/// The client settings, built once: the roots never change while we run.
fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for c in crate::tls::system_roots().iter() {
                // A root rustls cannot parse is skipped, as the HTTP agents skip it.
                let _ = roots.add(CertificateDer::from(c.der().to_vec()));
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS settings: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// Completes a verified TLS handshake with `host` on `socket` within
/// [`HANDSHAKE_TIMEOUT`] and returns the encrypted stream.
pub(super) fn wrap(mut socket: TcpStream, host: &str) -> Result<Box<dyn Stream>, String> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("TLS: {host}: {e}"))?;
    let mut conn = rustls::ClientConnection::new(client_config()?, name).map_err(|e| format!("TLS: {e}"))?;
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
