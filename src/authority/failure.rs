//! How a PKIOperation fails: a [`ScepFailure`] is the authority's refusal, answered with a
//! signed CertRep FAILURE; an [`AuthorityError`] is everything that cannot be answered so
//! (http/error.rs gives each its HTTP status). Clients get a short generic reason; the detail
//! goes to the log.

use scepd_pki::scep::{DecodeError, FailInfo, FailureReply};

use crate::store::StoreError;

/// A failure inside a PKIOperation that is answered with a signed CertRep FAILURE.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ScepFailure {
    /// The request itself: its signature or algorithms refused, its envelope not for us or
    /// undecryptable, its CSR unparsable (the pki crate's error; `FailInfo::from` maps it).
    #[error(transparent)]
    Request(scepd_pki::Error),
    /// signingTime too far from our clock.
    #[error("signingTime off by {0} s")]
    Time(i64),
    /// The challenge was missing or wrong.
    #[error("challenge: {0}")]
    Challenge(String),
    /// A RenewalReq not signed by a current certificate of ours for the same subject.
    #[error("renewal: {0}")]
    Renewal(String),
    /// The certificate was issued but the delegated validator did not confirm it, so it was
    /// withdrawn and is not delivered.
    #[error("not confirmed by the validator: {0}")]
    NotConfirmed(String),
    /// Policy refused the request (key size, subject...).
    #[error("policy: {0}")]
    Policy(String),
    /// The device is suspended, deactivated or deleted.
    #[error("device is {0}")]
    Device(&'static str),
    /// The certificate of this transaction (replay, CertPoll) was revoked: never handed out.
    #[error("the certificate of this transaction is revoked")]
    Revoked,
    /// The transactionID was already used with another key.
    #[error("transactionID reused with a different key")]
    TransactionReuse,
    /// CertPoll/GetCert for something we do not have.
    #[error("not found: {0}")]
    NotFound(String),
    /// A message type we do not serve.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl ScepFailure {
    /// failInfo and the short client-facing text.
    pub fn reply(&self) -> FailureReply {
        let (fail_info, text) = match self {
            Self::Request(e) => request_reply(e),
            Self::Time(_) => (FailInfo::BadTime, "signingTime is too far from the CA's clock".to_owned()),
            Self::Challenge(_) => (FailInfo::BadRequest, "challenge password rejected".to_owned()),
            Self::Renewal(_) => (
                FailInfo::BadRequest,
                "renewal must be signed by a current, unrevoked certificate of this CA and keep its subject, names and device".to_owned(),
            ),
            Self::NotConfirmed(_) => (FailInfo::BadRequest, "the enrollment could not be confirmed; try again later".to_owned()),
            Self::Policy(t) => (FailInfo::BadRequest, t.clone()),
            Self::Device(state) => (
                FailInfo::BadRequest,
                format!("device is {state}: enrollment refused"),
            ),
            Self::Revoked => (
                FailInfo::BadRequest,
                "the certificate of this transaction was revoked: enroll with a new transactionID".to_owned(),
            ),
            Self::TransactionReuse => (FailInfo::BadRequest, "transactionID already used with a different key".to_owned()),
            Self::NotFound(t) => (FailInfo::BadCertId, t.clone()),
            Self::Unsupported(t) => (FailInfo::BadRequest, t.clone()),
        };
        FailureReply { fail_info, text }
    }
}

/// failInfo and text for a request the pki crate refused: a refused algorithm is named (the
/// client can pick another), a bad signature said so, and every envelope or CSR failure
/// answered alike (docs/architecture.md gotcha 5).
fn request_reply(e: &scepd_pki::Error) -> (FailInfo, String) {
    use scepd_pki::Error;
    let fail_info = FailInfo::from(e);
    let text = match (fail_info, e) {
        (FailInfo::BadAlg, Error::Decode(DecodeError::UnsupportedAlgorithm { reason, .. })) => {
            reason.to_string()
        }
        (FailInfo::BadAlg, e) => e.to_string(),
        (_, Error::Decode(DecodeError::BadSignature { .. })) => {
            "message signature did not verify".to_owned()
        }
        (FailInfo::BadMessageCheck, _) => "could not decrypt or parse the request".to_owned(),
        _ => "request refused".to_owned(),
    };
    (fail_info, text)
}

/// What a PKIOperation ends with when it cannot be answered with a CertRep.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorityError {
    /// Not a SCEP pkiMessage: nobody to address a CertRep to.
    #[error("not a SCEP pkiMessage: {0}")]
    NotScep(DecodeError),
    /// No platform with this id.
    #[error("unknown SCEP platform")]
    UnknownPlatform,
    /// The platform changed under the request more often than it is processed again.
    #[error("the platform's settings are changing: retry")]
    PlatformChanging,
    /// The store cannot be reached, or a CRL is not yet published: retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// One of our own operations failed (key, signing, randomness).
    #[error(transparent)]
    Pki(scepd_pki::Error),
    /// Our own failure otherwise (the store, inconsistent records).
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AuthorityError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable(e.to_string()),
            e => Self::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use scepd_pki::algorithms::{AlgorithmError, DigestAlg};
    use scepd_pki::cms::CmsError;
    use scepd_pki::pkcs10::CsrError;
    use scepd_pki::scep::request::Header;
    use scepd_pki::scep::{MessageType, Nonce, OpenError, TransactionId};

    use super::*;

    fn header() -> Box<Header> {
        Box::new(Header {
            message_type: MessageType::PkcsReq,
            transaction_id: TransactionId::new("t1").unwrap(),
            sender_nonce: Nonce::new(&[7; 16]).unwrap(),
            digest: DigestAlg::Sha256,
            signing_time: None,
        })
    }

    /// A refused algorithm is named to the client; a bad signature is said so; an envelope
    /// that does not open and a CSR that does not parse get one identical answer (gotcha 5).
    #[test]
    fn request_refusals_answer_with_the_documented_fail_info_and_text() {
        let reply = |e: scepd_pki::Error| ScepFailure::Request(e).reply();
        let md5 = reply(
            DecodeError::UnsupportedAlgorithm {
                header: header(),
                reason: AlgorithmError::Unsupported("MD5".into()),
            }
            .into(),
        );
        assert_eq!(md5.fail_info, FailInfo::BadAlg);
        assert_eq!(md5.text, "unsupported algorithm MD5");
        let signature = reply(
            DecodeError::BadSignature {
                header: header(),
                reason: CmsError::Signature("digest mismatch"),
            }
            .into(),
        );
        assert_eq!(
            (signature.fail_info, signature.text.as_str()),
            (
                FailInfo::BadMessageCheck,
                "message signature did not verify"
            )
        );
        let undecryptable = reply(OpenError::Envelope(CmsError::Decrypt).into());
        let bad_csr = reply(OpenError::Csr(CsrError::Malformed("version")).into());
        let not_ours = reply(OpenError::Envelope(CmsError::WrongRecipient).into());
        assert_eq!(undecryptable, bad_csr);
        assert_eq!(undecryptable, not_ours);
        assert_eq!(
            (undecryptable.fail_info, undecryptable.text.as_str()),
            (
                FailInfo::BadMessageCheck,
                "could not decrypt or parse the request"
            )
        );
        let des = reply(
            OpenError::Envelope(CmsError::Algorithm(AlgorithmError::Unsupported(
                "single DES".into(),
            )))
            .into(),
        );
        assert_eq!(des.fail_info, FailInfo::BadAlg);
        assert!(des.text.contains("single DES"), "{}", des.text);
    }
}
