//! Pure decoding of SCEP's HTTP transport (RFC 8894 §4): the operation and the GET `message`
//! parameter, tolerating what real clients send.

use crate::encoding::{decode_base64_lenient, percent_decode};

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

/// Decodes the GET `message` parameter of a PKIOperation.
pub fn decode_get_message(raw_param: &str) -> Option<Vec<u8>> {
    decode_base64_lenient(&percent_decode(raw_param))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::encode_base64;

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
