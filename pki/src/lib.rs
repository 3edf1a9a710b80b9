//! `scepd-pki`: the sans-IO half of scepd. SCEP messages (RFC 8894), the CMS they travel in
//! (RFC 5652), PKCS#10 requests, certificate issuance and CA hierarchy bootstrap.
//!
//! Nothing here performs I/O: time, randomness sources and keys come in as parameters, so every
//! function is deterministic under test.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod algorithms;
pub mod der;
pub mod encoding;
pub mod error;
pub mod keys;
pub mod x509;

pub use error::Error;

/// Lowercase hex without separators (serials, fingerprints, transaction ids in logs).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Inverse of [`hex`] (either case); None unless `s` is an even number of hex digits.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| {
            let d = |c: u8| char::from(c).to_digit(16);
            u8::try_from(d(p[0])? * 16 + d(p[1])?).ok()
        })
        .collect()
}
pub mod ca;
pub mod cms;
pub mod issue;
pub mod pkcs10;
pub mod random;
pub mod revocation;
pub mod scep;
