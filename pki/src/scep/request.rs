//! Server side of a PKIOperation, parsed once:
//! [`Envelope::decode`] verifies the pkiMessage's signature and reads its attributes;
//! [`Envelope::open`] decrypts the pkcsPKIEnvelope with whichever RA it names;
//! [`Opened::request`] parses the messageData its messageType calls for. The CertRep is then
//! built from the [`Request`] (`response.rs`).

use std::borrow::Cow;

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use super::message::{FailInfo, MessageType, Nonce, TransactionId};
use crate::algorithms::{AlgorithmError, ContentCipher, DigestAlg, KeyTransport, PublicKeyInfo};
use crate::cms::CmsError;
use crate::cms::enveloped_data::EnvelopedData;
use crate::cms::signed_data::SignedData;
use crate::der::{DerError, Reader, Tlv, oid, tag, time};
use crate::keys::Decrypter;
use crate::pkcs10::{Csr, CsrError};
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

/// A request that cannot be answered with a CertRep ([`DecodeError::header`] is `None`: no
/// one to address a reply to), or whose signature or algorithm is refused.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The outer SignedData does not parse.
    #[error(transparent)]
    Cms(#[from] CmsError),
    /// A SCEP attribute is missing, repeated or not the value its type allows.
    #[error("{attribute} attribute: {reason}")]
    Attribute {
        /// Which attribute.
        attribute: &'static str,
        /// What is wrong with it.
        reason: DerError,
    },
    /// A SignedData, but not one a SCEP request is carried in.
    #[error("not a SCEP pkiMessage: {0}")]
    NotScep(&'static str),
    /// A messageType we do not serve (e.g. the obsolete UpdateReq, 18).
    #[error("unsupported messageType")]
    MessageType,
    /// Parsed, but the signer's signature does not verify. The header is unauthenticated; it is
    /// only echoed in a badMessageCheck CertRep.
    #[error("request signature: {reason}")]
    BadSignature {
        /// The unauthenticated header, to address the failure reply.
        header: Box<Header>,
        /// Why verification failed (for logs).
        reason: CmsError,
    },
    /// Parsed, but signed with a digest, signature algorithm or key we do not accept (MD5,
    /// SHA-224, PSS with SHA-1, an EC signer the reply cannot be encrypted to...). The header
    /// is unauthenticated; it is only echoed in a badAlg CertRep.
    #[error("request algorithm: {reason}")]
    UnsupportedAlgorithm {
        /// The unauthenticated header, to address the failure reply.
        header: Box<Header>,
        /// Which algorithm was refused (for logs and the failInfoText).
        reason: AlgorithmError,
    },
}

impl DecodeError {
    /// The header a failure CertRep is addressed by, when the message got that far.
    pub fn header(&self) -> Option<&Header> {
        match self {
            Self::BadSignature { header, .. } | Self::UnsupportedAlgorithm { header, .. } => {
                Some(header)
            }
            _ => None,
        }
    }
}

/// A pkiMessage whose outer signature has been verified, its pkcsPKIEnvelope still sealed.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// The SCEP attributes.
    pub header: Header,
    /// The certificate the client signed with (self-signed for PKCSReq, ours for RenewalReq).
    pub signer_cert: Certificate<'a>,
    envelope: Option<Cow<'a, [u8]>>,
}

/// One certificate and key a request may be encrypted to.
pub struct Recipient<'r> {
    /// The certificate the client may have encrypted to.
    pub cert: Certificate<'r>,
    /// Its private key.
    pub key: &'r dyn Decrypter,
}

/// A decrypted pkcsPKIEnvelope: the plaintext messageData and how it was protected.
#[derive(Debug)]
pub struct Opened<'e> {
    envelope: &'e Envelope<'e>,
    /// Content cipher the client used (the CertRep mirrors it).
    pub cipher: ContentCipher,
    /// Key transport the client used (the CertRep mirrors it).
    pub transport: KeyTransport,
    /// Which of the recipients offered to [`Envelope::open`] the client encrypted to.
    pub recipient: usize,
    message_data: Zeroizing<Vec<u8>>,
}

