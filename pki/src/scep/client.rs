//! Client side of SCEP: build PKCSReq / RenewalReq / CertPoll / GetCert and decode CertRep.
//! Our integration tests, benchmarks and load tool use this instead of an external client.

use super::message::{FailInfo, MessageType, Nonce, PkiStatus, TransactionId};
use crate::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use crate::cms::signed_data::{SignedData, SignedDataBuilder};
use crate::cms::{CmsError, attributes, certs_only, enveloped_data::EnvelopedData};
use crate::der::{oid, tag, writer};
use crate::issue::TbsCertificate;
use crate::issue::extensions::{self, KeyUsage};
use crate::keys::{Decrypter, KeyError, Signer};
use crate::random::Random;
use crate::x509::Certificate;

/// Errors on the client side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// CMS building or parsing failed.
    #[error(transparent)]
    Cms(#[from] CmsError),
    /// A key operation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The reply is not a valid CertRep for our request.
    #[error("invalid CertRep: {0}")]
    InvalidReply(String),
}

/// How a request is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    /// Content cipher for the envelope.
    pub cipher: ContentCipher,
    /// Key transport to the RA.
    pub transport: KeyTransport,
    /// Digest for the signature.
    pub digest: DigestAlg,
}

/// An encoded request and what the reply must echo.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// The pkiMessage DER.
    pub der: Vec<u8>,
    /// transactionID sent.
    pub transaction_id: TransactionId,
    /// senderNonce sent.
    pub sender_nonce: Nonce,
}

/// Apple's transactionID: uppercase hex SHA-1 of the SubjectPublicKeyInfo.
pub fn transaction_id_for_key(spki: &[u8]) -> Result<TransactionId, crate::der::DerError> {
    TransactionId::new(&crate::hex(DigestAlg::Sha1.digest(spki).as_ref()).to_ascii_uppercase())
}

/// A throwaway self-signed signer certificate for a PKCSReq (RFC 8894 §2.3), as devices make.
pub fn self_signed_signer(
    key: &dyn Signer,
    subject: &[u8],
    now: i64,
    rng: &dyn Random,
) -> Result<Vec<u8>, ClientError> {
    let mut serial = [0u8; 8];
    rng.fill(&mut serial).map_err(|_| KeyError::Operation)?;
    serial[0] = (serial[0] & 0x7f) | 1;
    let tbs = TbsCertificate {
        serial: &serial,
        issuer: subject,
        subject,
        not_before: now - 3600,
        not_after: now + 86_400,
        spki: key.public_key_der(),
        extensions: vec![
            KeyUsage(KeyUsage::DIGITAL_SIGNATURE | KeyUsage::KEY_ENCIPHERMENT).extension(),
            extensions::basic_constraints(false, None),
        ],
    };
    Ok(tbs.sign(key, DigestAlg::Sha256)?)
}

/// Everything needed to sign and encrypt one request.
pub struct RequestBuilder<'a> {
    /// PKCSReq, RenewalReq, CertPoll, GetCert or GetCRL.
    pub message_type: MessageType,
    /// The transactionID to use.
    pub transaction_id: TransactionId,
    /// The signer certificate (self-signed, or the existing certificate for renewal).
    pub signer_cert: &'a Certificate<'a>,
    /// The signer key.
    pub signer_key: &'a dyn Signer,
    /// The RA certificate to encrypt to.
    pub recipient: &'a Certificate<'a>,
    /// Algorithms.
    pub protection: Protection,
    /// Randomness.
    pub rng: &'a dyn Random,
    /// signingTime, if wanted.
    pub signing_time: Option<i64>,
}

impl RequestBuilder<'_> {
    /// Builds the pkiMessage around `message_data`.
    pub fn build(&self, message_data: &[u8]) -> Result<ClientRequest, ClientError> {
        let envelope = enveloped_data_for(message_data, self.recipient, self.protection, self.rng)?;
        self.sign_envelope(&envelope)
    }

    /// Signs an already built pkcsPKIEnvelope (e.g. one a test has altered) into the
    /// pkiMessage, with the SCEP attributes and a fresh senderNonce.
    pub fn sign_envelope(&self, envelope: &[u8]) -> Result<ClientRequest, ClientError> {
        let sender_nonce = Nonce::random(self.rng).map_err(|_| KeyError::Operation)?;
        let attrs = vec![
            attributes::encode(oid::SCEP_TRANSACTION_ID, &self.transaction_id.encode()),
            attributes::encode(
                oid::SCEP_MESSAGE_TYPE,
                &writer::printable_string(&self.message_type.code().to_string()),
            ),
            attributes::encode(
                oid::SCEP_SENDER_NONCE,
                &writer::octet_string(sender_nonce.as_bytes()),
            ),
        ];
        let der = SignedDataBuilder {
            content: Some(envelope),
            certificates: vec![self.signer_cert.raw],
            signer_cert: self.signer_cert,
            signer: self.signer_key,
            digest: self.protection.digest,
            attributes: attrs,
            signing_time: self.signing_time,
        }
        .build()?;
        Ok(ClientRequest {
            der,
            transaction_id: self.transaction_id.clone(),
            sender_nonce,
        })
    }
}

