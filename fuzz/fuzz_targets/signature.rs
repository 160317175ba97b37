//! Signature checking never panics; a signature we compute always verifies, and never
//! verifies under another token.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\n');
    let token = parts.next().unwrap_or("");
    let url = parts.next().unwrap_or("");
    let signature = parts.next().unwrap_or("");
    let params: Vec<(String, String)> = parts
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let _ = intercom::twilio::signature::verify(token, url, &params, signature);
    let good = intercom::twilio::signature::compute(token, url, &params);
    assert!(intercom::twilio::signature::verify(token, url, &params, &good));
    let other = format!("{token}x");
    assert!(!intercom::twilio::signature::verify(&other, url, &params, &good));
});