/// Why an envelope's content is not a request we can act on. Every case but a refused
/// algorithm answers badMessageCheck, alike (docs/architecture.md gotcha 5).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The envelope did not open: not ours, undecryptable, malformed or a refused cipher.
    #[error(transparent)]
    Envelope(#[from] CmsError),
    /// A PKCSReq or RenewalReq whose CSR does not parse or verify.
    #[error(transparent)]
    Csr(#[from] CsrError),
    /// The messageData is not the structure its messageType calls for.
    #[error("messageData: {0}")]
    MessageData(DerError),
}

impl OpenError {
    /// failInfo for the CertRep; `None` when the fault is ours (a key or randomness failure).
    pub fn fail_info(&self) -> Option<FailInfo> {
        match self {
            Self::Envelope(CmsError::Crypto(_)) => None,
            Self::Envelope(CmsError::Algorithm(_)) => Some(FailInfo::BadAlg),
            _ => Some(FailInfo::BadMessageCheck),
        }
    }
}

/// The messageData, typed by messageType (RFC 8894 §3.2.2).
#[derive(Debug)]
pub enum MessageData<'o> {
    /// PKCSReq and RenewalReq: the CSR, verified.
    Csr(Box<Csr<'o>>),
    /// CertPoll: `IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }`.
    IssuerAndSubject {
        /// The issuer Name TLV.
        issuer: &'o [u8],
        /// The subject Name TLV.
        subject: &'o [u8],
    },
    /// GetCert and GetCRL: `IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER }`.
    IssuerAndSerial {
        /// The issuer Name TLV.
        issuer: &'o [u8],
        /// The serial magnitude.
        serial: &'o [u8],
    },
}

/// A request opened and parsed: what the server acts on and what its CertRep mirrors.
#[derive(Debug)]
pub struct Request<'o> {
    /// The SCEP attributes.
    pub header: &'o Header,
    /// The certificate the client signed with; a SUCCESS is enveloped to its key.
    pub signer_cert: &'o Certificate<'o>,
    /// Content cipher the client used.
    pub cipher: ContentCipher,
    /// Key transport the client used.
    pub transport: KeyTransport,
    /// Which recipient the client encrypted to ([`Opened::recipient`]).
    pub recipient: usize,
    /// The messageData as decrypted.
    pub message_data: &'o [u8],
    /// The messageData, parsed.
    pub data: MessageData<'o>,
}

fn attribute_error(attribute: &'static str) -> impl Fn(DerError) -> DecodeError {
    move |reason| DecodeError::Attribute { attribute, reason }
}

fn string_attr<'t>(t: Tlv<'t>, attribute: &'static str) -> Result<&'t str, DecodeError> {
    let bad = |what| attribute_error(attribute)(DerError::Malformed(what));
    if !matches!(
        t.tag,
        tag::PRINTABLE_STRING | tag::UTF8_STRING | tag::IA5_STRING
    ) {
        return Err(bad("not a string type"));
    }
    std::str::from_utf8(t.value).map_err(|_| bad("not UTF-8"))
}

impl<'a> Envelope<'a> {
    /// Parses `bytes` and verifies the signer over the raw received signed attributes.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let sd = SignedData::parse(bytes)?;
        if sd.content_type != oid::DATA {
            return Err(DecodeError::NotScep("eContentType is not id-data"));
        }
        let signer = match sd.signers.as_slice() {
            [one] => one,
            [] => return Err(DecodeError::NotScep("no SignerInfo")),
            _ => return Err(DecodeError::NotScep("more than one SignerInfo")),
        };
        let need = |o: &[u8], attribute: &'static str| {
            signer.attribute(o)?.ok_or(DecodeError::Attribute {
                attribute,
                reason: DerError::Malformed("missing"),
            })
        };
        let mt = string_attr(need(oid::SCEP_MESSAGE_TYPE, "messageType")?, "messageType")?;
        let message_type = MessageType::from_code(mt).ok_or(DecodeError::MessageType)?;
        let transaction_id =
            TransactionId::from_tlv(need(oid::SCEP_TRANSACTION_ID, "transactionID")?)
                .map_err(attribute_error("transactionID"))?;
        let nonce = need(oid::SCEP_SENDER_NONCE, "senderNonce")?;
        if nonce.tag != tag::OCTET_STRING {
            return Err(attribute_error("senderNonce")(DerError::Malformed(
                "not an OCTET STRING",
            )));
        }
        let sender_nonce = Nonce::new(nonce.value).map_err(attribute_error("senderNonce"))?;
        let signing_time = match signer.attribute(oid::SIGNING_TIME)? {
            Some(t) => {
                Some(time::parse_time(t.tag, t.value).map_err(attribute_error("signingTime"))?)
            }
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
            |header: Header, reason: AlgorithmError| DecodeError::UnsupportedAlgorithm {
                header: Box::new(header),
                reason,
            };
        if let Err(e) = &signer.digest {
            return Err(unsupported(header, e.clone()));
        }
        let Some(signer_cert) = sd.signer_certificate(signer) else {
            return Err(DecodeError::BadSignature {
                header: Box::new(header),
                reason: CmsError::Signature("signer certificate not included"),
            });
        };
        let content = sd.content.as_deref().unwrap_or(&[]);
        if let Err(e) = signer.verify(sd.content_type, content, signer_cert.spki) {
            if let CmsError::Algorithm(a @ AlgorithmError::Unsupported(_)) = e {
                return Err(unsupported(header, a));
            }
            return Err(DecodeError::BadSignature {
                header: Box::new(header),
                reason: e,
            });
        }
        // Every successful reply is enveloped to the signer certificate's key (RFC 8894
        // §3.3.2), which takes RSA key transport: refuse other keys before anything is issued.
        let signer_rsa =
            PublicKeyInfo::parse(signer_cert.spki).is_ok_and(|k| k.rsa_bits().is_some());
        if !signer_rsa {
            return Err(unsupported(
                header,
                AlgorithmError::BadKey(
                    "the signer certificate's key must be RSA: the reply is encrypted to it",
                ),
            ));
        }
        Ok(Self {
            header,
            signer_cert,
            envelope: sd.content,
        })
    }

    /// Decrypts the pkcsPKIEnvelope with the first of `recipients` it is addressed to. The
    /// envelope is parsed once, whichever recipient it names.
    pub fn open(
        &self,
        recipients: &[Recipient<'_>],
        allow_des: bool,
        rng: &dyn Random,
    ) -> Result<Opened<'_>, CmsError> {
        let env = self
            .envelope
            .as_deref()
            .ok_or(CmsError::Malformed("pkcsPKIEnvelope missing"))?;
        let ed = EnvelopedData::parse(env)?;
        for (index, r) in recipients.iter().enumerate() {
            match ed.decrypt(&r.cert, r.key, allow_des, rng) {
                Err(CmsError::WrongRecipient) => continue,
                Err(e) => return Err(e),
                Ok((cipher, transport, message_data)) => {
                    return Ok(Opened {
                        envelope: self,
                        cipher,
                        transport,
                        recipient: index,
                        message_data,
                    });
                }
            }
        }
        Err(CmsError::WrongRecipient)
    }

    /// Raw DER of the signer certificate.
    pub fn signer_cert_der(&self) -> &'a [u8] {
        self.signer_cert.raw
    }
}

