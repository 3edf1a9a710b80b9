//! Lenient BER reader over a borrowed buffer.
//!
//! Accepts definite and indefinite lengths, non-minimal length octets and constructed strings
//! (all seen from real SCEP clients). Every value keeps a slice of its exact received encoding so
//! signatures can be checked over what the peer actually signed.

use std::borrow::Cow;

use super::{DerError, tag};

/// Deepest nesting followed: real CMS/X.509 stays far below this; hostile input does not.
const MAX_DEPTH: usize = 32;

/// One decoded tag-length-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet (single-octet form only).
    pub tag: u8,
    /// The value octets. For indefinite lengths, excludes the end-of-contents marker.
    pub value: &'a [u8],
    /// The whole encoding: identifier, length, value (and end-of-contents if indefinite).
    pub raw: &'a [u8],
    /// Whether the length was indefinite (BER).
    pub indefinite: bool,
}

impl<'a> Tlv<'a> {
    /// True when the constructed bit is set.
    pub fn is_constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }

    /// A reader over the value's nested TLVs.
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.value)
    }

    /// Fails unless this TLV has the given tag.
    pub fn expect(self, expected: u8) -> Result<Self, DerError> {
        if self.tag == expected {
            Ok(self)
        } else {
            Err(DerError::UnexpectedTag {
                expected,
                found: self.tag,
            })
        }
    }

    /// The octets of an OCTET STRING (or an IMPLICIT-tagged one), joining the segments of a
    /// constructed (BER) encoding.
    pub fn octets(&self) -> Result<Cow<'a, [u8]>, DerError> {
        if !self.is_constructed() {
            return Ok(Cow::Borrowed(self.value));
        }
        let mut out = Vec::with_capacity(self.value.len());
        collect_segments(self.value, &mut out, 0)?;
        Ok(Cow::Owned(out))
    }

    /// Value of a non-negative INTEGER with leading zero octets removed (big-endian).
    pub fn unsigned_integer(&self) -> Result<&'a [u8], DerError> {
        if self.tag != tag::INTEGER || self.value.is_empty() {
            return Err(DerError::Malformed("integer"));
        }
        if self.value[0] & 0x80 != 0 {
            return Err(DerError::Malformed("negative integer"));
        }
        Ok(super::strip_leading_zeros(self.value))
    }

    /// A small non-negative INTEGER (versions, counts).
    pub fn small_uint(&self) -> Result<u64, DerError> {
        let v = self.unsigned_integer()?;
        if v.len() > 8 {
            return Err(DerError::Malformed("integer too large"));
        }
        Ok(v.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
}

fn collect_segments(mut value: &[u8], out: &mut Vec<u8>, depth: usize) -> Result<(), DerError> {
    if depth > MAX_DEPTH {
        return Err(DerError::TooDeep);
    }
    while !value.is_empty() {
        let (tlv, rest) = parse_tlv(value, depth + 1)?;
        match tlv.tag {
            tag::OCTET_STRING => out.extend_from_slice(tlv.value),
            tag::OCTET_STRING_CONSTRUCTED => collect_segments(tlv.value, out, depth + 1)?,
            _ => return Err(DerError::Malformed("segment of constructed string")),
        }
        value = rest;
    }
    Ok(())
}

/// Sequential reader over the TLVs of one buffer.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads the TLVs of `bytes` in order.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next TLV.
    pub fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let (tlv, rest) = parse_tlv(self.rest, 0)?;
        self.rest = rest;
        Ok(tlv)
    }

    /// The next TLV, which must have tag `expected`.
    pub fn expect(&mut self, expected: u8) -> Result<Tlv<'a>, DerError> {
        self.read()?.expect(expected)
    }

    /// The next TLV if its tag is `wanted`; otherwise nothing is consumed.
    pub fn optional(&mut self, wanted: u8) -> Result<Option<Tlv<'a>>, DerError> {
        match self.rest.first() {
            Some(t) if *t == wanted => self.read().map(Some),
            _ => Ok(None),
        }
    }

    /// The tag of the next TLV, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Fails unless the reader is exhausted.
    pub fn finish(&self) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError::Malformed("trailing data"))
        }
    }
}

