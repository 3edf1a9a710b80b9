//! See `fuzz/src/entries.rs` (`get_query`): must not panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scepd_fuzz::entries::get_query(data));
