//! X.509 v3 extension encoders (RFC 5280 §4.2).

use crate::algorithms::{AlgorithmError, DigestAlg, PublicKeyInfo};
use crate::der::{oid, tag, writer};

/// `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`.
pub fn extension(oid_content: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let id = writer::oid(oid_content);
    let v = writer::octet_string(value);
    if critical {
        writer::sequence(&[&id, &writer::boolean(true), &v])
    } else {
        writer::sequence(&[&id, &v])
    }
}

/// KeyUsage bits (RFC 5280 §4.2.1.3), numbered as in the ASN.1 definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage(pub u16);

impl KeyUsage {
    /// digitalSignature (0).
    pub const DIGITAL_SIGNATURE: u16 = 1 << 0;
    /// keyEncipherment (2).
    pub const KEY_ENCIPHERMENT: u16 = 1 << 2;
    /// keyCertSign (5).
    pub const KEY_CERT_SIGN: u16 = 1 << 5;
    /// cRLSign (6).
    pub const CRL_SIGN: u16 = 1 << 6;

    /// The critical keyUsage extension, DER with unused trailing bits counted.
    pub fn extension(self) -> Vec<u8> {
        // Bit n of the ASN.1 BIT STRING is bit (7 - n % 8) of octet n / 8.
        let mut octets = [0u8; 2];
        for n in 0..9u16 {
            if self.0 & (1 << n) != 0 {
                octets[usize::from(n / 8)] |= 0x80 >> (n % 8);
            }
        }
        let len = if octets[1] != 0 { 2 } else { 1 };
        let last = octets[len - 1];
        let unused = if last == 0 {
            0
        } else {
            last.trailing_zeros() as u8
        };
        let mut content = vec![unused];
        content.extend_from_slice(&octets[..len]);
        extension(
            oid::KEY_USAGE,
            true,
            &writer::tlv(tag::BIT_STRING, &[&content]),
        )
    }
}

/// basicConstraints, critical. `ca` with optional pathLenConstraint.
pub fn basic_constraints(ca: bool, path_len: Option<u8>) -> Vec<u8> {
    let value = match (ca, path_len) {
        (true, Some(n)) => {
            writer::sequence(&[&writer::boolean(true), &writer::small_integer(u64::from(n))])
        }
        (true, None) => writer::sequence(&[&writer::boolean(true)]),
        (false, _) => writer::sequence(&[]),
    };
    extension(oid::BASIC_CONSTRAINTS, true, &value)
}

/// extendedKeyUsage with the given purpose OIDs (non-critical).
pub fn extended_key_usage(purposes: &[&[u8]]) -> Vec<u8> {
    let oids: Vec<Vec<u8>> = purposes.iter().map(|o| writer::oid(o)).collect();
    let refs: Vec<&[u8]> = oids.iter().map(Vec::as_slice).collect();
    extension(oid::EXT_KEY_USAGE, false, &writer::sequence(&refs))
}

/// Key identifier: SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1).
pub fn key_identifier(spki: &[u8]) -> Result<Vec<u8>, AlgorithmError> {
    let info = PublicKeyInfo::parse(spki)?;
    Ok(DigestAlg::Sha1.digest(info.key).as_ref().to_vec())
}

/// subjectKeyIdentifier.
pub fn subject_key_identifier(key_id: &[u8]) -> Vec<u8> {
    extension(
        oid::SUBJECT_KEY_IDENTIFIER,
        false,
        &writer::octet_string(key_id),
    )
}

/// authorityKeyIdentifier with keyIdentifier only.
pub fn authority_key_identifier(key_id: &[u8]) -> Vec<u8> {
    let v = writer::sequence(&[&writer::tlv(tag::context_primitive(0), &[key_id])]);
    extension(oid::AUTHORITY_KEY_IDENTIFIER, false, &v)
}

/// cRLDistributionPoints with one URI full name.
pub fn crl_distribution_point(url: &str) -> Vec<u8> {
    let uri = writer::tlv(tag::context_primitive(6), &[url.as_bytes()]);
    let full_name = writer::context(0, &[&uri]);
    let dp_name = writer::context(0, &[&full_name]);
    let dp = writer::sequence(&[&dp_name]);
    extension(
        oid::CRL_DISTRIBUTION_POINTS,
        false,
        &writer::sequence(&[&dp]),
    )
}

/// authorityInfoAccess with OCSP and/or caIssuers URIs.
pub fn authority_info_access(ocsp: Option<&str>, ca_issuers: Option<&str>) -> Option<Vec<u8>> {
    let mut descs = Vec::new();
    for (method, url) in [(oid::AD_OCSP, ocsp), (oid::AD_CA_ISSUERS, ca_issuers)] {
        if let Some(u) = url {
            let uri = writer::tlv(tag::context_primitive(6), &[u.as_bytes()]);
            descs.push(writer::sequence(&[&writer::oid(method), &uri]));
        }
    }
    if descs.is_empty() {
        return None;
    }
    let refs: Vec<&[u8]> = descs.iter().map(Vec::as_slice).collect();
    Some(extension(
        oid::AUTHORITY_INFO_ACCESS,
        false,
        &writer::sequence(&refs),
    ))
}

/// subjectAltName from encoded GeneralNames; critical when the subject is empty (RFC 5280 §4.2.1.6).
pub fn subject_alt_name(general_names: &[u8], critical: bool) -> Vec<u8> {
    extension(oid::SUBJECT_ALT_NAME, critical, general_names)
}
