//! OCSP (RFC 6960): parse requests, build signed BasicOCSPResponses.
//!
//! ```text
//! OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT OPTIONAL }
//! TBSRequest ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, requestorName [1] EXPLICIT OPTIONAL,
//!     requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
//! Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT OPTIONAL }
//! CertID ::= SEQUENCE { hashAlgorithm, issuerNameHash OCTET STRING, issuerKeyHash OCTET STRING, serialNumber }
//! OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
//! BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm, signature BIT STRING,
//!     certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
//! ResponseData ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, responderID ResponderID, producedAt
//!     GeneralizedTime, responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT OPTIONAL }
//! SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, nextUpdate [0] EXPLICIT OPTIONAL, ... }
//! ```

use super::RevocationReason;
use crate::algorithms::{AlgorithmError, DigestAlg, PublicKeyInfo};
use crate::der::{DerError, Reader, oid, tag, time, writer};
use crate::issue::extensions;
use crate::keys::{KeyError, Signer};
use crate::x509::Certificate;

/// Most CertIDs we answer in one request (bounds work per request).
pub const MAX_REQUESTS: usize = 32;

/// Why a request could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// Not DER (answer `malformedRequest`).
    #[error("malformed OCSP request: {0}")]
    Der(#[from] DerError),
    /// A CertID hash algorithm we do not read (answer `malformedRequest`).
    #[error("malformed OCSP request: {0}")]
    Algorithm(#[from] AlgorithmError),
    /// DER, but not a request we answer (answer `malformedRequest`).
    #[error("malformed OCSP request: {0}")]
    Malformed(&'static str),
}

/// One requested certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    /// The hash used for the issuer hashes.
    pub hash: DigestAlg,
    /// Hash of the issuer's Name DER.
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's subjectPublicKey bits.
    pub issuer_key_hash: Vec<u8>,
    /// Serial magnitude.
    pub serial: Vec<u8>,
    /// The CertID exactly as received (echoed in the response).
    pub raw: Vec<u8>,
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    /// The certificates asked about.
    pub cert_ids: Vec<CertId>,
    /// The nonce extension's extnValue content, echoed verbatim (RFC 8954).
    pub nonce: Option<Vec<u8>>,
}

/// Builds an unsigned DER OCSPRequest (the client side: load tools, benchmarks, tests) asking
/// about `serial` (magnitude bytes) of `issuer`, with SHA-1 CertID hashes as most relying
/// parties send them, and a nonce extension when `nonce` is given.
pub fn build_request(
    issuer: &Certificate<'_>,
    serial: &[u8],
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, AlgorithmError> {
    let key = PublicKeyInfo::parse(issuer.spki)?.key;
    let cert_id = writer::sequence(&[
        &DigestAlg::Sha1.algorithm_identifier(),
        &writer::octet_string(DigestAlg::Sha1.digest(issuer.subject).as_ref()),
        &writer::octet_string(DigestAlg::Sha1.digest(key).as_ref()),
        &writer::unsigned_integer(serial),
    ]);
    let request_list = writer::sequence(&[&writer::sequence(&[&cert_id])]);
    let tbs = match nonce {
        None => writer::sequence(&[&request_list]),
        Some(n) => {
            let ext = extensions::extension(oid::OCSP_NONCE, false, &writer::octet_string(n));
            writer::sequence(&[
                &request_list,
                &writer::context(2, &[&writer::sequence(&[&ext])]),
            ])
        }
    };
    Ok(writer::sequence(&[&tbs]))
}

/// Parses a DER OCSPRequest.
pub fn parse_request(der: &[u8]) -> Result<OcspRequest, OcspError> {
    let mut outer = Reader::new(der);
    let req = outer.expect(tag::SEQUENCE)?;
    let mut r = req.reader();
    let tbs = r.expect(tag::SEQUENCE)?;
    let mut t = tbs.reader();
    t.optional(tag::context_constructed(0))?;
    t.optional(tag::context_constructed(1))?;
    let mut list = t.expect(tag::SEQUENCE)?.reader();
    let mut cert_ids = Vec::new();
    while !list.is_empty() {
        if cert_ids.len() == MAX_REQUESTS {
            return Err(OcspError::Malformed("too many CertIDs"));
        }
        let mut one = list.expect(tag::SEQUENCE)?.reader();
        let cid = one.expect(tag::SEQUENCE)?;
        let mut c = cid.reader();
        let hash = DigestAlg::from_algorithm_identifier(c.read()?)?;
        let issuer_name_hash = c.expect(tag::OCTET_STRING)?.value.to_vec();
        let issuer_key_hash = c.expect(tag::OCTET_STRING)?.value.to_vec();
        let serial = c.expect(tag::INTEGER)?.unsigned_integer()?.to_vec();
        cert_ids.push(CertId {
            hash,
            issuer_name_hash,
            issuer_key_hash,
            serial,
            raw: cid.raw.to_vec(),
        });
    }
    if cert_ids.is_empty() {
        return Err(OcspError::Malformed("empty requestList"));
    }
    let mut nonce = None;
    if let Some(exts) = t.optional(tag::context_constructed(2))? {
        let list =
            crate::x509::certificate::parse_extensions(exts.reader().expect(tag::SEQUENCE)?)?;
        nonce = list
            .iter()
            .find(|e| e.oid == oid::OCSP_NONCE)
            .map(|e| e.value.to_vec());
        if nonce.as_ref().is_some_and(|n| n.len() > 128) {
            return Err(OcspError::Malformed("nonce too long"));
        }
    }
    Ok(OcspRequest { cert_ids, nonce })
}

/// The CertID hashes of one issuer, for SHA-1 and SHA-256 requests.
#[derive(Debug, Clone)]
pub struct IssuerHashes {
    sha1: (Vec<u8>, Vec<u8>),
    sha256: (Vec<u8>, Vec<u8>),
    /// SHA-1 of the issuer key: the ResponderID byKey.
    pub key_sha1: Vec<u8>,
}

impl IssuerHashes {
    /// Precomputes the hashes of an issuing CA certificate.
    pub fn new(issuer: &Certificate<'_>) -> Result<Self, AlgorithmError> {
        let key = PublicKeyInfo::parse(issuer.spki)?.key;
        let h = |d: DigestAlg, b: &[u8]| d.digest(b).as_ref().to_vec();
        Ok(Self {
            sha1: (h(DigestAlg::Sha1, issuer.subject), h(DigestAlg::Sha1, key)),
            sha256: (
                h(DigestAlg::Sha256, issuer.subject),
                h(DigestAlg::Sha256, key),
            ),
            key_sha1: h(DigestAlg::Sha1, key),
        })
    }

    /// True when `id` names this issuer.
    pub fn matches(&self, id: &CertId) -> bool {
        let (n, k) = match id.hash {
            DigestAlg::Sha1 => &self.sha1,
            DigestAlg::Sha256 => &self.sha256,
            _ => return false,
        };
        *n == id.issuer_name_hash && *k == id.issuer_key_hash
    }
}

/// The status of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued by us and not revoked.
    Good,
    /// Revoked at this time for this reason.
    Revoked {
        /// Revocation time.
        at: i64,
        /// Reason, if not unspecified.
        reason: Option<RevocationReason>,
    },
    /// Not issued by the responder's CA, or unknown serial.
    Unknown,
}

/// One answer to sign.
#[derive(Debug, Clone)]
pub struct SingleResponse<'a> {
    /// The request's CertID, echoed.
    pub cert_id: &'a CertId,
    /// The status.
    pub status: CertStatus,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: Option<i64>,
}

