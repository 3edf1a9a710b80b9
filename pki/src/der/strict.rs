//! Strict DER checks for the structures we copy from a request into a certificate we sign
//! (subject, SubjectPublicKeyInfo, subjectAltName entries).
//!
//! The reader in [`super::reader`] is lenient on purpose: real SCEP clients send BER envelopes.
//! Bytes we put under our own signature must be DER, though, or relying parties disagree about
//! what we signed (OpenSSL accepts an indefinite-length subject that Python `cryptography`
//! refuses: a parser differential someone can aim at). So every copied structure passes
//! [`check`] first: definite, minimal lengths; primitive strings; canonical BOOLEAN, INTEGER,
//! OID and BIT STRING; SET OF elements in DER order; string contents in their type's alphabet.

use super::reader::{Reader, Tlv};
use super::{DerError, tag};

/// Deepest nesting accepted in a copied structure (a Name is 4 deep, an SPKI 3).
const MAX_DEPTH: usize = 16;

/// Checks that `bytes` is exactly one TLV and that it, and everything inside it, is DER.
pub fn check(bytes: &[u8]) -> Result<(), DerError> {
    let mut r = Reader::new(bytes);
    let tlv = r.read()?;
    r.finish()?;
    check_tlv(&tlv, 0)
}

fn check_tlv(tlv: &Tlv<'_>, depth: usize) -> Result<(), DerError> {
    if depth > MAX_DEPTH {
        return Err(DerError::TooDeep);
    }
    if tlv.indefinite {
        return Err(DerError::Malformed("indefinite length"));
    }
    let header = tlv.raw.len() - tlv.value.len();
    if header != 1 + length_octets(tlv.value.len()) {
        return Err(DerError::Malformed("non-minimal length"));
    }
    let universal = tlv.tag & 0xc0 == 0;
    let number = tlv.tag & 0x1f;
    if tlv.is_constructed() {
        // Universal constructed forms other than SEQUENCE and SET are BER-only (segmented
        // strings); DER has primitive strings only.
        if universal && number != 0x10 && number != 0x11 {
            return Err(DerError::Malformed("constructed string"));
        }
        let mut r = tlv.reader();
        let mut previous: Option<&[u8]> = None;
        while !r.is_empty() {
            let child = r.read()?;
            check_tlv(&child, depth + 1)?;
            if tlv.tag == tag::SET {
                // X.690 11.6: SET OF elements in ascending order of their encodings.
                if let Some(p) = previous {
                    if der_order(p, child.raw) == std::cmp::Ordering::Greater {
                        return Err(DerError::Malformed("SET OF not in DER order"));
                    }
                }
                previous = Some(child.raw);
            }
        }
        return Ok(());
    }
    if universal {
        check_primitive(tlv.tag, tlv.value)?;
    }
    Ok(())
}

/// Octets DER uses for a length: one for short form, else one plus the minimal byte count.
fn length_octets(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    }
}

