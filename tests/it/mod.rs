pub mod testkit;

mod cli;
mod enroll;
mod interop;
pub mod interop_clients;
mod lifecycle;
