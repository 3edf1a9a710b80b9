//! The crate's errors in one type, each layer's own enum inside it, and the one place they
//! become a SCEP failInfo.

use crate::algorithms::AlgorithmError;
use crate::cms::CmsError;
use crate::der::DerError;
use crate::issue::IssueError;
use crate::keys::KeyError;
use crate::pkcs10::CsrError;
use crate::random::RandomError;
use crate::scep::{DecodeError, FailInfo, OpenError};

/// Any error of this crate, by the layer it arose in.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// ASN.1 decoding.
    #[error(transparent)]
    Der(#[from] DerError),
    /// An algorithm refused or a signature that does not verify.
    #[error(transparent)]
    Algorithm(#[from] AlgorithmError),
    /// CMS structures.
    #[error(transparent)]
    Cms(#[from] CmsError),
    /// A PKCS#10 request.
    #[error(transparent)]
    Csr(#[from] CsrError),
    /// A pkiMessage's signature and attributes.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A pkiMessage's envelope and messageData.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Certificate issuance.
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// One of our keys.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl Error {
    /// True when the fault is ours (a key, randomness or signing failure, an expired issuer),
    /// not the request's: the server answers it as an internal error, not with a failInfo.
    pub fn is_ours(&self) -> bool {
        match self {
            Self::Key(_) | Self::Random(_) => true,
            Self::Cms(CmsError::Crypto(_)) => true,
            // OpenError says itself which of its cases have no failInfo.
            Self::Open(e) => e.fail_info().is_none(),
            Self::Issue(e) => matches!(e, IssueError::Signing | IssueError::IssuerExpired),
            _ => false,
        }
    }
}

/// The failInfo (RFC 8894 Table 5) a request's error is reported with. Meaningful for errors
/// the request caused ([`Error::is_ours`] false); ours map to badRequest, never shown
/// because the server answers them as internal errors.
impl From<&Error> for FailInfo {
    fn from(e: &Error) -> Self {
        match e {
            Error::Algorithm(AlgorithmError::Unsupported(_))
            | Error::Cms(CmsError::Algorithm(AlgorithmError::Unsupported(_)))
            | Error::Decode(DecodeError::UnsupportedAlgorithm { .. }) => Self::BadAlg,
            Error::Open(e) => match e.fail_info() {
                Some(f) => f,
                None => Self::BadRequest,
            },
            // An envelope or CSR that does not open or verify: one indistinguishable answer
            // (docs/architecture.md gotcha 5).
            Error::Decode(DecodeError::BadSignature { .. })
            | Error::Csr(_)
            | Error::Algorithm(_)
            | Error::Cms(_) => Self::BadMessageCheck,
            Error::Der(_)
            | Error::Decode(_)
            | Error::Issue(_)
            | Error::Key(_)
            | Error::Random(_) => Self::BadRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layer_maps_to_the_fail_info_its_clients_expect() {
        let cases: [(Error, FailInfo, bool); 7] = [
            (
                AlgorithmError::Unsupported("MD5".into()).into(),
                FailInfo::BadAlg,
                false,
            ),
            (
                OpenError::Envelope(CmsError::Decrypt).into(),
                FailInfo::BadMessageCheck,
                false,
            ),
            (
                OpenError::Csr(CsrError::Malformed("version")).into(),
                FailInfo::BadMessageCheck,
                false,
            ),
            (
                OpenError::Envelope(CmsError::Algorithm(AlgorithmError::Unsupported(
                    "DES".into(),
                )))
                .into(),
                FailInfo::BadAlg,
                false,
            ),
            (
                IssueError::Key("RSA-1024".into()).into(),
                FailInfo::BadRequest,
                false,
            ),
            (IssueError::Signing.into(), FailInfo::BadRequest, true),
            (
                OpenError::Envelope(CmsError::Crypto("random")).into(),
                FailInfo::BadRequest,
                true,
            ),
        ];
        for (e, fail_info, ours) in cases {
            assert_eq!((FailInfo::from(&e), e.is_ours()), (fail_info, ours), "{e}");
        }
    }
}
