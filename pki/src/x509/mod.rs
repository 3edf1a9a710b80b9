//! X.509 certificate and name handling over the lenient reader: real SCEP signer certificates
//! carry 32-octet serials (sscep) and critical AKIs (Windows) that strict parsers refuse.

pub mod certificate;
pub mod general_names;
pub mod name;

pub use certificate::{Certificate, Extension, ParsedCertificate};