fn enveloped_data_for(
    data: &[u8],
    recipient: &Certificate<'_>,
    p: Protection,
    rng: &dyn Random,
) -> Result<Vec<u8>, ClientError> {
    Ok(crate::cms::enveloped_data::build(
        data,
        recipient,
        p.transport,
        p.cipher,
        rng,
    )?)
}

/// CertPoll messageData: `IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }`.
pub fn issuer_and_subject(issuer: &[u8], subject: &[u8]) -> Vec<u8> {
    writer::sequence(&[issuer, subject])
}

/// GetCert / GetCRL messageData: IssuerAndSerialNumber.
pub fn issuer_and_serial(issuer: &[u8], serial: &[u8]) -> Vec<u8> {
    writer::sequence(&[issuer, &writer::unsigned_integer(serial)])
}

/// The outcome of a CertRep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertRepOutcome {
    /// SUCCESS: the certificates (issued one first) and CRLs from the envelope.
    Success {
        /// Certificates, DER.
        certificates: Vec<Vec<u8>>,
        /// CRLs, DER.
        crls: Vec<Vec<u8>>,
    },
    /// FAILURE with failInfo and optional failInfoText.
    Failure {
        /// failInfo.
        fail_info: FailInfo,
        /// failInfoText.
        text: Option<String>,
    },
    /// PENDING.
    Pending,
}

/// Verifies a CertRep against the RA certificate and our request, and decrypts it.
pub fn decode_cert_rep(
    reply: &[u8],
    ra_cert: &Certificate<'_>,
    request: &ClientRequest,
    recipient_cert: &Certificate<'_>,
    recipient_key: &dyn Decrypter,
    rng: &dyn Random,
) -> Result<CertRepOutcome, ClientError> {
    let bad = |s: &str| ClientError::InvalidReply(s.to_owned());
    let sd = SignedData::parse(reply)?;
    let [signer] = sd.signers.as_slice() else {
        return Err(bad("expected exactly one signer"));
    };
    let cert = sd
        .signer_certificate(signer)
        .ok_or_else(|| bad("signer certificate missing"))?;
    if cert.raw != ra_cert.raw {
        return Err(bad("CertRep not signed by the RA certificate"));
    }
    signer.verify(
        sd.content_type,
        sd.content.as_deref().unwrap_or(&[]),
        ra_cert.spki,
    )?;
    let text = |o: &[u8]| -> Result<Option<String>, ClientError> {
        Ok(match signer.attribute(o)? {
            Some(t) => {
                Some(String::from_utf8(t.value.to_vec()).map_err(|_| bad("attribute text"))?)
            }
            None => None,
        })
    };
    if text(oid::SCEP_MESSAGE_TYPE)?.as_deref() != Some("3") {
        return Err(bad("messageType is not CertRep"));
    }
    if text(oid::SCEP_TRANSACTION_ID)?.as_deref() != Some(request.transaction_id.as_str()) {
        return Err(bad("transactionID mismatch"));
    }
    let rn = signer
        .attribute(oid::SCEP_RECIPIENT_NONCE)?
        .ok_or_else(|| bad("recipientNonce missing"))?;
    if rn.tag != tag::OCTET_STRING || rn.value != request.sender_nonce.as_bytes() {
        return Err(bad("recipientNonce does not match our senderNonce"));
    }
    let sn = signer
        .attribute(oid::SCEP_SENDER_NONCE)?
        .ok_or_else(|| bad("senderNonce missing"))?;
    if sn.value == request.sender_nonce.as_bytes() {
        return Err(bad("senderNonce is not fresh"));
    }
    let status = text(oid::SCEP_PKI_STATUS)?.ok_or_else(|| bad("pkiStatus missing"))?;
    match PkiStatus::from_code(&status) {
        Some(PkiStatus::Success) => {
            let env = sd
                .content
                .as_deref()
                .ok_or_else(|| bad("SUCCESS without envelope"))?;
            let ed = EnvelopedData::parse(env)?;
            let (_, _, inner) = ed.decrypt(recipient_cert, recipient_key, true, rng)?;
            let (certs, crls) = certs_only::parse(&inner)?;
            Ok(CertRepOutcome::Success {
                certificates: certs.into_iter().map(<[u8]>::to_vec).collect(),
                crls: crls.into_iter().map(<[u8]>::to_vec).collect(),
            })
        }
        Some(PkiStatus::Failure) => {
            let fi = text(oid::SCEP_FAIL_INFO)?.ok_or_else(|| bad("failInfo missing"))?;
            Ok(CertRepOutcome::Failure {
                fail_info: FailInfo::from_code(&fi).ok_or_else(|| bad("unknown failInfo"))?,
                text: text(oid::SCEP_FAIL_INFO_TEXT)?,
            })
        }
        Some(PkiStatus::Pending) => Ok(CertRepOutcome::Pending),
        None => Err(bad("unknown pkiStatus")),
    }
}
