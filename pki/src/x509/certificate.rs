//! Certificate parsing that keeps the raw bytes of each part.

use crate::algorithms::{AlgorithmError, SignatureAlg, verify_signature};
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
