//! Server side: CertRep (RFC 8894 §3.3.2). SUCCESS carries a certs-only SignedData enveloped to
//! the requester's signer certificate in the cipher the request used; FAILURE and PENDING carry
//! no envelope. Always signed by the RA with SHA-256, fresh senderNonce, recipientNonce echoed.

use super::message::{FailInfo, MessageType, Nonce, PkiStatus};
use super::request::{Header, Request};
use crate::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use crate::cms::signed_data::SignedDataBuilder;
use crate::cms::{CmsError, attributes, certs_only, enveloped_data};
use crate::der::{oid, writer};
use crate::keys::Signer;
use crate::random::Random;
use crate::x509::Certificate;

/// A failure to report: failInfo plus a short failInfoText for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReply {
    /// failInfo.
    pub fail_info: FailInfo,
    /// failInfoText (short, generic; details go to logs).
    pub text: String,
}

/// Signs CertReps with the RA key.
pub struct CertRepSigner<'a> {
    /// The RA certificate (signer, carried in the reply).
    pub ra_cert: &'a Certificate<'a>,
    /// The RA key.
    pub ra_key: &'a dyn Signer,
    /// Randomness for nonces and CEKs.
    pub rng: &'a dyn Random,
    /// Current time for signingTime.
    pub now: i64,
}

impl CertRepSigner<'_> {
    fn sign(
        &self,
        header: &Header,
        status: PkiStatus,
        extra: Vec<Vec<u8>>,
        content: Option<&[u8]>,
    ) -> Result<Vec<u8>, CmsError> {
        let nonce = Nonce::random(self.rng).map_err(|_| CmsError::Crypto("random"))?;
        let mut attrs = vec![
            attributes::encode(oid::SCEP_TRANSACTION_ID, &header.transaction_id.encode()),
            attributes::encode(
                oid::SCEP_MESSAGE_TYPE,
                &writer::printable_string(&MessageType::CertRep.code().to_string()),
            ),
            attributes::encode(
                oid::SCEP_PKI_STATUS,
                &writer::printable_string(status.code()),
            ),
            attributes::encode(
                oid::SCEP_SENDER_NONCE,
                &writer::octet_string(nonce.as_bytes()),
            ),
            attributes::encode(
                oid::SCEP_RECIPIENT_NONCE,
                &writer::octet_string(header.sender_nonce.as_bytes()),
            ),
        ];
        attrs.extend(extra);
        SignedDataBuilder {
            content,
            certificates: vec![self.ra_cert.raw],
            signer_cert: self.ra_cert,
            signer: self.ra_key,
            digest: DigestAlg::Sha256,
            attributes: attrs,
            signing_time: Some(self.now),
        }
        .build()
    }

    /// SUCCESS with `certificates` (issued certificate first) and `crls` enveloped to `recipient`.
    /// Single DES is only mirrored when the request used it (the platform allowed it).
    pub fn success(
        &self,
        header: &Header,
        recipient: &Certificate<'_>,
        cipher: ContentCipher,
        transport: KeyTransport,
        certificates: &[&[u8]],
        crls: &[&[u8]],
    ) -> Result<Vec<u8>, CmsError> {
        let degenerate = certs_only::build(certificates, crls);
        let envelope = enveloped_data::build(&degenerate, recipient, transport, cipher, self.rng)?;
        self.sign(header, PkiStatus::Success, Vec::new(), Some(&envelope))
    }

    /// FAILURE with failInfo and failInfoText.
    pub fn failure(&self, header: &Header, reply: &FailureReply) -> Result<Vec<u8>, CmsError> {
        let extra = vec![
            attributes::encode(
                oid::SCEP_FAIL_INFO,
                &writer::printable_string(reply.fail_info.code()),
            ),
            attributes::encode(oid::SCEP_FAIL_INFO_TEXT, &writer::utf8_string(&reply.text)),
        ];
        self.sign(header, PkiStatus::Failure, extra, None)
    }

    /// PENDING (manual approval flows; scepd issues synchronously today).
    pub fn pending(&self, header: &Header) -> Result<Vec<u8>, CmsError> {
        self.sign(header, PkiStatus::Pending, Vec::new(), None)
    }
}

impl Request<'_> {
    /// SUCCESS with `certificates` (issued certificate first) and `crls`, enveloped to the
    /// requester's signer certificate in the cipher and key transport it used.
    pub fn success(
        &self,
        signer: &CertRepSigner<'_>,
        certificates: &[&[u8]],
        crls: &[&[u8]],
    ) -> Result<Vec<u8>, CmsError> {
        signer.success(
            self.header,
            self.signer_cert,
            self.cipher,
            self.transport,
            certificates,
            crls,
        )
    }

    /// FAILURE with failInfo and failInfoText.
    pub fn failure(
        &self,
        signer: &CertRepSigner<'_>,
        reply: &FailureReply,
    ) -> Result<Vec<u8>, CmsError> {
        signer.failure(self.header, reply)
    }

    /// PENDING.
    pub fn pending(&self, signer: &CertRepSigner<'_>) -> Result<Vec<u8>, CmsError> {
        signer.pending(self.header)
    }
}
