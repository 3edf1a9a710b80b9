//! scepd: a SCEP (RFC 8894) certificate authority for device trust. The binary is a thin
//! wrapper; everything lives in this library so tests and tools can use it.
#![forbid(unsafe_code)]

pub mod admin;
pub mod authority;
pub mod ca;
pub mod challenge;
pub mod cli;
pub mod clock;
pub mod config;
pub mod configured_store;
pub mod cpu_pool;
pub mod devices;
pub mod fd_limit;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod outbound;
pub mod platforms;
pub mod printable;
pub mod private_file;
pub mod profiles;
pub mod revocation;
pub mod secrets;
pub mod serve_lock;
pub mod server;
pub mod store;
pub mod trust;
pub mod uuid;
