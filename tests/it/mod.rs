pub mod testkit;

mod cli;
pub mod dynamic;
mod enroll;
mod hostile;
mod interop;
pub mod interop_clients;
mod lifecycle;
mod vectors;
