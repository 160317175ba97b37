//! Which certificate authorities outbound TLS trusts (Twilio's REST API, ntfy, webhooks,
//! an MQTT broker): the system's CA bundle, read once ([`system_roots`]), in the one client
//! configuration that every connection shares ([`client_config`]).
//!
//! Decision: not Mozilla's roots compiled in (the `webpki-roots` crate). They were about 60 KiB of a binary with a size budget, and froze
//! the roots at build time, while a Pi's `ca-certificates` package gets new roots and
//! distrusts with its updates. The cost: a system without a bundle cannot verify anyone.
//! Raspberry Pi OS and Debian install `ca-certificates` by default; on OpenWrt it is the
//! `ca-bundle` package (`opkg install ca-bundle`). Without one, HTTPS fails with an
//! unknown-issuer error (never unverified), the start-up log says what to install, and
//! nothing else is affected: calls are still answered.
//!
//! Decision: a crypto provider of our own ([`provider`]) instead of ring's default. It
//! speaks what Twilio, ntfy, webhook targets and MQTT brokers all do (TLS 1.3 and 1.2,
//! ECDHE on P-256 or P-384, AES-GCM, RSA or ECDSA certificates; P-256 and AES-128-GCM are
//! what TLS 1.3 requires of every server) and leaves out ChaCha20-Poly1305, X25519,
//! Ed25519 certificates and client keys: 150 KiB of the binary. A server that offers only
//! those fails the handshake, and the error says so.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

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

/// The system's roots (read once, by [`client_config`]); none, with an error logged, if
/// there is no usable bundle.
fn system_roots() -> Vec<CertificateDer<'static>> {
    let candidates = match std::env::var_os(CA_FILE_ENV) {
        Some(path) => vec![PathBuf::from(path)],
        None => CA_BUNDLES.iter().map(PathBuf::from).collect(),
    };
    match load_first(&candidates) {
        Ok((path, certs)) => {
            log::debug!("HTTPS and MQTT over TLS trust {} roots from {}", certs.len(), path.display());
            certs
        }
        Err(e) => {
            log::error!(
                "HTTPS cannot verify anyone (nor an MQTT broker over TLS): {e}. Install ca-certificates (Debian, Raspberry Pi OS) \
                 or ca-bundle (OpenWrt), or set {CA_FILE_ENV}, then restart"
            );
            Vec::new()
        }
    }
}

/// The client settings every TLS connection shares (HTTPS, MQTT over TLS), built once:
/// the roots never change while we run.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            // A root rustls cannot parse is skipped: a bundle may hold ones it cannot read.
            roots.add_parsable_certificates(system_roots());
            let config = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS settings: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// The TLS the outside needs and no more: TLS 1.3 and 1.2, ECDHE on P-256 or P-384,
/// AES-GCM, and RSA or ECDSA (P-256, P-384) certificates.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::{cipher_suite as cs, kx_group};
    use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
    use rustls::SignatureScheme as S;
    use webpki::ring as alg;
    static SIGS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
        all: &[
            alg::ECDSA_P256_SHA256,
            alg::ECDSA_P256_SHA384,
            alg::ECDSA_P384_SHA256,
            alg::ECDSA_P384_SHA384,
            alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
            alg::RSA_PKCS1_2048_8192_SHA256,
            alg::RSA_PKCS1_2048_8192_SHA384,
            alg::RSA_PKCS1_2048_8192_SHA512,
            alg::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
            alg::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
            alg::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
        ],
        mapping: &[
            (S::ECDSA_NISTP384_SHA384, &[alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384]),
            (S::ECDSA_NISTP256_SHA256, &[alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256]),
            (S::RSA_PSS_SHA512, &[alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY]),
            (S::RSA_PSS_SHA384, &[alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY]),
            (S::RSA_PSS_SHA256, &[alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY]),
            (S::RSA_PKCS1_SHA512, &[alg::RSA_PKCS1_2048_8192_SHA512]),
            (S::RSA_PKCS1_SHA384, &[alg::RSA_PKCS1_2048_8192_SHA384]),
            (S::RSA_PKCS1_SHA256, &[alg::RSA_PKCS1_2048_8192_SHA256]),
        ],
    };
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        kx_groups: vec![kx_group::SECP256R1, kx_group::SECP384R1],
        signature_verification_algorithms: SIGS,
        secure_random: &Random,
        key_provider: &NoClientKeys,
    })
}

/// The OS random source, through ring like every other random number here.
#[derive(Debug)]
struct Random;

impl rustls::crypto::SecureRandom for Random {
    fn fill(&self, buf: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), buf)
            .map_err(|_| rustls::crypto::GetRandomFailed)
    }
}

