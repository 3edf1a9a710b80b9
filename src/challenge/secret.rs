//! Generating and hashing challenge secrets.
//!
//! Secrets are 32 characters of RFC 4648 base32 (A–Z, 2–7): 160 bits, and every character is
//! PrintableString-safe (Windows refuses `_` and other symbols; scep-protocol.md §2.2).

use aws_lc_rs::digest;
use zeroize::Zeroizing;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Length of generated secrets in characters (5 bits each).
pub const SECRET_LEN: usize = 32;

/// A fresh random secret.
pub fn generate() -> Result<Zeroizing<String>, aws_lc_rs::error::Unspecified> {
    let mut raw = Zeroizing::new([0u8; SECRET_LEN]);
    aws_lc_rs::rand::fill(raw.as_mut())?;
    Ok(Zeroizing::new(
        raw.iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
            .collect(),
    ))
}

/// The stored form: SHA-256 of the secret. A fast hash is enough because generated secrets
/// carry 160 bits of entropy; there is nothing to brute-force.
pub fn hash(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

/// Constant-time check of `candidate` against a stored hash.
pub fn matches(candidate: &str, stored_hash: &[u8]) -> bool {
    let h = hash(candidate);
    aws_lc_rs::constant_time::verify_slices_are_equal(&h, stored_hash).is_ok()
}
