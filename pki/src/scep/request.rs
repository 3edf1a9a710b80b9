//! Server side: decode and authenticate a pkiMessage, then open its pkcsPKIEnvelope.

use std::borrow::Cow;

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use super::message::{MessageType, Nonce, TransactionId};
use crate::algorithms::{AlgorithmError, ContentCipher, DigestAlg, KeyTransport};
use crate::cms::CmsError;
use crate::cms::enveloped_data::EnvelopedData;
use crate::cms::signed_data::SignedData;
use crate::der::{oid, tag, time};
use crate::keys::Decrypter;
use crate::random::Random;
use crate::x509::Certificate;

/// The SCEP attributes of a request (RFC 8894 §3.2.1).
#[derive(Debug, Clone)]
pub struct Header {
    /// messageType.
    pub message_type: MessageType,
    /// transactionID.
    pub transaction_id: TransactionId,
    /// senderNonce (echoed as our recipientNonce).
    pub sender_nonce: Nonce,
    /// The digest the client signed with, which the reply uses too; SHA-256 when the client's
    /// is refused ([`DecodeError::UnsupportedAlgorithm`]).
    pub digest: DigestAlg,
    /// signingTime, if the client sent one.
    pub signing_time: Option<i64>,
}

/// A request that cannot be answered with a CertRep, or whose signature failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not a SCEP pkiMessage we can parse (answer HTTP 400).
    #[error("{0}")]
    Malformed(String),
    /// Parsed, but the signer's signature does not verify. The header is unauthenticated; it is
    /// only echoed in a badMessageCheck CertRep.
    #[error("request signature: {reason}")]
    BadSignature {
        /// The unauthenticated header, to address the failure reply.
        header: Box<Header>,
        /// Why verification failed (for logs).
        reason: String,
    },
    /// Parsed, but signed with a digest or signature algorithm we do not accept (MD5,
    /// SHA-224, PSS with SHA-1, ...). The header is unauthenticated; it is only echoed in a
    /// badAlg CertRep.
    #[error("request algorithm: {reason}")]
    UnsupportedAlgorithm {
        /// The unauthenticated header, to address the failure reply.
        header: Box<Header>,
        /// Which algorithm was refused (for logs and the failInfoText).
        reason: String,
    },
}

impl From<CmsError> for DecodeError {
    fn from(e: CmsError) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// A pkiMessage whose outer signature has been verified.
#[derive(Debug)]
pub struct PkiMessage<'a> {
    /// The SCEP attributes.
    pub header: Header,
    /// The certificate the client signed with (self-signed for PKCSReq, ours for RenewalReq).
    pub signer_cert: Certificate<'a>,
    envelope: Option<Cow<'a, [u8]>>,
}

/// The decrypted messageData and how it was protected.
#[derive(Debug)]
pub struct OpenedRequest {
    /// Content cipher the client used (the CertRep mirrors it).
    pub cipher: ContentCipher,
    /// Key transport the client used (the CertRep mirrors it).
    pub transport: KeyTransport,
    /// The messageData: a CSR, IssuerAndSubject or IssuerAndSerialNumber.
    pub message_data: Zeroizing<Vec<u8>>,
}

fn string_attr(t: crate::der::Tlv<'_>) -> Result<&str, DecodeError> {
    if !matches!(
        t.tag,
        tag::PRINTABLE_STRING | tag::UTF8_STRING | tag::IA5_STRING
    ) {
        return Err(DecodeError::Malformed("attribute type".into()));
    }
    std::str::from_utf8(t.value).map_err(|_| DecodeError::Malformed("attribute text".into()))
}

