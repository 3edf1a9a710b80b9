pub mod testkit;

mod cli;
mod enroll;
mod fuzz_regressions;
mod hostile;
mod interop;
pub mod interop_clients;
mod lifecycle;
mod limits;
mod revocation;
mod vectors;