/// OCSPResponseStatus values other than successful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStatus {
    /// malformedRequest (1)
    MalformedRequest = 1,
    /// internalError (2)
    InternalError = 2,
    /// tryLater (3)
    TryLater = 3,
    /// unauthorized (6): we are not authoritative for any CertID asked.
    Unauthorized = 6,
}

/// An unsigned error response.
pub fn error_response(status: ErrorStatus) -> Vec<u8> {
    writer::sequence(&[&writer::tlv(0x0a, &[&[status as u8]])])
}

/// Everything needed to sign a response.
pub struct Responder<'a> {
    /// SHA-1 of the signing key (ResponderID byKey).
    pub key_hash: &'a [u8],
    /// The signing key (issuing CA or delegated OCSP signer).
    pub key: &'a dyn Signer,
    /// Certificates to include (the delegated signer's certificate; empty when the CA signs).
    pub certs: &'a [&'a [u8]],
}

/// Builds a signed successful response.
pub fn build_response(
    r: &Responder<'_>,
    answers: &[SingleResponse<'_>],
    produced_at: i64,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, KeyError> {
    let mut singles = Vec::with_capacity(answers.len());
    for a in answers {
        let status = match a.status {
            CertStatus::Good => writer::tlv(tag::context_primitive(0), &[]),
            CertStatus::Unknown => writer::tlv(tag::context_primitive(2), &[]),
            CertStatus::Revoked { at, reason } => {
                let t = time::generalized_time(at);
                match reason {
                    Some(rs) => {
                        let reason = writer::context(0, &[&writer::tlv(0x0a, &[&[rs.code()]])]);
                        writer::tlv(tag::context_constructed(1), &[&t, &reason])
                    }
                    None => writer::tlv(tag::context_constructed(1), &[&t]),
                }
            }
        };
        let this = time::generalized_time(a.this_update);
        let next = a
            .next_update
            .map(|n| writer::context(0, &[&time::generalized_time(n)]));
        let mut parts: Vec<&[u8]> = vec![&a.cert_id.raw, &status, &this];
        if let Some(n) = &next {
            parts.push(n);
        }
        singles.push(writer::sequence(&parts));
    }
    let refs: Vec<&[u8]> = singles.iter().map(Vec::as_slice).collect();
    let responder_id = writer::context(2, &[&writer::octet_string(r.key_hash)]);
    let produced = time::generalized_time(produced_at);
    let responses = writer::sequence(&refs);
    let ext = nonce.map(|n| {
        writer::context(
            1,
            &[&writer::sequence(&[&extensions::extension(
                oid::OCSP_NONCE,
                false,
                n,
            )])],
        )
    });
    let mut tbs_parts: Vec<&[u8]> = vec![&responder_id, &produced, &responses];
    if let Some(e) = &ext {
        tbs_parts.push(e);
    }
    let tbs = writer::sequence(&tbs_parts);
    let digest = if r.key.signature_alg(DigestAlg::Sha256).is_ok() {
        DigestAlg::Sha256
    } else {
        DigestAlg::Sha384
    };
    let alg = r.key.signature_alg(digest)?.algorithm_identifier();
    let sig = r.key.sign(digest, &tbs)?;
    let certs =
        (!r.certs.is_empty()).then(|| writer::context(0, &[&writer::tlv(tag::SEQUENCE, r.certs)]));
    let mut basic_parts: Vec<&[u8]> = vec![&tbs, &alg];
    let bits = writer::bit_string(&sig);
    basic_parts.push(&bits);
    if let Some(c) = &certs {
        basic_parts.push(c);
    }
    let basic = writer::sequence(&basic_parts);
    let bytes = writer::sequence(&[&writer::oid(oid::OCSP_BASIC), &writer::octet_string(&basic)]);
    Ok(writer::sequence(&[
        &writer::tlv(0x0a, &[&[0]]),
        &writer::context(0, &[&bytes]),
    ]))
}
