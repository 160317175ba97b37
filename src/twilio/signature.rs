//! Twilio's `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + sorted POST params)).
//!
//! The URL is the public one Twilio called (`webhook.public_url` + path + query), never
//! the address the tunnel delivers to. Twilio is inconsistent about explicit default
//! ports, so, like its own libraries, we accept the URL with and without one.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::hmac::{Context, Key, Tag, HMAC_SHA1_FOR_LEGACY_USE_ONLY};

use crate::util::constant_time_eq;

/// The HMAC-SHA1 key for `secret` (of any length). SHA-1 because Twilio signs with it;
/// the proof uses the same so that one MAC serves both.
fn key(secret: &str) -> Key {
    Key::new(HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes())
}

/// `params` are the POST parameters (empty for GET), repeats included. The server only
/// verifies; computing is for tests and the fuzz target.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(mac_over(&key(auth_token), url, &sorted(params)))
}

/// Constant-time check of `signature` against the accepted spellings of `url`. The key is
/// made and the parameters sorted once; each spelling only hashes.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let (key, sorted) = (key(auth_token), sorted(params));
    matches(signature, url_variants(url).iter().map(|u| mac_over(&key, u, &sorted)))
}

/// Whether `given` (base64) is one of `tags`, each compared in constant time. The first
/// match ends the search: which one matched is no secret (the URL is public), and a wrong
/// `given` is still compared with every tag, so a forger learns nothing from the time.
fn matches(given: &str, tags: impl IntoIterator<Item = Tag>) -> bool {
    let Ok(given) = BASE64.decode(given.trim()) else { return false };
    tags.into_iter().any(|tag| constant_time_eq(tag.as_ref(), &given))
}

/// Sorted by name; repeated names by value, so the order on the wire does not matter.
fn sorted(params: &[(String, String)]) -> Vec<&(String, String)> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted
}

fn mac_over(key: &Key, url: &str, sorted: &[&(String, String)]) -> Tag {
    let mut mac = Context::with_key(key);
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.sign()
}

/// Where a client asks the control listener to prove it holds the control token, before
/// sending it: a program squatting on the control port while the server is down cannot
/// answer, and never receives the token (`intercom status`, `doctor`).
pub const PROOF_PATH: &str = "/api/proof";
/// Keeps the proof apart from any other use of the token as a key.
const PROOF_CONTEXT: &[u8] = b"intercom control listener proof\n";
/// The client's nonce, in hex: 128 random bits at least, and small.
pub const PROOF_NONCE_HEX_CHARS: std::ops::RangeInclusive<usize> = 32..=128;

fn proof_mac(token: &str, nonce: &str) -> Tag {
    let mut mac = Context::with_key(&key(token));
    mac.update(PROOF_CONTEXT);
    mac.update(nonce.as_bytes());
    mac.sign()
}

/// The server's answer to `nonce`: base64(HMAC-SHA1(token, context + nonce)).
pub fn control_proof(token: &str, nonce: &str) -> String {
    BASE64.encode(proof_mac(token, nonce))
}

/// Constant-time check of a server's answer to `nonce`.
pub fn verify_control_proof(token: &str, nonce: &str, proof: &str) -> bool {
    matches(proof, [proof_mac(token, nonce)])
}

/// The URL as given plus the same URL with the scheme's default port added or removed.
pub fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    // Each scheme with its default port; `rest` is what follows the scheme.
    let schemes = [("https://", ":443"), ("http://", ":80")];
    let found =
        schemes.into_iter().find_map(|(scheme, port)| Some((scheme, port, url.strip_prefix(scheme)?)));
    let Some((scheme, default_port, rest)) = found else { return out };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let other = match authority.strip_suffix(default_port) {
        Some(bare) => format!("{scheme}{bare}{tail}"),
        // An authority ending in "]" or without a port gets the default one.
        None if !authority.rsplit_once(':').is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())) => {
            format!("{scheme}{authority}{default_port}{tail}")
        }
        None => return out,
    };
    out.push(other);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_proof_needs_the_token_and_the_nonce() {
        let token = "control-token-0123456789";
        let proof = control_proof(token, "00ff");
        assert!(verify_control_proof(token, "00ff", &proof));
        assert!(!verify_control_proof("another-token-0123456789", "00ff", &proof));
        assert!(!verify_control_proof(token, "00fe", &proof));
        assert!(!verify_control_proof(token, "00ff", "not base64!"));
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    /// The example from Twilio's webhook-security documentation.
    #[test]
    fn twilio_published_example() {
        let p = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(compute("12345", url, &p), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify("12345", url, &p, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(verify(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &p,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!verify("12346", url, &p, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &p,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        let mut changed = p.clone();
        changed[3].1 = "+12349013031".into();
        assert!(!verify("12345", url, &changed, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!verify("12345", url, &p, ""));
        assert!(!verify("12345", url, &p, "not base64!"));
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let a = params(&[("b", "2"), ("a", "1"), ("a", "0")]);
        let b = params(&[("a", "0"), ("a", "1"), ("b", "2")]);
        assert_eq!(compute("t", "https://x/", &a), compute("t", "https://x/", &b));
    }

    #[test]
    fn default_port_variants() {
        assert_eq!(
            url_variants("https://h.example/v?x=1"),
            ["https://h.example/v?x=1", "https://h.example:443/v?x=1"]
        );
        assert_eq!(
            url_variants("https://h.example:443/v"),
            ["https://h.example:443/v", "https://h.example/v"]
        );
        assert_eq!(url_variants("http://h.example:80"), ["http://h.example:80", "http://h.example"]);
        assert_eq!(url_variants("https://h.example:8443/v"), ["https://h.example:8443/v"]);
        assert_eq!(url_variants("https://[::1]/v"), ["https://[::1]/v", "https://[::1]:443/v"]);
    }
}
