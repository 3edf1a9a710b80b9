//! The input of an issuance, checked once for both backends.

use super::serial::{canonical_serial, format_serial};
use super::{NewCertificate, SHA256_LEN, StoreError};

/// An issuance whose input was checked (serial, hash sizes, SANs encodable) before any
/// backend touches the database: what both backends record.
pub(crate) struct CheckedIssuance {
    /// The certificate to record.
    pub(crate) cert: NewCertificate,
    /// The one-time challenge to consume with it.
    pub(crate) challenge_sha256: Option<Vec<u8>>,
    /// The serial as stored: lowercase hex without leading zero octets.
    pub(crate) serial_hex: String,
    /// The SANs as stored: a JSON array.
    pub(crate) sans: String,
}

impl CheckedIssuance {
    /// Checks `cert` (and the challenge hash to consume, if any).
    pub(crate) fn new(
        cert: &NewCertificate,
        challenge_sha256: Option<&[u8]>,
    ) -> Result<Self, StoreError> {
        let serial = canonical_serial(&cert.serial).ok_or_else(|| StoreError::Invalid {
            field: "serial",
            reason: "must be positive and at most 20 octets in DER".into(),
        })?;
        for (field, hash) in [
            ("public_key_sha256", &cert.public_key_sha256),
            ("signer_key_sha256", &cert.signer_key_sha256),
            ("request_sha256", &cert.request_sha256),
        ] {
            if hash.len() != SHA256_LEN {
                let reason = format!("expected {SHA256_LEN} bytes, got {}", hash.len());
                return Err(StoreError::Invalid { field, reason });
            }
        }
        let sans = serde_json::to_string(&cert.sans).map_err(|e| StoreError::Invalid {
            field: "sans",
            reason: e.to_string(),
        })?;
        Ok(Self {
            serial_hex: format_serial(serial),
            cert: cert.clone(),
            challenge_sha256: challenge_sha256.map(<[u8]>::to_vec),
            sans,
        })
    }
}
