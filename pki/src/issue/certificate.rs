//! TBSCertificate encoding and signing. Names are copied as raw bytes from the issuer
//! certificate and the request, so issuer/subject chaining is byte-exact (docs/architecture.md
//! gotcha 7).

use crate::algorithms::DigestAlg;
use crate::der::{tag, time, writer};
use crate::keys::{KeyError, Signer};

/// The fields of a certificate to be signed.
#[derive(Debug, Clone)]
pub struct TbsCertificate<'a> {
    /// Positive serial magnitude, big-endian.
    pub serial: &'a [u8],
    /// Raw issuer Name (the issuer certificate's subject bytes; for self-signed, `subject`).
    pub issuer: &'a [u8],
    /// Raw subject Name.
    pub subject: &'a [u8],
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// SubjectPublicKeyInfo DER.
    pub spki: &'a [u8],
    /// Encoded Extension SEQUENCEs.
    pub extensions: Vec<Vec<u8>>,
}

impl TbsCertificate<'_> {
    /// Encodes the TBSCertificate and signs it with `issuer_key`; returns the certificate DER.
    pub fn sign(&self, issuer_key: &dyn Signer, digest: DigestAlg) -> Result<Vec<u8>, KeyError> {
        let alg = issuer_key.signature_alg(digest)?.algorithm_identifier();
        let version = writer::context(0, &[&writer::small_integer(2)]);
        let validity = writer::sequence(&[
            &time::x509_time(self.not_before),
            &time::x509_time(self.not_after),
        ]);
        let ext_refs: Vec<&[u8]> = self.extensions.iter().map(Vec::as_slice).collect();
        let exts = writer::context(3, &[&writer::sequence(&ext_refs)]);
        let serial = writer::unsigned_integer(self.serial);
        let mut parts: Vec<&[u8]> = vec![
            &version,
            &serial,
            &alg,
            self.issuer,
            &validity,
            self.subject,
            self.spki,
        ];
        if !self.extensions.is_empty() {
            parts.push(&exts);
        }
        let tbs = writer::sequence(&parts);
        let sig = issuer_key.sign(digest, &tbs)?;
        Ok(writer::sequence(&[
            &tbs,
            &alg,
            &writer::tlv(tag::BIT_STRING, &[&[0], &sig]),
        ]))
    }
}
