//! Certificate serial numbers: canonical form and the hex text the store keeps.

use std::fmt::Write as _;

/// Longest DER INTEGER content a serial may have (RFC 5280 §4.1.2.2).
pub const MAX_SERIAL_OCTETS: usize = 20;

/// Formats a serial as the store keeps and displays it: lowercase hex, two digits per octet,
/// leading zero octets dropped, no separators (`[0x00, 0x0a, 0xff]` → `"0aff"`).
pub fn format_serial(serial: &[u8]) -> String {
    let start = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    serial[start..].iter().fold(String::new(), |mut hex, b| {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// The serial without leading zero octets, if it is positive and its DER encoding (which adds
/// a zero octet when the top bit is set) fits [`MAX_SERIAL_OCTETS`].
pub(super) fn canonical_serial(serial: &[u8]) -> Option<&[u8]> {
    let start = serial.iter().position(|&b| b != 0)?;
    let magnitude = serial.get(start..)?;
    let sign_octet = magnitude.first().is_some_and(|b| b & 0x80 != 0);
    (magnitude.len() + usize::from(sign_octet) <= MAX_SERIAL_OCTETS).then_some(magnitude)
}

/// Inverse of [`format_serial`] for stored text.
pub(super) fn parse_hex(s: &str) -> Option<Vec<u8>> {
    scepd_pki::unhex(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_lowercase_hex_without_leading_zero_octets() {
        assert_eq!(format_serial(&[0x00, 0x0a, 0xff]), "0aff");
        assert_eq!(format_serial(&[0x7f, 0x01]), "7f01");
        assert_eq!(format_serial(&[]), "");
    }

    #[test]
    fn canonical_serial_is_positive_and_fits_20_der_octets() {
        assert_eq!(canonical_serial(&[0, 0, 5]), Some(&[5][..]));
        assert_eq!(canonical_serial(&[]), None);
        assert_eq!(canonical_serial(&[0, 0]), None);
        assert!(canonical_serial(&[0x7f; 20]).is_some());
        assert!(canonical_serial(&[0x80; 19]).is_some());
        assert_eq!(canonical_serial(&[0x80; 20]), None); // needs a 21st (sign) octet
        assert_eq!(canonical_serial(&[1; 21]), None);
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let serial = [0x01, 0xab, 0xff];
        assert_eq!(parse_hex(&format_serial(&serial)), Some(serial.to_vec()));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex("+1"), None);
    }
}
