//! Degenerate certs-only SignedData (RFC 8894 §3.4, RFC 5652 §5.2): no signers, no content,
//! certificates (and optionally CRLs) only. Used by GetCACert, GetNextCACert's inner content and
//! the success CertRep payload.

use super::CmsError;
use crate::der::{Reader, oid, tag, writer};

/// Builds `ContentInfo { signedData, SignedData { version 1, {}, { data }, certificates, crls, {} } }`.
pub fn build(certificates: &[&[u8]], crls: &[&[u8]]) -> Vec<u8> {
    let mut fields: Vec<Vec<u8>> = vec![
        writer::small_integer(1),
        writer::tlv(tag::SET, &[]),
        writer::sequence(&[&writer::oid(oid::DATA)]),
    ];
    if !certificates.is_empty() {
        // SET OF in an IMPLICIT [0]: keep the given order (leaf first) as clients read it; BER
        // readers and OpenSSL accept it, and several clients take the first certificate.
        fields.push(writer::tlv(tag::context_constructed(0), certificates));
    }
    if !crls.is_empty() {
        fields.push(writer::tlv(tag::context_constructed(1), crls));
    }
    fields.push(writer::tlv(tag::SET, &[]));
    let parts: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    let sd = writer::sequence(&parts);
    writer::sequence(&[&writer::oid(oid::SIGNED_DATA), &writer::context(0, &[&sd])])
}

/// Raw DER certificates and CRLs carried in a SignedData.
pub type CertsAndCrls<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

/// The certificates and CRLs of a (degenerate or not) SignedData, as raw DER slices.
pub fn parse(content_info: &[u8]) -> Result<CertsAndCrls<'_>, CmsError> {
    let sd = super::signed_data::unwrap_content_info(content_info, oid::SIGNED_DATA)?;
    let mut r = Reader::new(sd).expect(tag::SEQUENCE)?.reader();
    r.expect(tag::INTEGER)?;
    r.expect(tag::SET)?;
    r.expect(tag::SEQUENCE)?;
    let mut certs = Vec::new();
    let mut crls = Vec::new();
    if let Some(c) = r.optional(tag::context_constructed(0))? {
        let mut cr = c.reader();
        while !cr.is_empty() {
            certs.push(cr.read()?.raw);
        }
    }
    if let Some(c) = r.optional(tag::context_constructed(1))? {
        let mut cr = c.reader();
        while !cr.is_empty() {
            crls.push(cr.read()?.raw);
        }
    }
    Ok((certs, crls))
}
