pub mod testkit;

mod admin;
mod cli;
pub mod dynamic;
mod enroll;
pub mod fake_http;
pub mod fake_intune;
mod hostile;
mod interop;
pub mod interop_clients;
pub mod intune;
mod lifecycle;
mod revocation;
mod rotation;
mod vectors;
pub mod webhook;
