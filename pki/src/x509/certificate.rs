//! Certificate parsing that keeps the raw bytes of each part.

use crate::algorithms::{AlgorithmError, SignatureAlg, verify_signature};
use std::ops::Range;

use crate::der::{DerError, Reader, Tlv, tag, time};

/// One extension of a certificate or request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// OID content octets.
    pub oid: &'a [u8],
    /// The critical flag.
    pub critical: bool,
    /// The extnValue OCTET STRING content.
    pub value: &'a [u8],
}

/// A parsed certificate borrowing the encoding it came from.
///
/// ```text
/// Certificate ::= SEQUENCE { tbsCertificate TBSCertificate, signatureAlgorithm, signature BIT STRING }
/// TBSCertificate ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, serialNumber, signature, issuer,
///     validity, subject, subjectPublicKeyInfo, issuerUniqueID [1], subjectUniqueID [2], extensions [3] }
/// ```
#[derive(Debug, Clone)]
pub struct Certificate<'a> {
    /// The whole certificate.
    pub raw: &'a [u8],
    /// The raw TBSCertificate (what the issuer signed).
    pub tbs: &'a [u8],
    /// Serial number INTEGER content octets as encoded (may carry a leading zero).
    pub serial: &'a [u8],
    /// Raw issuer Name TLV.
    pub issuer: &'a [u8],
    /// Raw subject Name TLV.
    pub subject: &'a [u8],
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// Raw SubjectPublicKeyInfo TLV.
    pub spki: &'a [u8],
    /// Extensions in order.
    pub extensions: Vec<Extension<'a>>,
    signature_alg: Tlv<'a>,
    signature: &'a [u8],
}

impl<'a> Certificate<'a> {
    /// Parses one DER (or lenient BER) certificate.
    pub fn parse(raw: &'a [u8]) -> Result<Self, DerError> {
        let mut outer = Reader::new(raw);
        let cert = outer.expect(tag::SEQUENCE)?;
        let mut c = cert.reader();
        let tbs = c.expect(tag::SEQUENCE)?;
        let signature_alg = c.expect(tag::SEQUENCE)?;
        let sig_bits = c.expect(tag::BIT_STRING)?.value;
        let signature = match sig_bits.split_first() {
            Some((0, s)) => s,
            _ => return Err(DerError::Malformed("signature bit string")),
        };
        let mut t = tbs.reader();
        t.optional(tag::context_constructed(0))?;
        let serial = t.expect(tag::INTEGER)?.value;
        t.expect(tag::SEQUENCE)?;
        let issuer = t.expect(tag::SEQUENCE)?.raw;
        let mut validity = t.expect(tag::SEQUENCE)?.reader();
        let nb = validity.read()?;
        let na = validity.read()?;
        let subject = t.expect(tag::SEQUENCE)?.raw;
        let spki = t.expect(tag::SEQUENCE)?.raw;
        t.optional(tag::context_primitive(1))?;
        t.optional(tag::context_primitive(2))?;
        let mut extensions = Vec::new();
        if let Some(exts) = t.optional(tag::context_constructed(3))? {
            extensions = parse_extensions(exts.reader().expect(tag::SEQUENCE)?)?;
        }
        Ok(Self {
            raw: cert.raw,
            tbs: tbs.raw,
            serial,
            issuer,
            subject,
            not_before: time::parse_time(nb.tag, nb.value)?,
            not_after: time::parse_time(na.tag, na.value)?,
            spki,
            extensions,
            signature_alg,
            signature,
        })
    }

    /// The extension with this OID, if present.
    pub fn extension(&self, oid: &[u8]) -> Option<&Extension<'a>> {
        self.extensions.iter().find(|e| e.oid == oid)
    }

    /// The serial number as unsigned big-endian magnitude (leading zeros removed).
    pub fn serial_magnitude(&self) -> &'a [u8] {
        crate::der::strip_leading_zeros(self.serial)
    }

    /// Verifies this certificate's signature with the issuer's SubjectPublicKeyInfo.
    pub fn verify_signed_by(&self, issuer_spki: &[u8]) -> Result<(), AlgorithmError> {
        let alg = SignatureAlg::from_algorithm_identifier(self.signature_alg)?;
        verify_signature(issuer_spki, alg, self.tbs, self.signature)
    }

    /// True when `now` lies within the validity period.
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// A certificate that owns its encoding and remembers where each part lies: parsed once (the
/// CA material a server holds for its lifetime) and then borrowed as a [`Certificate`] without
/// walking the DER again.
#[derive(Clone)]
pub struct ParsedCertificate {
    der: Vec<u8>,
    layout: Layout,
}

/// Byte ranges into [`ParsedCertificate::der`] of each borrowed part of a [`Certificate`].
#[derive(Clone)]
struct Layout {
    raw: Range<usize>,
    tbs: Range<usize>,
    serial: Range<usize>,
    issuer: Range<usize>,
    subject: Range<usize>,
    spki: Range<usize>,
    not_before: i64,
    not_after: i64,
    extensions: Vec<(Range<usize>, bool, Range<usize>)>,
    signature_alg: (u8, Range<usize>, Range<usize>, bool),
    signature: Range<usize>,
}

