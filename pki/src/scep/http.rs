//! Pure decoding of SCEP's HTTP transport (RFC 8894 §4): the operation and the GET `message`
//! parameter, tolerating what real clients send.

/// The SCEP operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// GetCACaps
    GetCaCaps,
    /// GetCACert
    GetCaCert,
    /// GetNextCACert
    GetNextCaCert,
    /// PKIOperation
    PkiOperation,
}

impl Operation {
    /// Parses the `operation` parameter (case-insensitive: clients vary).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "getcacaps" => Self::GetCaCaps,
            "getcacert" => Self::GetCaCert,
            "getnextcacert" => Self::GetNextCaCert,
            "pkioperation" => Self::PkiOperation,
            _ => return None,
        })
    }
}

/// The raw (still percent-encoded) value of query parameter `name`.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        k.eq_ignore_ascii_case(name).then_some(v)
    })
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

/// Decodes the GET `message` parameter of a PKIOperation.
pub fn decode_get_message(raw_param: &str) -> Option<Vec<u8>> {
    decode_base64_lenient(&percent_decode(raw_param))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_quirks() {
        let data: Vec<u8> = (0u8..=255).collect();
        let b64 = encode_base64(&data);
        assert!(b64.contains('+') && b64.contains('/'));
        // Raw '+', '+' turned into spaces, fully escaped, and with %0A line breaks.
        assert_eq!(decode_get_message(&b64).unwrap(), data);
        assert_eq!(decode_get_message(&b64.replace('+', " ")).unwrap(), data);
        let escaped = b64
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        assert_eq!(decode_get_message(&escaped).unwrap(), data);
        let wrapped: String = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("%0A");
        assert_eq!(decode_get_message(&wrapped).unwrap(), data);
        assert!(decode_get_message("abc*def").is_none());
        assert_eq!(
            query_param("operation=PKIOperation&message=a+b", "message"),
            Some("a+b")
        );
        assert_eq!(Operation::parse("GetCACaps"), Some(Operation::GetCaCaps));
    }
}
