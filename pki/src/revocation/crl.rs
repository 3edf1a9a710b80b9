//! Full CRLs (RFC 5280 §5): v2, AKI and CRL number extensions, reason code entry extensions.
//!
//! ```text
//! CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm, signatureValue BIT STRING }
//! TBSCertList ::= SEQUENCE { version INTEGER (v2), signature, issuer Name, thisUpdate Time,
//!     nextUpdate Time, revokedCertificates SEQUENCE OF SEQUENCE { userCertificate CertificateSerialNumber,
//!     revocationDate Time, crlEntryExtensions Extensions OPTIONAL } OPTIONAL, crlExtensions [0] EXPLICIT }
//! ```

use super::RevocationReason;
use crate::algorithms::DigestAlg;
use crate::der::{oid, tag, time, writer};
use crate::issue::extensions;
use crate::keys::{KeyError, Signer};

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial magnitude.
    pub serial: Vec<u8>,
    /// Revocation time, unix seconds.
    pub revoked_at: i64,
    /// Reason (no entry extension for `Unspecified`, RFC 5280 §5.3.1 SHOULD).
    pub reason: RevocationReason,
}

/// What to put in a CRL.
pub struct CrlParams<'a> {
    /// Raw issuer Name (the CA certificate's subject bytes).
    pub issuer: &'a [u8],
    /// The CA's key identifier (its SKI).
    pub issuer_key_id: &'a [u8],
    /// Monotonic CRL number.
    pub number: u64,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: i64,
    /// The revoked certificates.
    pub entries: &'a [RevokedEntry],
}

/// Builds and signs the CRL; returns DER.
pub fn build(p: &CrlParams<'_>, key: &dyn Signer) -> Result<Vec<u8>, KeyError> {
    let digest = if key.signature_alg(DigestAlg::Sha256).is_ok() {
        DigestAlg::Sha256
    } else {
        DigestAlg::Sha384
    };
    let alg = key.signature_alg(digest)?.algorithm_identifier();
    // Encode entries straight into one buffer: 100k entries stay one allocation plus a header.
    let mut revoked = Vec::with_capacity(p.entries.len() * 48);
    for e in p.entries {
        let serial = writer::unsigned_integer(&e.serial);
        let date = time::x509_time(e.revoked_at);
        let entry = if e.reason == RevocationReason::Unspecified {
            writer::sequence(&[&serial, &date])
        } else {
            let reason = writer::tlv(0x0a, &[&[e.reason.code()]]);
            let ext = extensions::extension(oid::CRL_REASON, false, &reason);
            writer::sequence(&[&serial, &date, &writer::sequence(&[&ext])])
        };
        revoked.extend_from_slice(&entry);
    }
    let revoked = (!p.entries.is_empty()).then(|| writer::tlv(tag::SEQUENCE, &[&revoked]));
    let crl_number =
        extensions::extension(oid::CRL_NUMBER, false, &writer::small_integer(p.number));
    let exts = writer::context(
        0,
        &[&writer::sequence(&[
            &extensions::authority_key_identifier(p.issuer_key_id),
            &crl_number,
        ])],
    );
    let version = writer::small_integer(1);
    let (tu, nu) = (
        time::x509_time(p.this_update),
        time::x509_time(p.next_update),
    );
    let mut parts: Vec<&[u8]> = vec![&version, &alg, p.issuer, &tu, &nu];
    if let Some(r) = &revoked {
        parts.push(r);
    }
    parts.push(&exts);
    let tbs = writer::sequence(&parts);
    let sig = key.sign(digest, &tbs)?;
    Ok(writer::sequence(&[&tbs, &alg, &writer::bit_string(&sig)]))
}
