//! SignedData: parse and verify what clients send, build what we answer.
//!
//! ```text
//! SignedData ::= SEQUENCE { version, digestAlgorithms SET OF, encapContentInfo EncapsulatedContentInfo,
//!     certificates [0] IMPLICIT CertificateSet OPTIONAL, crls [1] IMPLICIT OPTIONAL, signerInfos SET OF SignerInfo }
//! SignerInfo ::= SEQUENCE { version, sid SignerIdentifier, digestAlgorithm, signedAttrs [0] IMPLICIT OPTIONAL,
//!     signatureAlgorithm, signature OCTET STRING, unsignedAttrs [1] IMPLICIT OPTIONAL }
//! ```

use std::borrow::Cow;

use super::attributes::{self, Attribute};
use super::{CmsError, issuer_and_serial};
use crate::algorithms::{AlgorithmError, DigestAlg, SignatureAlg, verify_signature};
use crate::der::{Reader, Tlv, oid, tag, writer};
use crate::keys::Signer;
use crate::x509::Certificate;

/// Unwraps `ContentInfo ::= SEQUENCE { contentType, content [0] EXPLICIT }`, checking the type;
/// returns the raw inner content TLV.
pub fn unwrap_content_info<'a>(bytes: &'a [u8], want: &[u8]) -> Result<&'a [u8], CmsError> {
    let mut outer = Reader::new(bytes);
    let mut ci = outer.expect(tag::SEQUENCE)?.reader();
    if ci.expect(tag::OID)?.value != want {
        return Err(CmsError::ContentType);
    }
    let explicit = ci.expect(tag::context_constructed(0))?;
    Ok(explicit.reader().read()?.raw)
}

/// How a SignerInfo names its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerId<'a> {
    /// Raw issuer Name TLV and serial INTEGER content.
    IssuerSerial(&'a [u8], &'a [u8]),
    /// subjectKeyIdentifier.
    KeyId(&'a [u8]),
}

/// One signer of a SignedData.
#[derive(Debug, Clone)]
pub struct SignerInfo<'a> {
    /// Which certificate signed.
    pub sid: SignerId<'a>,
    /// The digest algorithm, or why it is refused (MD5, unknown). A refused digest leaves the
    /// signer readable, so a SCEP server can still read the attributes and answer badAlg.
    pub digest: Result<DigestAlg, AlgorithmError>,
    /// Raw `[0] IMPLICIT` signed attributes, as received.
    pub signed_attrs_raw: Option<&'a [u8]>,
    /// The signed attributes, parsed.
    pub signed_attrs: Vec<Attribute<'a>>,
    sig_alg: Tlv<'a>,
    signature: Cow<'a, [u8]>,
}

/// A parsed SignedData.
#[derive(Debug, Clone)]
pub struct SignedData<'a> {
    /// eContentType OID content octets.
    pub content_type: &'a [u8],
    /// eContent, joined if it was BER-segmented.
    pub content: Option<Cow<'a, [u8]>>,
    /// Raw certificates carried in the message.
    pub certificates: Vec<&'a [u8]>,
    /// The signers.
    pub signers: Vec<SignerInfo<'a>>,
}

/// Most certificates accepted in one SignedData. SCEP messages carry one to three (signer, maybe
/// its chain); a cap bounds the parsing and lookup work an attacker can demand per request.
pub const MAX_CERTIFICATES: usize = 16;
/// Most SignerInfos accepted in one SignedData (SCEP needs exactly one).
pub const MAX_SIGNERS: usize = 4;

impl<'a> SignedData<'a> {
    /// Parses a ContentInfo holding SignedData.
    pub fn parse(content_info: &'a [u8]) -> Result<Self, CmsError> {
        let sd = unwrap_content_info(content_info, oid::SIGNED_DATA)?;
        let mut r = Reader::new(sd).expect(tag::SEQUENCE)?.reader();
        r.expect(tag::INTEGER)?;
        r.expect(tag::SET)?;
        let mut eci = r.expect(tag::SEQUENCE)?.reader();
        let content_type = eci.expect(tag::OID)?.value;
        let content = match eci.optional(tag::context_constructed(0))? {
            Some(e) => Some(e.reader().read()?.octets()?),
            None => None,
        };
        let mut certificates = Vec::new();
        if let Some(c) = r.optional(tag::context_constructed(0))? {
            let mut cr = c.reader();
            while !cr.is_empty() {
                let cert = cr.read()?;
                // CertificateChoices: only plain certificates are of use to us.
                if cert.tag == tag::SEQUENCE {
                    if certificates.len() == MAX_CERTIFICATES {
                        return Err(CmsError::TooMany {
                            what: "certificates",
                            limit: MAX_CERTIFICATES,
                        });
                    }
                    certificates.push(cert.raw);
                }
            }
        }
        r.optional(tag::context_constructed(1))?;
        let mut signers = Vec::new();
        let mut sr = r.expect(tag::SET)?.reader();
        while !sr.is_empty() {
            if signers.len() == MAX_SIGNERS {
                return Err(CmsError::TooMany {
                    what: "SignerInfos",
                    limit: MAX_SIGNERS,
                });
            }
            signers.push(parse_signer_info(sr.read()?)?);
        }
        Ok(Self {
            content_type,
            content,
            certificates,
            signers,
        })
    }