/// X.690 11.6 order: octet-wise, the shorter padded with trailing zero octets.
fn der_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    let pad = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    (0..n)
        .map(|i| pad(a, i).cmp(&pad(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

fn check_primitive(t: u8, v: &[u8]) -> Result<(), DerError> {
    match t {
        tag::BOOLEAN => match v {
            [0x00] | [0xff] => Ok(()),
            _ => Err(DerError::Malformed("BOOLEAN not DER")),
        },
        tag::INTEGER => match v {
            [] => Err(DerError::Malformed("empty INTEGER")),
            [0x00, b, ..] if b & 0x80 == 0 => Err(DerError::Malformed("non-minimal INTEGER")),
            [0xff, b, ..] if b & 0x80 != 0 => Err(DerError::Malformed("non-minimal INTEGER")),
            _ => Ok(()),
        },
        tag::NULL if !v.is_empty() => Err(DerError::Malformed("NULL with content")),
        tag::OID => check_oid(v),
        tag::BIT_STRING => check_bit_string(v),
        tag::PRINTABLE_STRING => {
            if v.iter().all(|b| is_printable_char(*b)) {
                Ok(())
            } else {
                Err(DerError::Malformed("PrintableString outside its alphabet"))
            }
        }
        tag::IA5_STRING if !v.is_ascii() => {
            Err(DerError::Malformed("IA5String outside its alphabet"))
        }
        tag::UTF8_STRING if std::str::from_utf8(v).is_err() => {
            Err(DerError::Malformed("UTF8String not UTF-8"))
        }
        tag::BMP_STRING => decode_bmp(v).map(drop),
        tag::UNIVERSAL_STRING => decode_universal(v).map(drop),
        0x10 | 0x11 => Err(DerError::Malformed("primitive SEQUENCE or SET")),
        _ => Ok(()),
    }
}

fn check_oid(v: &[u8]) -> Result<(), DerError> {
    // Each subidentifier is base-128, high bit on all but its last octet, no leading 0x80.
    let (Some(first), Some(last)) = (v.first(), v.last()) else {
        return Err(DerError::Malformed("empty OID"));
    };
    if last & 0x80 != 0 || *first == 0x80 {
        return Err(DerError::Malformed("OID not DER"));
    }
    if v.windows(2).any(|w| w[0] & 0x80 == 0 && w[1] == 0x80) {
        return Err(DerError::Malformed("OID not DER"));
    }
    Ok(())
}

fn check_bit_string(v: &[u8]) -> Result<(), DerError> {
    match v {
        [] => Err(DerError::Malformed("empty BIT STRING")),
        [unused] if *unused != 0 => Err(DerError::Malformed("BIT STRING not DER")),
        [unused, .., last] if *unused > 7 || last & ((1u8 << unused) - 1) != 0 => {
            Err(DerError::Malformed("BIT STRING not DER"))
        }
        _ => Ok(()),
    }
}

/// The PrintableString alphabet (X.680 41.4).
pub fn is_printable_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
        )
}

/// BMPString content (UCS-2, big-endian): an even length and no surrogate code units.
pub fn decode_bmp(v: &[u8]) -> Result<String, DerError> {
    if v.len() % 2 != 0 {
        return Err(DerError::Malformed("BMPString of odd length"));
    }
    v.chunks_exact(2)
        .map(|c| {
            char::from_u32(u32::from(u16::from_be_bytes([c[0], c[1]])))
                .ok_or(DerError::Malformed("BMPString holds a surrogate"))
        })
        .collect()
}

/// UniversalString content (UCS-4, big-endian): a length divisible by four, each unit a
/// Unicode scalar value.
pub fn decode_universal(v: &[u8]) -> Result<String, DerError> {
    if v.len() % 4 != 0 {
        return Err(DerError::Malformed(
            "UniversalString length not a multiple of 4",
        ));
    }
    v.chunks_exact(4)
        .map(|c| {
            char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .ok_or(DerError::Malformed("UniversalString holds a non-character"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::writer;

    #[test]
    fn der_we_write_passes() {
        let name = crate::x509::name::build(&[
            (crate::der::oid::AT_ORGANIZATION, "Example Corp"),
            (
                crate::der::oid::AT_COMMON_NAME,
                "Gerät managementAttestation X",
            ),
        ]);
        assert_eq!(check(&name), Ok(()));
        let long = writer::octet_string(&[7u8; 300]);
        assert_eq!(
            check(&writer::sequence(&[&long, &writer::boolean(true)])),
            Ok(())
        );
        assert_eq!(check(&writer::small_integer(128)), Ok(()));
        assert_eq!(check(&writer::bit_string(&[0xff, 0x00])), Ok(()));
    }

    #[test]
    fn ber_forms_are_refused() {
        for (bad, why) in [
            (&[0x30, 0x80, 0x05, 0x00, 0x00, 0x00][..], "indefinite"),
            (
                &[0x30, 0x81, 0x02, 0x05, 0x00],
                "long form for a short length",
            ),
            (
                &[0x30, 0x82, 0x00, 0x02, 0x05, 0x00],
                "leading zero length octet",
            ),
            (&[0x24, 0x03, 0x04, 0x01, 0x41], "constructed OCTET STRING"),
            (&[0x01, 0x01, 0x01], "BOOLEAN 1"),
            (&[0x02, 0x02, 0x00, 0x01], "INTEGER with a redundant zero"),
            (&[0x02, 0x02, 0xff, 0x80], "INTEGER with a redundant 0xff"),
            (&[0x02, 0x00], "empty INTEGER"),
            (&[0x06, 0x02, 0x80, 0x01], "OID with a padded subidentifier"),
            (&[0x06, 0x02, 0x2a, 0x86], "OID ending mid-subidentifier"),
            (
                &[0x03, 0x02, 0x01, 0x01],
                "BIT STRING with a set unused bit",
            ),
            (&[0x03, 0x01, 0x01], "BIT STRING unused bits but no content"),
            (
                &[0x13, 0x03, b'a', b'@', b'*'],
                "PrintableString with @ and *",
            ),
            (&[0x13, 0x01, b'_'], "PrintableString with _"),
            (&[0x1c, 0x03, 0, 0, 0x41], "UniversalString of odd length"),
            (&[0x1e, 0x01, 0x41], "BMPString of odd length"),
            (&[0x1e, 0x02, 0xd8, 0x00], "BMPString surrogate"),
            (&[0x0c, 0x01, 0xff], "UTF8String not UTF-8"),
            (&[0x16, 0x01, 0x80], "IA5String high bit"),
            (&[0x05, 0x00, 0x05, 0x00], "trailing TLV"),
            (
                &[0x31, 0x06, 0x02, 0x01, 0x02, 0x02, 0x01, 0x01],
                "unsorted SET OF",
            ),
        ] {
            assert!(check(bad).is_err(), "{why} was accepted");
        }
        assert_eq!(
            check(&[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]),
            Ok(())
        );
    }

    #[test]
    fn length_octets_match_the_writer() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536] {
            let tlv = writer::octet_string(&vec![0u8; len]);
            assert_eq!(tlv.len() - len, 1 + length_octets(len), "{len}");
            assert_eq!(check(&tlv), Ok(()));
        }
    }
}
