//! Fuzz entry points shared by the libFuzzer targets and the regression test in `cargo test`.
#![allow(clippy::cast_possible_truncation)]

pub mod entries;
