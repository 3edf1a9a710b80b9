//! One integration test binary: boots the real `scepd` binary on 127.0.0.1 ports and drives
//! it with our own client, real SCEP clients and OpenSSL as an independent checker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod it;
