//! DER encoding helpers. Each function returns one complete TLV; composite values are built by
//! passing already-encoded children, which keeps every encoder short and the output exact.

use super::tag;

/// Appends a DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// A TLV whose value is the concatenation of `parts`.
pub fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    push_len(&mut out, len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// SEQUENCE of already-encoded elements.
pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, parts)
}

/// SET OF already-encoded elements, sorted as DER requires (X.690 §11.6).
pub fn set_of(parts: &[&[u8]]) -> Vec<u8> {
    let mut sorted: Vec<&[u8]> = parts.to_vec();
    sorted.sort_unstable();
    tlv(tag::SET, &sorted)
}

/// `[n]` EXPLICIT / constructed context tag around already-encoded content.
pub fn context(n: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::context_constructed(n), parts)
}

/// OBJECT IDENTIFIER from its pre-encoded content octets.
pub fn oid(content: &[u8]) -> Vec<u8> {
    tlv(tag::OID, &[content])
}

/// NULL.
pub fn null() -> Vec<u8> {
    vec![tag::NULL, 0]
}

/// BOOLEAN.
pub fn boolean(v: bool) -> Vec<u8> {
    vec![tag::BOOLEAN, 1, if v { 0xff } else { 0 }]
}

/// OCTET STRING.
pub fn octet_string(v: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, &[v])
}

/// BIT STRING with no unused bits.
pub fn bit_string(v: &[u8]) -> Vec<u8> {
    tlv(tag::BIT_STRING, &[&[0], v])
}

/// INTEGER from unsigned big-endian magnitude (a zero octet is prefixed when the high bit is set).
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let m = super::strip_leading_zeros(magnitude);
    if m.is_empty() {
        return vec![tag::INTEGER, 1, 0];
    }
    if m[0] & 0x80 != 0 {
        tlv(tag::INTEGER, &[&[0], m])
    } else {
        tlv(tag::INTEGER, &[m])
    }
}

/// INTEGER from a small non-negative number.
pub fn small_integer(v: u64) -> Vec<u8> {
    unsigned_integer(&v.to_be_bytes())
}

/// PrintableString (caller guarantees the alphabet).
pub fn printable_string(s: &str) -> Vec<u8> {
    tlv(tag::PRINTABLE_STRING, &[s.as_bytes()])
}

/// UTF8String.
pub fn utf8_string(s: &str) -> Vec<u8> {
    tlv(tag::UTF8_STRING, &[s.as_bytes()])
}

/// AlgorithmIdentifier with the parameters given (already encoded), or absent.
pub fn algorithm(oid_content: &[u8], params: Option<&[u8]>) -> Vec<u8> {
    let o = oid(oid_content);
    match params {
        Some(p) => sequence(&[&o, p]),
        None => sequence(&[&o]),
    }
}

/// True when every character is in the ASN.1 PrintableString alphabet (X.680 §41.4).
pub fn is_printable(s: &str) -> bool {
    s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers() {
        assert_eq!(tlv(0x04, &[&[1u8; 3]])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[&[0u8; 200]])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[&[0u8; 300]])[..4], [0x04, 0x82, 1, 44]);
        assert_eq!(unsigned_integer(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0, 5]), vec![2, 1, 5]);
        assert_eq!(small_integer(0), vec![2, 1, 0]);
        assert!(is_printable("AB c-9'()+,./:=?"));
        assert!(!is_printable("a_b"));
    }
}
