//! The HTTP request-head parser (what the internet sends first) never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let peer = "127.0.0.1:1".parse().unwrap();
    if let Ok(req) = intercom::http::parse_request_head(data, peer) {
        assert!(req.headers.len() <= intercom::http::MAX_HEADERS);
        assert!(req.path.starts_with('/'));
    }
});