/// Parses one TLV at the start of `input`, returning it and what follows.
fn parse_tlv(input: &[u8], depth: usize) -> Result<(Tlv<'_>, &[u8]), DerError> {
    if depth > MAX_DEPTH {
        return Err(DerError::TooDeep);
    }
    let (&tag_byte, after_tag) = input.split_first().ok_or(DerError::Truncated)?;
    if tag_byte & 0x1f == 0x1f {
        return Err(DerError::Malformed("multi-octet tag"));
    }
    let (&first_len, after_len0) = after_tag.split_first().ok_or(DerError::Truncated)?;
    if first_len == 0x80 {
        if tag_byte & 0x20 == 0 {
            return Err(DerError::Malformed("indefinite length on primitive"));
        }
        let header = 2;
        let content_len = indefinite_content_len(after_len0, depth)?;
        let total = header + content_len + 2;
        let raw = input.get(..total).ok_or(DerError::Truncated)?;
        let value = &input[header..header + content_len];
        return Ok((
            Tlv {
                tag: tag_byte,
                value,
                raw,
                indefinite: true,
            },
            &input[total..],
        ));
    }
    let (len, header) = if first_len < 0x80 {
        (usize::from(first_len), 2)
    } else {
        let n = usize::from(first_len & 0x7f);
        if n > 4 || n == 0 {
            return Err(DerError::Malformed("length"));
        }
        let bytes = after_len0.get(..n).ok_or(DerError::Truncated)?;
        let len = bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let total = header
        .checked_add(len)
        .ok_or(DerError::Malformed("length"))?;
    let raw = input.get(..total).ok_or(DerError::Truncated)?;
    Ok((
        Tlv {
            tag: tag_byte,
            value: &raw[header..],
            raw,
            indefinite: false,
        },
        &input[total..],
    ))
}

/// Length of the contents of an indefinite-length value (up to, not including, 00 00).
fn indefinite_content_len(content: &[u8], depth: usize) -> Result<usize, DerError> {
    let mut pos = 0;
    loop {
        let rest = content.get(pos..).ok_or(DerError::Truncated)?;
        if rest.len() < 2 {
            return Err(DerError::Truncated);
        }
        if rest[0] == 0 && rest[1] == 0 {
            return Ok(pos);
        }
        let (tlv, _) = parse_tlv(rest, depth + 1)?;
        pos += tlv.raw.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_and_indefinite() {
        // SEQUENCE (indefinite) { INTEGER 5, OCTET STRING constructed { "ab", "c" } }
        let ber = [
            0x30, 0x80, 0x02, 0x01, 0x05, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c',
            0x00, 0x00, 0x00, 0x00,
        ];
        let mut r = Reader::new(&ber);
        let seq = r.expect(tag::SEQUENCE).unwrap();
        assert!(seq.indefinite);
        assert_eq!(seq.raw.len(), ber.len());
        let mut inner = seq.reader();
        assert_eq!(inner.expect(tag::INTEGER).unwrap().small_uint().unwrap(), 5);
        let os = inner.read().unwrap();
        assert_eq!(&*os.octets().unwrap(), b"abc");
        assert!(inner.is_empty());
    }

    #[test]
    fn hostile_lengths() {
        assert_eq!(
            Reader::new(&[0x30, 0x85, 1, 1, 1, 1, 1]).read(),
            Err(DerError::Malformed("length"))
        );
        assert_eq!(
            Reader::new(&[0x04, 0x05, 1]).read(),
            Err(DerError::Truncated)
        );
        assert!(Reader::new(&[0x30, 0x80, 0x02]).read().is_err());
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 100).flatten().collect();
        assert!(Reader::new(&deep).read().is_err());
        assert!(Reader::new(&[0x04, 0x80, 0, 0]).read().is_err());
    }
}
