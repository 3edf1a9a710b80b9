//! PKCS#10 certification requests (RFC 2986): parse and verify what devices send, build the
//! ones our test client and load tool send.
//!
//! ```text
//! CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
//! CertificationRequestInfo ::= SEQUENCE { version INTEGER { v1(0) }, subject Name,
//!     subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute }
//! ```

use zeroize::Zeroizing;

use crate::algorithms::{AlgorithmError, DigestAlg, SignatureAlg, verify_signature};
use crate::cms::attributes;
use crate::der::{DerError, Reader, oid, tag, writer};
use crate::keys::Signer;
use crate::x509::Extension;
use crate::x509::certificate::parse_extensions;

/// Longest challengePassword we read; longer ones are refused before any comparison.
pub const MAX_CHALLENGE_LEN: usize = 8192;

/// Errors from CSR handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// Not DER (or the lenient BER we read).
    #[error("malformed certificate request: {0}")]
    Der(#[from] DerError),
    /// DER, but not a certification request we accept.
    #[error("malformed certificate request: {0}")]
    Malformed(&'static str),
    /// Signature algorithm or key refused, or the self-signature is wrong.
    #[error("certificate request signature: {0}")]
    Signature(AlgorithmError),
}

/// A parsed and signature-checked certification request.
#[derive(Debug)]
pub struct CertificationRequest<'a> {
    /// Raw DER of the whole request.
    pub raw: &'a [u8],
    /// Raw subject Name TLV.
    pub subject: &'a [u8],
    /// Raw SubjectPublicKeyInfo TLV.
    pub spki: &'a [u8],
    /// The challengePassword, if sent (zeroized on drop).
    pub challenge_password: Option<Zeroizing<String>>,
    /// Extensions from the extensionRequest attribute.
    pub extensions: Vec<Extension<'a>>,
    /// The signature algorithm used.
    pub signature_alg: SignatureAlg,
}

impl<'a> CertificationRequest<'a> {
    /// Parses `der` and verifies its self-signature (proof of possession).
    pub fn parse_and_verify(der: &'a [u8]) -> Result<Self, CsrError> {
        let mut outer = Reader::new(der);
        let csr = outer.expect(tag::SEQUENCE)?;
        let mut c = csr.reader();
        let info = c.expect(tag::SEQUENCE)?;
        let signature_alg =
            SignatureAlg::from_algorithm_identifier(c.read()?).map_err(CsrError::Signature)?;
        let bits = c.expect(tag::BIT_STRING)?.value;
        let signature = match bits.split_first() {
            Some((0, s)) => s,
            _ => return Err(CsrError::Malformed("signature bit string")),
        };
        let mut i = info.reader();
        // RFC 2986 says v1(0), but Apple devices send 2; OpenSSL accepts both, so do we.
        if i.expect(tag::INTEGER)?.small_uint()? > 2 {
            return Err(CsrError::Malformed("version"));
        }
        let subject = i.expect(tag::SEQUENCE)?.raw;
        let spki = i.expect(tag::SEQUENCE)?.raw;
        let mut challenge_password = None;
        let mut extensions = Vec::new();
        if let Some(attrs) = i.optional(tag::context_constructed(0))? {
            let parsed = attributes::parse_set(attrs)?;
            if let Some(v) = attributes::single_value(&parsed, oid::CHALLENGE_PASSWORD)? {
                challenge_password = Some(directory_string(v.tag, v.value)?);
            }
            if let Some(v) = attributes::single_value(&parsed, oid::EXTENSION_REQUEST)? {
                extensions = parse_extensions(v)?;
            }
        }
        verify_signature(spki, signature_alg, info.raw, signature).map_err(CsrError::Signature)?;
        Ok(Self {
            raw: csr.raw,
            subject,
            spki,
            challenge_password,
            extensions,
            signature_alg,
        })
    }

    /// The requested extension with this OID, if any.
    pub fn extension(&self, oid: &[u8]) -> Option<&Extension<'a>> {
        self.extensions.iter().find(|e| e.oid == oid)
    }
}