/// Where `part`, a sub-slice of `whole`, lies in it.
fn range_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    // Address arithmetic only: every part a parse returns borrows from the buffer it parsed.
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    debug_assert!(start + part.len() <= whole.len(), "part outside its buffer");
    start..start + part.len()
}

impl ParsedCertificate {
    /// Parses `der` (as [`Certificate::parse`]) and keeps it.
    pub fn parse(der: Vec<u8>) -> Result<Self, DerError> {
        let layout = {
            let c = Certificate::parse(&der)?;
            let at = |part: &[u8]| range_in(&der, part);
            Layout {
                raw: at(c.raw),
                tbs: at(c.tbs),
                serial: at(c.serial),
                issuer: at(c.issuer),
                subject: at(c.subject),
                spki: at(c.spki),
                not_before: c.not_before,
                not_after: c.not_after,
                extensions: c
                    .extensions
                    .iter()
                    .map(|e| (at(e.oid), e.critical, at(e.value)))
                    .collect(),
                signature_alg: (
                    c.signature_alg.tag,
                    at(c.signature_alg.value),
                    at(c.signature_alg.raw),
                    c.signature_alg.indefinite,
                ),
                signature: at(c.signature),
            }
        };
        Ok(Self { der, layout })
    }

    /// The encoding it was parsed from.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed view, without parsing again.
    pub fn get(&self) -> Certificate<'_> {
        let l = &self.layout;
        // The ranges were taken from a parse of exactly these bytes, so they are in bounds.
        let at = |r: &Range<usize>| &self.der[r.clone()];
        Certificate {
            raw: at(&l.raw),
            tbs: at(&l.tbs),
            serial: at(&l.serial),
            issuer: at(&l.issuer),
            subject: at(&l.subject),
            not_before: l.not_before,
            not_after: l.not_after,
            spki: at(&l.spki),
            extensions: l
                .extensions
                .iter()
                .map(|(oid, critical, value)| Extension {
                    oid: at(oid),
                    critical: *critical,
                    value: at(value),
                })
                .collect(),
            signature_alg: Tlv {
                tag: l.signature_alg.0,
                value: at(&l.signature_alg.1),
                raw: at(&l.signature_alg.2),
                indefinite: l.signature_alg.3,
            },
            signature: at(&l.signature),
        }
    }

    /// The subject Name TLV.
    pub fn subject(&self) -> &[u8] {
        &self.der[self.layout.subject.clone()]
    }

    /// The SubjectPublicKeyInfo TLV.
    pub fn spki(&self) -> &[u8] {
        &self.der[self.layout.spki.clone()]
    }
}

impl std::fmt::Debug for ParsedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedCertificate")
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// Parses `Extensions ::= SEQUENCE OF Extension`.
pub fn parse_extensions(seq: Tlv<'_>) -> Result<Vec<Extension<'_>>, DerError> {
    let mut out = Vec::new();
    let mut r = seq.reader();
    while !r.is_empty() {
        let mut e = r.expect(tag::SEQUENCE)?.reader();
        let oid = e.expect(tag::OID)?.value;
        let critical = match e.optional(tag::BOOLEAN)? {
            Some(b) => b.value.first().is_some_and(|v| *v != 0),
            None => false,
        };
        let value = e.expect(tag::OCTET_STRING)?.value;
        out.push(Extension {
            oid,
            critical,
            value,
        });
    }
    Ok(out)
}

/// The subjectKeyIdentifier extension value, if present.
pub fn subject_key_id<'a>(cert: &Certificate<'a>) -> Option<&'a [u8]> {
    let ext = cert.extension(crate::der::oid::SUBJECT_KEY_IDENTIFIER)?;
    Reader::new(ext.value)
        .expect(tag::OCTET_STRING)
        .ok()
        .map(|t| t.value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::ca::hierarchy::{HierarchySpec, bootstrap};
    use crate::keys::KeyAlgorithm;
    use crate::random::SystemRandom;

    #[test]
    fn a_parsed_certificate_lends_the_parts_a_fresh_parse_finds() {
        let spec = HierarchySpec {
            organization: "Test".into(),
            root_key: KeyAlgorithm::EcP256,
            intermediate_key: KeyAlgorithm::EcP256,
            ra_key: KeyAlgorithm::Rsa2048,
            root_validity_secs: 86_400,
            intermediate_validity_secs: 86_400,
            ra_validity_secs: 86_400,
            now: 1_795_000_000,
        };
        let h = bootstrap(&spec, &SystemRandom).unwrap();
        let kept = ParsedCertificate::parse(h.intermediate.cert_der.clone()).unwrap();
        let fresh = Certificate::parse(&h.intermediate.cert_der).unwrap();
        let view = kept.get();
        assert_eq!(format!("{view:?}"), format!("{fresh:?}"));
        assert_eq!(kept.der(), h.intermediate.cert_der.as_slice());
        assert_eq!(kept.subject(), fresh.subject);
        assert_eq!(kept.spki(), fresh.spki);
        let root = Certificate::parse(&h.root.cert_der).unwrap();
        view.verify_signed_by(root.spki).unwrap();
        assert!(ParsedCertificate::parse(vec![0x30, 0x03, 0x02, 0x01]).is_err());
    }
}