impl Opened<'_> {
    /// The decrypted messageData.
    pub fn message_data(&self) -> &[u8] {
        &self.message_data
    }

    /// Parses the messageData as the messageType calls for (a CSR is verified here).
    pub fn request(&self) -> Result<Request<'_>, OpenError> {
        let header = &self.envelope.header;
        let data: &[u8] = &self.message_data;
        let parsed = match header.message_type {
            MessageType::PkcsReq | MessageType::RenewalReq => {
                MessageData::Csr(Box::new(Csr::parse_and_verify(data)?))
            }
            MessageType::CertPoll => {
                let (issuer, subject) = two_fields(data, tag::SEQUENCE)?;
                MessageData::IssuerAndSubject {
                    issuer: issuer.raw,
                    subject: subject.raw,
                }
            }
            MessageType::GetCert | MessageType::GetCrl => {
                let (issuer, serial) = two_fields(data, tag::INTEGER)?;
                MessageData::IssuerAndSerial {
                    issuer: issuer.raw,
                    serial: serial.unsigned_integer().map_err(OpenError::MessageData)?,
                }
            }
            MessageType::CertRep => {
                return Err(OpenError::MessageData(DerError::Malformed(
                    "CertRep is a response, not a request",
                )));
            }
        };
        Ok(Request {
            header,
            signer_cert: &self.envelope.signer_cert,
            cipher: self.cipher,
            transport: self.transport,
            recipient: self.recipient,
            message_data: data,
            data: parsed,
        })
    }
}

/// `SEQUENCE { Name, <second> }`: the two messageData structures besides a CSR.
fn two_fields(data: &[u8], second: u8) -> Result<(Tlv<'_>, Tlv<'_>), OpenError> {
    let seq = Reader::new(data)
        .expect(tag::SEQUENCE)
        .map_err(OpenError::MessageData)?;
    let mut r = seq.reader();
    let name = r.expect(tag::SEQUENCE).map_err(OpenError::MessageData)?;
    let other = r.expect(second).map_err(OpenError::MessageData)?;
    Ok((name, other))
}

impl Request<'_> {
    /// What makes a resent request a replay of an earlier one: SHA-256 over the message
    /// type, the signer certificate and the decrypted messageData (the CSR). The
    /// transactionID alone does not: strongSwan, micromdm scepclient and certmonger derive it
    /// from the key, so a same-key renewal reuses it and must not be answered with the
    /// certificate it renews. Nonces and the envelope are left out: a client that resends
    /// the same request builds them afresh.
    pub fn fingerprint(&self) -> [u8; 32] {
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
        ctx.update(self.message_data);
        let mut out = [0; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}