/// A verified CSR with what every later step reads from it, derived once: the subject as text
/// and the subjectAltNames we understand.
#[derive(Debug)]
pub struct Csr<'a> {
    /// The request, its self-signature verified.
    pub request: CertificationRequest<'a>,
    /// The subject as text (RFC 4514 order as encoded).
    pub subject: String,
    /// The requested subjectAltNames filtered to the kinds we copy, or why the extension is
    /// refused (issuance fails then; lookups see no names).
    pub sans: Result<RequestedSans, DerError>,
}

/// The subjectAltNames a CSR asks for that we would copy.
#[derive(Debug, Clone, Default)]
pub struct RequestedSans {
    /// The filtered GeneralNames, re-encoded; `None` when nothing is left to copy.
    pub general_names: Option<Vec<u8>>,
    /// Each kept name.
    pub names: Vec<crate::x509::general_names::AltName>,
}

impl<'a> Csr<'a> {
    /// Parses and verifies `der` ([`CertificationRequest::parse_and_verify`]) and derives the
    /// subject text and requested names.
    pub fn parse_and_verify(der: &'a [u8]) -> Result<Self, CsrError> {
        Ok(Self::from(CertificationRequest::parse_and_verify(der)?))
    }

    /// The requested names we understand (none when the extension is refused).
    pub fn requested_names(&self) -> &[crate::x509::general_names::AltName] {
        self.sans.as_ref().map_or(&[], |s| s.names.as_slice())
    }
}

impl<'a> From<CertificationRequest<'a>> for Csr<'a> {
    fn from(request: CertificationRequest<'a>) -> Self {
        let sans = match request.extension(oid::SUBJECT_ALT_NAME) {
            Some(ext) => crate::x509::general_names::filter_requested(ext.value).map(
                |(general_names, names)| RequestedSans {
                    general_names,
                    names,
                },
            ),
            None => Ok(RequestedSans::default()),
        };
        Self {
            subject: crate::x509::name::to_text(request.subject),
            sans,
            request,
        }
    }
}

/// DirectoryString (PrintableString, UTF8String, IA5/T61 as Latin-1, BMPString) to text.
fn directory_string(t: u8, v: &[u8]) -> Result<Zeroizing<String>, CsrError> {
    if v.len() > MAX_CHALLENGE_LEN {
        return Err(CsrError::Malformed("challengePassword too long"));
    }
    let s = match t {
        tag::PRINTABLE_STRING | tag::UTF8_STRING | tag::IA5_STRING => String::from_utf8(v.to_vec())
            .map_err(|_| CsrError::Malformed("challengePassword encoding"))?,
        tag::TELETEX_STRING => v.iter().map(|b| char::from(*b)).collect(),
        tag::BMP_STRING if v.len() % 2 == 0 => {
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units)
                .map_err(|_| CsrError::Malformed("challengePassword encoding"))?
        }
        _ => return Err(CsrError::Malformed("challengePassword type")),
    };
    Ok(Zeroizing::new(s))
}

/// Builds and signs a PKCS#10 request (client side: tests, benches, load tool).
pub fn build(
    subject: &[u8],
    key: &dyn Signer,
    digest: DigestAlg,
    challenge: Option<&str>,
    extensions: &[Vec<u8>],
) -> Result<Vec<u8>, crate::keys::KeyError> {
    let mut attrs: Vec<Vec<u8>> = Vec::new();
    if let Some(c) = challenge {
        let v = if writer::is_printable(c) {
            writer::printable_string(c)
        } else {
            writer::utf8_string(c)
        };
        attrs.push(attributes::encode(oid::CHALLENGE_PASSWORD, &v));
    }
    if !extensions.is_empty() {
        let refs: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();
        attrs.push(attributes::encode(
            oid::EXTENSION_REQUEST,
            &writer::sequence(&refs),
        ));
    }
    let attr_refs: Vec<&[u8]> = attrs.iter().map(Vec::as_slice).collect();
    let mut attr_set = writer::set_of(&attr_refs);
    attr_set[0] = tag::context_constructed(0);
    let info = writer::sequence(&[
        &writer::small_integer(0),
        subject,
        key.public_key_der(),
        &attr_set,
    ]);
    let alg = key.signature_alg(digest)?;
    let sig = key.sign(digest, &info)?;
    Ok(writer::sequence(&[
        &info,
        &alg.algorithm_identifier(),
        &writer::bit_string(&sig),
    ]))
}
