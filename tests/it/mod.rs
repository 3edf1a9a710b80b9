pub mod testkit;

mod admin;
mod cli;
mod enroll;
mod hostile;
mod interop;
pub mod interop_clients;
mod lifecycle;
mod revocation;
mod vectors;
