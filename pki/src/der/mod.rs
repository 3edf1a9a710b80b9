//! Minimal ASN.1 layer: a lenient BER reader that hands out byte ranges of what was received
//! (CMS signatures must be checked over the raw bytes, docs/architecture.md gotchas 1–2) and a DER
//! writer for everything we emit (exact bytes, no fractional seconds, sorted SETs where DER asks).

pub mod oid;
pub mod reader;
pub mod strict;
pub mod time;
pub mod writer;

pub use reader::{Reader, Tlv};

/// A big-endian unsigned magnitude without its leading zero octets, keeping the last octet
/// (zero stays `[0]`): how INTEGER contents and serial numbers compare and re-encode.
pub fn strip_leading_zeros(mut magnitude: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = magnitude {
        if rest.is_empty() {
            break;
        }
        magnitude = rest;
    }
    magnitude
}

/// Errors from decoding ASN.1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DerError {
    /// The input ended inside a value.
    #[error("truncated ASN.1 value")]
    Truncated,
    /// A length or tag form we do not accept.
    #[error("malformed ASN.1: {0}")]
    Malformed(&'static str),
    /// A different tag was found than the structure requires.
    #[error("unexpected ASN.1 tag 0x{found:02x} (expected 0x{expected:02x})")]
    UnexpectedTag {
        /// Tag the structure requires.
        expected: u8,
        /// Tag found in the input.
        found: u8,
    },
    /// Nesting deeper than we are willing to follow.
    #[error("ASN.1 nested too deeply")]
    TooDeep,
}

/// Universal and context tags used across the crate (single-octet identifier form).
pub mod tag {
    /// BOOLEAN
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING (primitive)
    pub const OCTET_STRING: u8 = 0x04;
    /// OCTET STRING (constructed, BER only)
    pub const OCTET_STRING_CONSTRUCTED: u8 = 0x24;
    /// NULL
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER
    pub const OID: u8 = 0x06;
    /// UTF8String
    pub const UTF8_STRING: u8 = 0x0c;
    /// PrintableString
    pub const PRINTABLE_STRING: u8 = 0x13;
    /// TeletexString (T61String)
    pub const TELETEX_STRING: u8 = 0x14;
    /// IA5String
    pub const IA5_STRING: u8 = 0x16;
    /// UTCTime
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// UniversalString
    pub const UNIVERSAL_STRING: u8 = 0x1c;
    /// BMPString
    pub const BMP_STRING: u8 = 0x1e;
    /// SEQUENCE / SEQUENCE OF
    pub const SEQUENCE: u8 = 0x30;
    /// SET / SET OF
    pub const SET: u8 = 0x31;

    /// `[n]` constructed context-specific tag.
    pub const fn context_constructed(n: u8) -> u8 {
        0xa0 | n
    }
    /// `[n]` primitive context-specific tag.
    pub const fn context_primitive(n: u8) -> u8 {
        0x80 | n
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn leading_zeros_go_and_one_octet_stays() {
        use super::strip_leading_zeros as strip;
        assert_eq!(strip(&[0, 0, 0x80, 0]), [0x80, 0]);
        assert_eq!(strip(&[0x01, 0]), [0x01, 0]);
        assert_eq!(strip(&[0, 0, 0]), [0]);
        assert_eq!(strip(&[0]), [0]);
        assert_eq!(strip(&[]), [0u8; 0]);
    }
}