    /// Finds the certificate a signer names among the carried certificates.
    pub fn signer_certificate(&self, signer: &SignerInfo<'a>) -> Option<Certificate<'a>> {
        self.certificates.iter().find_map(|raw| {
            let cert = Certificate::parse(raw).ok()?;
            signer.sid.names(&cert).then_some(cert)
        })
    }
}

impl<'a> SignerId<'a> {
    /// Parses `SignerIdentifier` / `RecipientIdentifier`: IssuerAndSerialNumber or
    /// `[0] IMPLICIT SubjectKeyIdentifier` (RFC 5652 §5.3, §6.2.1).
    pub fn parse(t: Tlv<'a>) -> Result<Self, CmsError> {
        match t.tag {
            tag::SEQUENCE => {
                let mut s = t.reader();
                let issuer = s.expect(tag::SEQUENCE)?.raw;
                // Serials over RFC 5280's 20 octets occur (sscep: 32): accept any length here.
                let serial = s.expect(tag::INTEGER)?.value;
                Ok(Self::IssuerSerial(issuer, serial))
            }
            t2 if t2 == tag::context_primitive(0) => Ok(Self::KeyId(t.value)),
            _ => Err(CmsError::Malformed("signer or recipient identifier")),
        }
    }

    /// True when this identifier names `cert` (serials compared without leading zeros).
    pub fn names(&self, cert: &Certificate<'_>) -> bool {
        match *self {
            Self::IssuerSerial(issuer, serial) => {
                cert.issuer == issuer
                    && cert.serial_magnitude() == crate::der::strip_leading_zeros(serial)
            }
            Self::KeyId(kid) => crate::x509::certificate::subject_key_id(cert) == Some(kid),
        }
    }
}

fn parse_signer_info(t: Tlv<'_>) -> Result<SignerInfo<'_>, CmsError> {
    let mut r = t.expect(tag::SEQUENCE)?.reader();
    r.expect(tag::INTEGER)?;
    let sid_tlv = r.read()?;
    let sid = SignerId::parse(sid_tlv)?;
    let digest_alg = r.read()?;
    // Malformed is malformed; a well-formed but refused digest is kept as the refusal.
    digest_alg.expect(tag::SEQUENCE)?;
    let digest = DigestAlg::from_algorithm_identifier(digest_alg);
    let mut signed_attrs_raw = None;
    let mut signed_attrs = Vec::new();
    if let Some(a) = r.optional(tag::context_constructed(0))? {
        signed_attrs_raw = Some(a.raw);
        signed_attrs = attributes::parse_set(a)?;
    }
    let sig_alg = r.expect(tag::SEQUENCE)?;
    let signature = r.read()?;
    if signature.tag & 0x1f != tag::OCTET_STRING {
        return Err(CmsError::Malformed("signature"));
    }
    Ok(SignerInfo {
        sid,
        digest,
        signed_attrs_raw,
        signed_attrs,
        sig_alg,
        signature: signature.octets()?,
    })
}

impl SignerInfo<'_> {
    /// Verifies this signer over `content` with the signer certificate's key.
    ///
    /// With signed attributes (RFC 5652 §5.4) the contentType and messageDigest attributes must
    /// match, and the signature covers the attributes re-tagged as SET (0x31) over the exact
    /// received bytes (docs/architecture.md gotchas 1–2).
    pub fn verify(
        &self,
        content_type: &[u8],
        content: &[u8],
        signer_spki: &[u8],
    ) -> Result<(), CmsError> {
        let digest = self.digest.clone().map_err(CmsError::Algorithm)?;
        let alg = SignatureAlg::for_signer_info(self.sig_alg, digest)?;
        let Some(raw) = self.signed_attrs_raw else {
            return verify_signature(signer_spki, alg, content, &self.signature)
                .map_err(Into::into);
        };
        let ct = attributes::single_value(&self.signed_attrs, oid::CONTENT_TYPE)?
            .ok_or(CmsError::Signature("contentType attribute missing"))?;
        if ct.tag != tag::OID || ct.value != content_type {
            return Err(CmsError::Signature("contentType attribute mismatch"));
        }
        let md = attributes::single_value(&self.signed_attrs, oid::MESSAGE_DIGEST)?
            .ok_or(CmsError::Signature("messageDigest attribute missing"))?;
        let digest = digest.digest(content);
        if md.tag != tag::OCTET_STRING
            || aws_lc_rs::constant_time::verify_slices_are_equal(md.value, digest.as_ref()).is_err()
        {
            return Err(CmsError::Signature("messageDigest mismatch"));
        }
        let mut to_verify = raw.to_vec();
        to_verify[0] = tag::SET;
        verify_signature(signer_spki, alg, &to_verify, &self.signature).map_err(Into::into)
    }

    /// The signed attribute value with this OID (exactly one value), if present.
    pub fn attribute(&self, oid: &[u8]) -> Result<Option<Tlv<'_>>, CmsError> {
        Ok(attributes::single_value(&self.signed_attrs, oid)?)
    }
}

