//! See `fuzz/src/entries.rs` (`pki_message`): must not panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scepd_fuzz::entries::pki_message(data));
