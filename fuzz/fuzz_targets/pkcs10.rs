//! See `fuzz/src/entries.rs` (`pkcs10`): must not panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scepd_fuzz::entries::pkcs10(data));
