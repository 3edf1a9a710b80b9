//! See `fuzz/src/entries.rs` (`ocsp_request`): must not panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scepd_fuzz::entries::ocsp_request(data));
