//! Revocation: reason codes, CRL building (RFC 5280 §5) and OCSP (RFC 6960).

pub mod crl;
pub mod ocsp;
pub mod reason;

pub use reason::RevocationReason;
