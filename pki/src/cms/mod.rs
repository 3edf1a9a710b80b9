//! CMS (RFC 5652) as SCEP uses it: SignedData around EnvelopedData, and degenerate certs-only
//! SignedData for certificate distribution.

pub mod attributes;
pub mod certs_only;
pub mod enveloped_data;
pub mod signed_data;

use crate::algorithms::AlgorithmError;
use crate::der::DerError;

/// Errors from CMS processing. Variants are coarse on purpose: callers map them to SCEP failInfo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CmsError {
    /// Not DER (or the lenient BER we read).
    #[error("malformed CMS: {0}")]
    Der(#[from] DerError),
    /// DER, but not the structure expected.
    #[error("malformed CMS: {0}")]
    Malformed(&'static str),
    /// More of something than we read.
    #[error("malformed CMS: more than {limit} {what}")]
    TooMany {
        /// What there were too many of.
        what: &'static str,
        /// How many we read at most.
        limit: usize,
    },
    /// A content type other than the one required.
    #[error("unexpected CMS content type")]
    ContentType,
    /// An algorithm we do not accept.
    #[error("{0}")]
    Algorithm(AlgorithmError),
    /// The signature or message digest did not verify, or the signer is missing.
    #[error("CMS signature verification failed: {0}")]
    Signature(&'static str),
    /// No RecipientInfo addresses our key.
    #[error("the request is not encrypted to this server's RA certificate")]
    WrongRecipient,
    /// Decrypting the content failed (deliberately indistinguishable causes).
    #[error("could not decrypt the enveloped content")]
    Decrypt,
    /// A key or randomness operation failed on our side.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

impl From<AlgorithmError> for CmsError {
    fn from(e: AlgorithmError) -> Self {
        match e {
            AlgorithmError::BadSignature => Self::Signature("bad signature"),
            AlgorithmError::Decrypt => Self::Decrypt,
            other => Self::Algorithm(other),
        }
    }
}

/// `IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER }`, encoded from a
/// certificate's raw issuer and serial bytes (never re-encoded names).
pub fn issuer_and_serial(cert: &crate::x509::Certificate<'_>) -> Vec<u8> {
    crate::der::writer::sequence(&[
        cert.issuer,
        &crate::der::writer::tlv(crate::der::tag::INTEGER, &[cert.serial]),
    ])
}
