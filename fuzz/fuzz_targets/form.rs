//! The form/query parser never panics, and what it accepts is valid UTF-8 pairs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(params) = intercom::http::form::parse(data) {
        assert!(params.len() <= intercom::http::form::MAX_PARAMS);
        let _ = intercom::http::form::single(&params, "From");
    }
});
