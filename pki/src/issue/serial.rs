//! Certificate serial numbers: 16 random octets with the top bit cleared (positive, ≤ 20
//! octets, RFC 5280 §4.1.2.2; ≥ 64 bits of entropy per CA/B Forum practice). Uniqueness is
//! enforced again by the store.

use crate::random::{Random, RandomError};

/// Serial length in octets.
pub const SERIAL_LEN: usize = 16;

/// A fresh random serial magnitude.
pub fn random_serial(rng: &dyn Random) -> Result<[u8; SERIAL_LEN], RandomError> {
    let mut s = [0u8; SERIAL_LEN];
    rng.fill(&mut s)?;
    s[0] &= 0x7f;
    // Keep the full length (no leading zero octet to strip) so every serial encodes the same way.
    s[0] |= 0x01;
    Ok(s)
}
