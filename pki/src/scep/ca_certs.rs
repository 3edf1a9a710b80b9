//! GetCACert and GetNextCACert bodies (RFC 8894 §4.2, §4.7).

use crate::algorithms::DigestAlg;
use crate::cms::signed_data::SignedDataBuilder;
use crate::cms::{CmsError, certs_only};
use crate::keys::Signer;
use crate::x509::Certificate;

/// GetCACert with more than one certificate (`application/x-x509-ca-ra-cert`): a certs-only
/// SignedData holding `chain` in the order given (RA first: clients take the first RA-like one).
pub fn ca_certs(chain: &[&[u8]]) -> Vec<u8> {
    certs_only::build(chain, &[])
}

/// GetNextCACert (`application/x-x509-next-ca-cert`): the next `chain` as certs-only
/// SignedData, wrapped in a SignedData by the current RA so clients can trust the announcement
/// with what they already hold.
pub fn next_ca_certs(
    chain: &[&[u8]],
    ra_cert: &Certificate<'_>,
    ra_key: &dyn Signer,
    now: i64,
) -> Result<Vec<u8>, CmsError> {
    let inner = certs_only::build(chain, &[]);
    SignedDataBuilder {
        content: Some(&inner),
        certificates: vec![ra_cert.raw],
        signer_cert: ra_cert,
        signer: ra_key,
        digest: DigestAlg::Sha256,
        attributes: Vec::new(),
        signing_time: Some(now),
    }
    .build()
}
