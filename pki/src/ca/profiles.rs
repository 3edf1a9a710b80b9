//! The extensions of each CA-side certificate scepd creates, at bootstrap and at rotation
//! alike (device certificates get theirs in `issue/pipeline.rs`).

use crate::issue::extensions::{self, KeyUsage};

/// What a CA certificate may sign: certificates and CRLs, and OCSP responses directly
/// (RFC 6960 §4.2.2.2, no delegated responder).
fn ca_key_usage() -> Vec<u8> {
    KeyUsage(KeyUsage::KEY_CERT_SIGN | KeyUsage::CRL_SIGN | KeyUsage::DIGITAL_SIGNATURE).extension()
}

/// The self-signed root: a CA without a path length limit.
pub fn root() -> Vec<Vec<u8>> {
    vec![extensions::basic_constraints(true, None), ca_key_usage()]
}

/// An issuing intermediate: a CA that issues end-entity certificates only (pathLen 0).
pub fn intermediate() -> Vec<Vec<u8>> {
    vec![extensions::basic_constraints(true, Some(0)), ca_key_usage()]
}

/// The SCEP RA: signs CertReps and receives requests (keyEncipherment), never a CA.
pub fn ra() -> Vec<Vec<u8>> {
    vec![
        extensions::basic_constraints(false, None),
        KeyUsage(KeyUsage::DIGITAL_SIGNATURE | KeyUsage::KEY_ENCIPHERMENT).extension(),
    ]
}

/// An RA's encryption-only certificate (`[pki] encryption_ra`): for clients that pick their
/// recipient by key usage.
pub fn ra_encryption() -> Vec<Vec<u8>> {
    vec![
        extensions::basic_constraints(false, None),
        KeyUsage(KeyUsage::KEY_ENCIPHERMENT).extension(),
    ]
}
