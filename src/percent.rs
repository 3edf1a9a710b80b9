//! Percent-encoding of URL path segments (RFC 3986 §2.1): the CLI encodes every id it puts
//! in an admin API path, the API decodes each segment exactly once after splitting the raw
//! path on `/`. So an id may contain `/`, `?`, `%` or spaces and still names one resource,
//! and no id can change which endpoint a request reaches. Small enough not to need a crate.

use std::fmt::Write as _;

/// Why a path segment could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PercentError {
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-escape at byte {0}")]
    MalformedEscape(usize),
    /// The decoded bytes are not UTF-8.
    #[error("percent-decoded segment is not UTF-8")]
    NotUtf8,
}

/// `s` with every byte outside RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`) escaped as
/// `%XX`, so the result is one path segment whatever `s` holds.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes one path segment strictly: every `%` must start a two-hex-digit escape and the
/// result must be UTF-8 (unlike the lenient SCEP query decoder, which passes junk through).
pub fn decode_segment(s: &str) -> Result<String, PercentError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = |at: usize| {
                b.get(at)
                    .and_then(|d| char::from(*d).to_digit(16))
                    .and_then(|d| u8::try_from(d).ok())
            };
            match (hex(i + 1), hex(i + 2)) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(PercentError::MalformedEscape(i)),
            }
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PercentError::NotUtf8)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(encode_segment("LAPTOP-8_x.y~z"), "LAPTOP-8_x.y~z");
        assert_eq!(
            encode_segment("John's MacBook/deactivate?x%"),
            "John%27s%20MacBook%2Fdeactivate%3Fx%25"
        );
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert_eq!(encode_segment(""), "");
    }

    #[test]
    fn decoding_is_the_inverse_and_strict() {
        for s in [
            "John's MacBook",
            "LAPTOP-8/deactivate?x",
            "100%",
            "é\u{1b}[31m",
            "",
        ] {
            assert_eq!(decode_segment(&encode_segment(s)).unwrap(), s);
        }
        assert_eq!(decode_segment("a%2fb").unwrap(), "a/b");
        // Decoded once: an escaped escape stays an escape.
        assert_eq!(decode_segment("%252F").unwrap(), "%2F");
        assert_eq!(decode_segment("x%"), Err(PercentError::MalformedEscape(1)));
        assert_eq!(decode_segment("%4"), Err(PercentError::MalformedEscape(0)));
        assert_eq!(decode_segment("%G0"), Err(PercentError::MalformedEscape(0)));
        assert_eq!(decode_segment("%+1"), Err(PercentError::MalformedEscape(0)));
        assert_eq!(decode_segment("%FF"), Err(PercentError::NotUtf8));
        assert_eq!(decode_segment("%C3"), Err(PercentError::NotUtf8));
    }
}
