//! Which certificate authorities outbound HTTPS trusts (Twilio's REST API, ntfy, webhooks):
//! the system's CA bundle, read once, shared by every HTTP agent and by the MQTT
//! connection to a broker over TLS ([`system_roots`]). [`https_agent`] builds the one kind
//! of agent that talks to the outside.
//!
//! Decision: not Mozilla's roots compiled in (ureq's `rustls` feature, the
//! `webpki-roots` crate). They were about 60 KiB of a binary with a size budget, and froze
//! the roots at build time, while a Pi's `ca-certificates` package gets new roots and
//! distrusts with its updates. The cost: a system without a bundle cannot verify anyone.
//! Raspberry Pi OS and Debian install `ca-certificates` by default; on OpenWrt it is the
//! `ca-bundle` package (`opkg install ca-bundle`). Without one, HTTPS fails with an
//! unknown-issuer error (never unverified), the start-up log says what to install, and
//! nothing else is affected: calls are still answered.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Where distributions keep the PEM bundle of trusted roots; the first that exists is used.
pub const CA_BUNDLES: [&str; 3] = [
    // Debian, Raspberry Pi OS, Ubuntu, Alpine (ca-certificates); OpenWrt (ca-bundle).
    "/etc/ssl/certs/ca-certificates.crt",
    // Fedora, RHEL.
    "/etc/pki/tls/certs/ca-bundle.crt",
    // Alpine, OpenWrt and the BSDs also link it here.
    "/etc/ssl/cert.pem",
];
/// A PEM file to trust instead of the list above: the variable OpenSSL honours too.
pub const CA_FILE_ENV: &str = "SSL_CERT_FILE";
/// Debian's bundle is about 220 KiB; a file far larger than that is not a CA bundle, and
/// reading it whole would only cost memory.
const MAX_BUNDLE_BYTES: u64 = 4 * 1024 * 1024;

/// TLS settings for an agent that talks HTTPS: the system's roots, loaded on first use.
pub fn config() -> TlsConfig {
    with_roots(RootCerts::Specific(system_roots()))
}

/// The system's roots, read once and shared by every TLS client (the HTTP agents, the
/// MQTT connection); empty, with an error logged, if there is no usable bundle.
pub fn system_roots() -> Arc<Vec<Certificate<'static>>> {
    static ROOTS: OnceLock<Arc<Vec<Certificate<'static>>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let chosen = std::env::var_os(CA_FILE_ENV).map(PathBuf::from);
            let candidates = match &chosen {
                Some(path) => vec![path.clone()],
                None => CA_BUNDLES.iter().map(PathBuf::from).collect(),
            };
            match load_first(&candidates) {
                Ok((path, certs)) => {
                    log::debug!("HTTPS and MQTT over TLS trust {} roots from {}", certs.len(), path.display());
                    Arc::new(certs)
                }
                Err(e) => {
                    log::error!(
                        "HTTPS cannot verify anyone (nor an MQTT broker over TLS): {e}. Install ca-certificates (Debian, Raspberry Pi OS) \
                         or ca-bundle (OpenWrt), or set {CA_FILE_ENV}, then restart"
                    );
                    Arc::new(Vec::new())
                }
            }
        })
        .clone()
}

/// How we introduce ourselves to Twilio, notification targets and `doctor`'s probes.
const USER_AGENT: &str = concat!("intercom/", env!("CARGO_PKG_VERSION"));

/// The agent for every outbound request (Twilio's REST API, notification targets,
/// `doctor`'s probe of the public URL): the system's roots, one overall `timeout`, HTTP
/// errors as answers for the caller to classify, and no redirects: one would be taken as
/// a final answer rather than followed to wherever it points (a redirected `/healthz`
/// proves nothing about who answers, and Twilio does not follow one either).
pub fn https_agent(timeout: std::time::Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(crate::system::tls::config())
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(USER_AGENT)
        .build()
        .into()
}

/// For an agent that only speaks plain HTTP (the CLI to the local control API): loads
/// nothing, and a TLS connection could never verify.
pub fn no_roots() -> TlsConfig {
    with_roots(no_roots_list())
}

fn no_roots_list() -> RootCerts {
    RootCerts::Specific(Arc::new(Vec::new()))
}

fn with_roots(roots: RootCerts) -> TlsConfig {
    TlsConfig::builder().root_certs(roots).build()
}

/// The certificates of the first bundle in `paths` that exists. A bundle that exists but
/// cannot be read or holds no certificate is an error, not skipped: it is a broken system
/// store, and silently trusting a different file would hide that.
pub fn load_first(paths: &[PathBuf]) -> Result<(PathBuf, Vec<Certificate<'static>>), String> {
    for path in paths {
        match read_bundle(path) {
            Ok(certs) if certs.is_empty() => {
                return Err(format!("{}: no certificates in it", path.display()))
            }
            Ok(certs) => return Ok((path.clone(), certs)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    let looked: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Err(format!("no CA bundle at {}", looked.join(", ")))
}

fn read_bundle(path: &Path) -> io::Result<Vec<Certificate<'static>>> {
    let mut pem = Vec::new();
    File::open(path)?.take(MAX_BUNDLE_BYTES + 1).read_to_end(&mut pem)?;
    if pem.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(io::Error::other(format!("larger than {MAX_BUNDLE_BYTES} bytes")));
    }
    Ok(certificates(&pem))
}

/// The certificates in a PEM text; keys, comments and unparsable blocks are skipped (a
/// bundle may hold trust-only blocks some parsers cannot read).
pub fn certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! Parsing and choosing the bundle. The handshakes (verified against the loaded roots,
    //! refused against others, no roots at all) run through the real binary in tests/it/tls.rs.
    use super::*;

    const CA: &str = include_str!("../../tests/fixtures/tls/ca.pem");
    const OTHER_CA: &str = include_str!("../../tests/fixtures/tls/other-ca.pem");
    const LEAF_KEY: &str = include_str!("../../tests/fixtures/tls/localhost.key");

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("intercom-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_bundle_yields_its_certificates_and_skips_the_rest() {
        let pem = format!("# a comment\n{CA}\nnot pem at all\n{LEAF_KEY}{OTHER_CA}");
        let certs = certificates(pem.as_bytes());
        assert_eq!(certs.len(), 2);
        assert!(certificates(b"").is_empty());
    }

    #[test]
    fn the_first_bundle_that_exists_is_used_and_a_broken_one_is_an_error() {
        let dir = temp_dir("load");
        let (missing, good, empty) = (dir.join("missing.pem"), dir.join("good.pem"), dir.join("empty.pem"));
        std::fs::write(&good, format!("{CA}{OTHER_CA}")).unwrap();
        std::fs::write(&empty, "no certificates here\n").unwrap();

        let (path, certs) = load_first(&[missing.clone(), good.clone()]).unwrap();
        assert_eq!((path, certs.len()), (good.clone(), 2));

        let e = load_first(&[empty.clone(), good.clone()]).unwrap_err();
        assert!(e.contains("empty.pem") && e.contains("no certificates"), "{e}");

        let e = load_first(std::slice::from_ref(&missing)).unwrap_err();
        assert!(e.contains("no CA bundle at") && e.contains("missing.pem"), "{e}");

        let huge = dir.join("huge.pem");
        std::fs::write(&huge, vec![b'A'; MAX_BUNDLE_BYTES as usize + 1]).unwrap();
        let e = load_first(&[huge]).unwrap_err();
        assert!(e.contains("larger than"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