/// We never present a client certificate, so no private key is ever loaded.
#[derive(Debug)]
struct NoClientKeys;

impl rustls::crypto::KeyProvider for NoClientKeys {
    fn load_private_key(
        &self,
        _: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        Err(rustls::Error::General("no client certificates".into()))
    }
}

/// The certificates of the first bundle in `paths` that exists. A bundle that exists but
/// cannot be read or holds no certificate is an error, not skipped: it is a broken system
/// store, and silently trusting a different file would hide that.
pub fn load_first(paths: &[PathBuf]) -> Result<(PathBuf, Vec<CertificateDer<'static>>), String> {
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

fn read_bundle(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let mut pem = Vec::new();
    File::open(path)?.take(MAX_BUNDLE_BYTES + 1).read_to_end(&mut pem)?;
    if pem.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(io::Error::other(format!("larger than {MAX_BUNDLE_BYTES} bytes")));
    }
    // Keys, comments and unparsable blocks are skipped (a bundle may hold trust-only
    // blocks some parsers cannot read).
    Ok(CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect())
}

#[cfg(test)]
mod tests {
    //! Parsing and choosing the bundle, and what the provider speaks (handshakes in memory
    //! against rustls servers limited to one version, suite or group). The handshakes through
    //! the real binary (verified against the loaded roots, refused against others, no roots at
    //! all) are in tests/it/tls.rs.
    use super::*;
    use rustls::crypto::ring::{cipher_suite, default_provider, kx_group};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    const CA: &str = include_str!("../../tests/fixtures/tls/ca.pem");
    const OTHER_CA: &str = include_str!("../../tests/fixtures/tls/other-ca.pem");
    const LEAF_KEY: &str = include_str!("../../tests/fixtures/tls/localhost.key");
    const LEAF: &str = include_str!("../../tests/fixtures/tls/localhost.pem");

    /// A handshake of our provider (trusting the fixture CA) with a server on `server`,
    /// the bytes passed in memory; the client's connection when it completes.
    fn handshake(
        server: CryptoProvider,
        tls12_only: bool,
    ) -> Result<rustls::ClientConnection, rustls::Error> {
        let versions: &[&rustls::SupportedProtocolVersion] =
            if tls12_only { &[&rustls::version::TLS12] } else { rustls::DEFAULT_VERSIONS };
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(server))
            .with_protocol_versions(versions)?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(LEAF.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(LEAF_KEY.as_bytes()).unwrap(),
            )?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(CA.as_bytes()).unwrap())?;
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut c = rustls::ClientConnection::new(Arc::new(client), "localhost".try_into().unwrap())?;
        let mut s = rustls::ServerConnection::new(Arc::new(server))?;
        while c.is_handshaking() || s.is_handshaking() {
            let mut bytes = Vec::new();
            c.write_tls(&mut bytes).unwrap();
            s.read_tls(&mut &bytes[..]).unwrap();
            s.process_new_packets()?;
            bytes.clear();
            s.write_tls(&mut bytes).unwrap();
            c.read_tls(&mut &bytes[..]).unwrap();
            c.process_new_packets()?;
        }
        Ok(c)
    }

    #[test]
    fn the_provider_speaks_tls_1_3_and_1_2_with_ecdhe_and_aes_gcm_and_nothing_else() {
        let c = handshake(default_provider(), false).unwrap();
        assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
        let c = handshake(default_provider(), true).unwrap();
        assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
        let suite = c.negotiated_cipher_suite().unwrap().suite();
        assert_eq!(suite, rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
        let p384 = CryptoProvider { kx_groups: vec![kx_group::SECP384R1], ..default_provider() };
        assert!(handshake(p384, false).is_ok(), "P-384 after a retry");

        // What was left out: a server that offers only these finds nothing in common.
        let chacha = CryptoProvider {
            cipher_suites: vec![cipher_suite::TLS13_CHACHA20_POLY1305_SHA256],
            ..default_provider()
        };
        assert!(handshake(chacha, false).is_err());
        let x25519 = CryptoProvider { kx_groups: vec![kx_group::X25519], ..default_provider() };
        assert!(handshake(x25519, false).is_err());
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("intercom-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_bundle_yields_its_certificates_and_skips_the_rest() {
        let dir = temp_dir("skip");
        let pem = format!("# a comment\n{CA}\nnot pem at all\n{LEAF_KEY}{OTHER_CA}");
        let (mixed, empty) = (dir.join("mixed.pem"), dir.join("empty.pem"));
        std::fs::write(&mixed, pem).unwrap();
        std::fs::write(&empty, "").unwrap();
        assert_eq!(read_bundle(&mixed).unwrap().len(), 2);
        assert!(read_bundle(&empty).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
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
