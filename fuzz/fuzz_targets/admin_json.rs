//! See `fuzz/src/entries.rs` (`admin_json`): must not panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scepd_fuzz::entries::admin_json(data));
