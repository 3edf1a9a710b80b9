pub mod testkit;

mod cli;
pub mod dynamic;
mod enroll;
pub mod fake_http;
mod hostile;
mod interop;
pub mod interop_clients;
mod lifecycle;
mod vectors;
pub mod webhook;