impl<'a> PkiMessage<'a> {
    /// Parses `bytes` and verifies the signer over the raw received signed attributes.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let sd = SignedData::parse(bytes)?;
        if sd.content_type != oid::DATA {
            return Err(DecodeError::Malformed("eContentType is not id-data".into()));
        }
        let signer = match sd.signers.as_slice() {
            [one] => one,
            [] => return Err(DecodeError::Malformed("no SignerInfo".into())),
            _ => return Err(DecodeError::Malformed("more than one SignerInfo".into())),
        };
        let need = |o: &[u8], what: &str| {
            signer
                .attribute(o)
                .map_err(DecodeError::from)?
                .ok_or_else(|| DecodeError::Malformed(format!("{what} attribute missing")))
        };
        let mt = string_attr(need(oid::SCEP_MESSAGE_TYPE, "messageType")?)?;
        let message_type = MessageType::from_code(mt)
            .ok_or_else(|| DecodeError::Malformed(format!("unsupported messageType {mt:?}")))?;
        let transaction_id =
            TransactionId::from_tlv(need(oid::SCEP_TRANSACTION_ID, "transactionID")?)
                .map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let nonce = need(oid::SCEP_SENDER_NONCE, "senderNonce")?;
        if nonce.tag != tag::OCTET_STRING {
            return Err(DecodeError::Malformed("senderNonce type".into()));
        }
        let sender_nonce =
            Nonce::new(nonce.value).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let signing_time = match signer.attribute(oid::SIGNING_TIME)? {
            Some(t) => Some(
                time::parse_time(t.tag, t.value)
                    .map_err(|e| DecodeError::Malformed(e.to_string()))?,
            ),
            None => None,
        };
        let header = Header {
            message_type,
            transaction_id,
            sender_nonce,
            digest: signer.digest.clone().unwrap_or(DigestAlg::Sha256),
            signing_time,
        };
        let unsupported =
            |header: Header, e: &dyn std::fmt::Display| DecodeError::UnsupportedAlgorithm {
                header: Box::new(header),
                reason: e.to_string(),
            };
        if let Err(e) = &signer.digest {
            return Err(unsupported(header, e));
        }
        let Some(signer_cert) = sd.signer_certificate(signer) else {
            return Err(DecodeError::BadSignature {
                header: Box::new(header),
                reason: "signer certificate not included".into(),
            });
        };
        let content = sd.content.as_deref().unwrap_or(&[]);
        if let Err(e) = signer.verify(sd.content_type, content, signer_cert.spki) {
            if let CmsError::Algorithm(AlgorithmError::Unsupported(_)) = &e {
                return Err(unsupported(header, &e));
            }
            return Err(DecodeError::BadSignature {
                header: Box::new(header),
                reason: e.to_string(),
            });
        }
        Ok(Self {
            header,
            signer_cert,
            envelope: sd.content,
        })
    }

    /// Decrypts the pkcsPKIEnvelope addressed to `ra_cert`.
    pub fn open(
        &self,
        ra_cert: &Certificate<'_>,
        ra_key: &dyn Decrypter,
        allow_des: bool,
        rng: &dyn Random,
    ) -> Result<OpenedRequest, CmsError> {
        let env = self
            .envelope
            .as_deref()
            .ok_or_else(|| CmsError::Malformed("pkcsPKIEnvelope missing".into()))?;
        let ed = EnvelopedData::parse(env)?;
        let (cipher, transport, message_data) = ed.decrypt(ra_cert, ra_key, allow_des, rng)?;
        Ok(OpenedRequest {
            cipher,
            transport,
            message_data,
        })
    }

    /// Raw DER of the signer certificate.
    pub fn signer_cert_der(&self) -> &'a [u8] {
        self.signer_cert.raw
    }

    /// What makes a resent request a replay of an earlier one: SHA-256 over the message
    /// type, the signer certificate and the decrypted `message_data` (the CSR). The
    /// transactionID alone does not: strongSwan, micromdm scepclient and certmonger derive it
    /// from the key, so a same-key renewal reuses it and must not be answered with the
    /// certificate it renews. Nonces and the envelope are left out: a client that resends
    /// the same request builds them afresh.
    pub fn fingerprint(&self, message_data: &[u8]) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"scepd request fingerprint v1\0");
        ctx.update(&[self.header.message_type.code()]);
        // Length-prefixed, so the boundary between the two variable parts is unambiguous.
        let signer = self.signer_cert.raw;
        ctx.update(
            &u64::try_from(signer.len())
                .unwrap_or(u64::MAX)
                .to_be_bytes(),
        );
        ctx.update(signer);
        ctx.update(message_data);
        let mut out = [0; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}
