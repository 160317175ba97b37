//! The config parser never panics on any text; errors are single lines.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = intercom::config::parse(text, |_| None) {
            assert!(!e.contains('\n'), "{e}");
        }
    }
});
