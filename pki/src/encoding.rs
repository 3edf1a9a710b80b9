//! The text encodings scepd reads and writes outside DER: base64 (SCEP GET messages, JSON
//! and PEM bodies), percent-encoding (SCEP query values; admin API path segments) and RFC 3339
//! times (JSON, the CLI). Small and exact enough not to need crates.
//!
//! Percent-encoding of URL path segments (RFC 3986 §2.1): the CLI encodes every id it puts
//! in an admin API path, the API decodes each segment exactly once after splitting the raw
//! path on `/`. So an id may contain `/`, `?`, `%` or spaces and still names one resource,
//! and no id can change which endpoint a request reaches.

use std::fmt::Write as _;

/// Standard base64 with padding (for our client's GET requests and JSON output).
pub fn encode_base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Lenient base64 for GET PKIOperation: standard alphabet, a space stands for `+` (a client or
/// proxy decoded `+` as space), line breaks (`%0A` from sscep/Apple) and padding are ignored,
/// URL-safe `-`/`_` accepted.
pub fn decode_base64_lenient(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b' ' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\r' | b'\n' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Percent-decodes without turning `+` into a space: in SCEP's base64 a `+` is data, and Apple
/// sends it raw (docs/scep-protocol.md §1.1). Invalid escapes are kept literally.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

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

/// RFC 3339 text (`2026-11-23T14:41:00Z`) for logs and JSON.
pub fn rfc3339(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = crate::der::time::split(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Unix seconds of an RFC 3339 date-time (`2026-11-23T14:41:00Z`, `2026-11-23t14:41:00.250+01:00`,
/// `2026-11-23 14:41:00Z`; a fraction is dropped), or of a full date alone (`2026-11-23`:
/// its midnight UTC), as operators type them for `--since` and `--activate-at`. A date-time
/// must name its offset: local time is never guessed. `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (date, rest) = b.split_at(10);
    let (time, offset): (&[u8], i64) = match rest.split_first() {
        None => (b"00:00:00", 0),
        Some((b'T' | b't' | b' ', rest))
            if rest.len() >= 8 && rest[2] == b':' && rest[5] == b':' =>
        {
            let (time, mut tail) = rest.split_at(8);
            if let Some(frac) = tail.strip_prefix(b".") {
                let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                tail = &frac[n..];
            }
            (time, utc_offset(tail)?)
        }
        Some(_) => return None,
    };
    let mut generalized: Vec<u8> = Vec::with_capacity(15);
    for part in [
        &date[0..4],
        &date[5..7],
        &date[8..10],
        &time[0..2],
        &time[3..5],
        &time[6..8],
    ] {
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        generalized.extend_from_slice(part);
    }
    generalized.push(b'Z');
    crate::der::time::parse_time(crate::der::tag::GENERALIZED_TIME, &generalized)
        .ok()
        .map(|utc| utc - offset)
}

/// Seconds east of UTC of an RFC 3339 offset: `Z` or `±HH:MM`.
fn utc_offset(text: &[u8]) -> Option<i64> {
    let two = |d: &[u8]| -> Option<i64> {
        match d {
            [a @ b'0'..=b'9', b @ b'0'..=b'9'] => {
                Some(i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            }
            _ => None,
        }
    };
    match text {
        b"Z" | b"z" => Some(0),
        [sign @ (b'+' | b'-'), h @ .., b':', m1, m2] if h.len() == 2 => {
            let (h, m) = (two(h)?, two(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            Some(if *sign == b'+' { secs } else { -secs })
        }
        _ => None,
    }
}

/// Seconds of a duration as operators type it: `3600`, `45s`, `30m`, `12h`, `90d`, `2w`, or
/// several parts (`1h30m`). Positive only; `None` for anything else or on overflow. Every
/// duration flag and field of scepd reads through this one function.
pub fn parse_duration(text: &str) -> Option<i64> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().ok().filter(|n| *n > 0);
    }
    let mut rest = t.as_bytes();
    let mut total: i64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (digits, tail) = rest.split_at(n);
        let (&unit, tail) = tail.split_first()?;
        let value: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        let unit = match unit {
            b's' => 1,
            b'm' => 60,
            b'h' => 3600,
            b'd' => 86_400,
            b'w' => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(value.checked_mul(unit)?)?;
        rest = tail;
    }
    (total > 0).then_some(total)
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

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        for t in [0i64, 951_782_400, 1_795_000_000, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{t}");
        }
    }

    #[test]
    fn rfc3339_as_operators_type_it() {
        let t = 1_795_000_000; // 2026-11-18T11:06:40Z
        for s in [
            "2026-11-18T11:06:40Z",
            "2026-11-18t11:06:40z",
            "2026-11-18 11:06:40Z",
            "2026-11-18T11:06:40.5Z",
            "2026-11-18T11:06:40.123456789Z",
            "2026-11-18T11:06:40+00:00",
            "2026-11-18T12:06:40+01:00",
            "2026-11-18T05:36:40-05:30",
        ] {
            assert_eq!(parse_rfc3339(s), Some(t), "{s:?}");
        }
        assert_eq!(
            parse_rfc3339("2026-11-18"),
            Some(t - 11 * 3600 - 6 * 60 - 40)
        );
    }

    #[test]
    fn rfc3339_other_than_ours_is_refused() {
        for s in [
            "",
            "2026-11-18T11:06:40",
            "2026-11-18T11:06:40.Z",
            "2026-11-18T11:06:40+0100",
            "2026-11-18T11:06:40+24:00",
            "2026-11-18T11:06Z",
            "2026-11-18X11:06:40Z",
            "2026-11-18T11:06:40Zjunk",
            "2026-11-1",
            "2026-13-18T11:06:40Z",
            "2026-11-18T25:06:40Z",
            "2026-1a-18T11:06:40Z",
            "２026-11-18T11:06:40Z",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s:?}");
        }
    }

    #[test]
    fn durations_in_every_spelling_operators_use() {
        for (text, secs) in [
            ("3600", 3600),
            (" 45s ", 45),
            ("30m", 1800),
            ("12h", 43_200),
            ("90d", 7_776_000),
            ("2w", 1_209_600),
            ("1h30m", 5400),
            ("1d12h", 129_600),
        ] {
            assert_eq!(parse_duration(text), Some(secs), "{text:?}");
        }
        for text in [
            "",
            "0",
            "0s",
            "-5m",
            "5x",
            "m",
            "1.5h",
            "h1",
            "99999999999999999999d",
            "１h",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
    }
}
