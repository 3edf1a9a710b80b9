pub mod testkit;

mod cli;
mod crash_safety;
mod enroll;
mod fuzz_regressions;
mod hostile;
mod hostile_mutations;
mod interop;
pub mod interop_clients;
mod lifecycle;
mod limits;
mod oracle;
mod revocation;
mod vectors;
