//! CMS attributes: `Attribute ::= SEQUENCE { attrType OID, attrValues SET OF AttributeValue }`.

use crate::der::{DerError, Reader, Tlv, tag, writer};

/// One received attribute, values kept as raw TLVs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// OID content octets.
    pub oid: &'a [u8],
    /// The values in the order received.
    pub values: Vec<Tlv<'a>>,
}

/// Parses the attributes inside a `[0] IMPLICIT SET OF Attribute` (or SET OF).
pub fn parse_set(set: Tlv<'_>) -> Result<Vec<Attribute<'_>>, DerError> {
    let mut out = Vec::new();
    let mut r = set.reader();
    while !r.is_empty() {
        let mut a = r.expect(tag::SEQUENCE)?.reader();
        let oid = a.expect(tag::OID)?.value;
        let mut vals = a.expect(tag::SET)?.reader();
        let mut values = Vec::new();
        while !vals.is_empty() {
            values.push(vals.read()?);
        }
        out.push(Attribute { oid, values });
    }
    Ok(out)
}

/// The single value of the attribute with this OID. More than one attribute of the type, or
/// more than one value, is malformed (RFC 5652 §5.3 for the CMS ones; RFC 8894 §3.2.1 for SCEP).
pub fn single_value<'a>(attrs: &[Attribute<'a>], oid: &[u8]) -> Result<Option<Tlv<'a>>, DerError> {
    let mut found = None;
    for a in attrs.iter().filter(|a| a.oid == oid) {
        if found.is_some() || a.values.len() != 1 {
            return Err(DerError::Malformed("repeated attribute"));
        }
        found = a.values.first().copied();
    }
    Ok(found)
}

/// Encodes one attribute with one value.
pub fn encode(oid: &[u8], value: &[u8]) -> Vec<u8> {
    writer::sequence(&[&writer::oid(oid), &writer::set_of(&[value])])
}

/// Re-reads an encoded value (for attributes we built ourselves in tests).
pub fn first_tlv(bytes: &[u8]) -> Result<Tlv<'_>, DerError> {
    Reader::new(bytes).read()
}