/// What to sign into a SignedData.
pub struct SignedDataBuilder<'a> {
    /// eContent (as id-data), or None for a content-less message (SCEP FAILURE/PENDING).
    pub content: Option<&'a [u8]>,
    /// Certificates to carry (the signer's first).
    pub certificates: Vec<&'a [u8]>,
    /// The signer's certificate (for IssuerAndSerialNumber).
    pub signer_cert: &'a Certificate<'a>,
    /// The signing key.
    pub signer: &'a dyn Signer,
    /// Digest for messageDigest and the signature.
    pub digest: DigestAlg,
    /// Extra signed attributes, each an encoded Attribute.
    pub attributes: Vec<Vec<u8>>,
    /// signingTime (unix seconds), if any.
    pub signing_time: Option<i64>,
}

impl SignedDataBuilder<'_> {
    /// Encodes and signs; returns the ContentInfo DER.
    pub fn build(&self) -> Result<Vec<u8>, CmsError> {
        let content = self.content.unwrap_or(&[]);
        let digest = self.digest.digest(content);
        let mut attrs = self.attributes.clone();
        attrs.push(attributes::encode(
            oid::CONTENT_TYPE,
            &writer::oid(oid::DATA),
        ));
        attrs.push(attributes::encode(
            oid::MESSAGE_DIGEST,
            &writer::octet_string(digest.as_ref()),
        ));
        if let Some(t) = self.signing_time {
            attrs.push(attributes::encode(
                oid::SIGNING_TIME,
                &crate::der::time::x509_time(t),
            ));
        }
        let attr_refs: Vec<&[u8]> = attrs.iter().map(Vec::as_slice).collect();
        let mut signed_attrs = writer::set_of(&attr_refs);
        let alg = self
            .signer
            .signature_alg(self.digest)
            .map_err(|_| CmsError::Crypto("signer cannot use this digest"))?;
        let signature = self
            .signer
            .sign(self.digest, &signed_attrs)
            .map_err(|_| CmsError::Crypto("signing failed"))?;
        signed_attrs[0] = tag::context_constructed(0);
        let digest_alg = self.digest.algorithm_identifier();
        let signer_info = writer::sequence(&[
            &writer::small_integer(1),
            &issuer_and_serial(self.signer_cert),
            &digest_alg,
            &signed_attrs,
            &alg.signer_info_identifier(),
            &writer::octet_string(&signature),
        ]);
        let econtent = self
            .content
            .map(|c| writer::context(0, &[&writer::octet_string(c)]));
        let eci = match &econtent {
            Some(e) => writer::sequence(&[&writer::oid(oid::DATA), e]),
            None => writer::sequence(&[&writer::oid(oid::DATA)]),
        };
        let certs = writer::tlv(tag::context_constructed(0), &self.certificates);
        let mut parts: Vec<&[u8]> = Vec::with_capacity(6);
        let version = writer::small_integer(1);
        let digest_set = writer::set_of(&[&digest_alg]);
        let signer_set = writer::set_of(&[&signer_info]);
        parts.extend([version.as_slice(), &digest_set, &eci]);
        if !self.certificates.is_empty() {
            parts.push(&certs);
        }
        parts.push(&signer_set);
        let sd = writer::sequence(&parts);
        Ok(writer::sequence(&[
            &writer::oid(oid::SIGNED_DATA),
            &writer::context(0, &[&sd]),
        ]))
    }
}
