//! Encrypted PKCS#8 (RFC 5958 EncryptedPrivateKeyInfo) with PBES2 (RFC 8018): PBKDF2 with
//! HMAC-SHA-256 and AES-256-CBC — the format `openssl pkcs8 -topk8 -v2 aes-256-cbc
//! -v2prf hmacWithSHA256` writes and reads, so operators can inspect keys with OpenSSL.
//!
//! ```text
//! EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm AlgorithmIdentifier, encryptedData OCTET STRING }
//! PBES2-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier, encryptionScheme AlgorithmIdentifier }
//! PBKDF2-params ::= SEQUENCE { salt OCTET STRING, iterationCount INTEGER, keyLength INTEGER OPTIONAL,
//!     prf AlgorithmIdentifier DEFAULT hmacWithSHA1 }
//! ```

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use zeroize::Zeroizing;

use crate::algorithms::ContentCipher;
use crate::der::{Reader, oid, tag, writer};
use crate::random::Random;

use super::KeyError;

/// PBKDF2 iterations for new files (OWASP 2023 guidance for PBKDF2-HMAC-SHA256).
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// Most iterations accepted when reading (bounds start-up time on hostile files).
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// Encrypts a PKCS#8 PrivateKeyInfo under `passphrase`.
pub fn encrypt(
    pkcs8: &[u8],
    passphrase: &[u8],
    iterations: u32,
    rng: &dyn Random,
) -> Result<Vec<u8>, KeyError> {
    let iterations =
        NonZeroU32::new(iterations).ok_or(KeyError::Rejected("iterations must be positive"))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    rng.fill(&mut salt).map_err(|_| KeyError::Operation)?;
    rng.fill(&mut iv).map_err(|_| KeyError::Operation)?;
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        passphrase,
        key.as_mut(),
    );
    let ct = ContentCipher::Aes256Cbc
        .encrypt(key.as_ref(), &iv, pkcs8)
        .map_err(|_| KeyError::Operation)?;
    let kdf_params = writer::sequence(&[
        &writer::octet_string(&salt),
        &writer::small_integer(u64::from(iterations.get())),
        &writer::algorithm(oid::HMAC_WITH_SHA256, Some(&writer::null())),
    ]);
    let kdf = writer::algorithm(oid::PBKDF2, Some(&kdf_params));
    let scheme = writer::algorithm(oid::AES256_CBC, Some(&writer::octet_string(&iv)));
    let alg = writer::algorithm(oid::PBES2, Some(&writer::sequence(&[&kdf, &scheme])));
    Ok(writer::sequence(&[&alg, &writer::octet_string(&ct)]))
}

/// True when `der` looks like an EncryptedPrivateKeyInfo (rather than a plain PrivateKeyInfo).
pub fn is_encrypted(der: &[u8]) -> bool {
    let Ok(outer) = Reader::new(der).expect(tag::SEQUENCE) else {
        return false;
    };
    outer.reader().peek_tag() == Some(tag::SEQUENCE)
}

/// Decrypts an EncryptedPrivateKeyInfo (PBES2 / PBKDF2-HMAC-SHA-256 or -SHA-1 / AES-CBC).
/// A wrong passphrase and a corrupt file give the same error; the plaintext must be one DER
/// SEQUENCE (a PrivateKeyInfo).
pub fn decrypt(der: &[u8], passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let bad = KeyError::Rejected("cannot decrypt the key: wrong passphrase or corrupt file");
    let mut r = Reader::new(der)
        .expect(tag::SEQUENCE)
        .map_err(|_| bad.clone())?
        .reader();
    let mut alg = r.expect(tag::SEQUENCE).map_err(|_| bad.clone())?.reader();
    let data = r.expect(tag::OCTET_STRING).map_err(|_| bad.clone())?.value;
    if alg.expect(tag::OID).map_err(|_| bad.clone())?.value != oid::PBES2 {
        return Err(KeyError::Rejected(
            "unsupported key encryption (need PBES2)",
        ));
    }
    let mut params = alg.expect(tag::SEQUENCE).map_err(|_| bad.clone())?.reader();
    let mut kdf = params
        .expect(tag::SEQUENCE)
        .map_err(|_| bad.clone())?
        .reader();
    if kdf.expect(tag::OID).map_err(|_| bad.clone())?.value != oid::PBKDF2 {
        return Err(KeyError::Rejected(
            "unsupported key derivation (need PBKDF2)",
        ));
    }
    let mut kp = kdf.expect(tag::SEQUENCE).map_err(|_| bad.clone())?.reader();
    let salt = kp.expect(tag::OCTET_STRING).map_err(|_| bad.clone())?.value;
    let iterations = kp
        .expect(tag::INTEGER)
        .and_then(|t| t.small_uint())
        .map_err(|_| bad.clone())?;
    if kp.peek_tag() == Some(tag::INTEGER) {
        kp.read().map_err(|_| bad.clone())?;
    }
    let prf = match kp.optional(tag::SEQUENCE).map_err(|_| bad.clone())? {
        None => pbkdf2::PBKDF2_HMAC_SHA1,
        Some(p) => match p.reader().expect(tag::OID).map_err(|_| bad.clone())?.value {
            oid::HMAC_WITH_SHA256 => pbkdf2::PBKDF2_HMAC_SHA256,
            _ => {
                return Err(KeyError::Rejected(
                    "unsupported PBKDF2 PRF (need hmacWithSHA256)",
                ));
            }
        },
    };
    let iterations = u32::try_from(iterations)
        .ok()
        .filter(|i| *i <= MAX_ITERATIONS)
        .and_then(NonZeroU32::new)
        .ok_or(KeyError::Rejected("PBKDF2 iteration count out of range"))?;
    let mut scheme = params
        .expect(tag::SEQUENCE)
        .map_err(|_| bad.clone())?
        .reader();
    let cipher = ContentCipher::from_oid(scheme.expect(tag::OID).map_err(|_| bad.clone())?.value)
        .ok()
        .filter(|c| {
            matches!(
                c,
                ContentCipher::Aes128Cbc | ContentCipher::Aes192Cbc | ContentCipher::Aes256Cbc
            )
        })
        .ok_or(KeyError::Rejected(
            "unsupported key encryption cipher (need AES-CBC)",
        ))?;
    let iv = scheme
        .expect(tag::OCTET_STRING)
        .map_err(|_| bad.clone())?
        .value;
    let mut key = Zeroizing::new(vec![0u8; cipher.key_len()]);
    pbkdf2::derive(prf, iterations, salt, passphrase, &mut key);
    let plain = cipher.decrypt(&key, iv, data).map_err(|_| bad.clone())?;
    // A wrong key still yields valid CBC padding about once in 256 tries; its garbage must
    // get the same answer, not a confusing "invalid key" from the PKCS#8 parser later.
    let mut outer = Reader::new(&plain);
    outer.expect(tag::SEQUENCE).map_err(|_| bad.clone())?;
    outer.finish().map_err(|_| bad)?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::random::SystemRandom;

    /// Every wrong passphrase gets the same error, including the ~1 in 256 whose decryption
    /// happens to end in valid padding.
    #[test]
    fn wrong_passphrases_always_say_so() {
        let secret = b"\x30\x03\x02\x01\x00";
        let enc = encrypt(secret, b"right", 1, &SystemRandom).unwrap();
        for i in 0..2000u32 {
            let e = decrypt(&enc, format!("wrong {i}").as_bytes()).unwrap_err();
            assert_eq!(
                e,
                KeyError::Rejected("cannot decrypt the key: wrong passphrase or corrupt file")
            );
        }
    }

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let secret = b"\x30\x0f\x04\x0dpretend pkcs8";
        let enc = encrypt(secret, b"correct horse", 1000, &SystemRandom).unwrap();
        assert!(is_encrypted(&enc));
        assert_eq!(&decrypt(&enc, b"correct horse").unwrap()[..], secret);
        assert!(decrypt(&enc, b"wrong").is_err());
        assert!(decrypt(&enc[..enc.len() - 3], b"correct horse").is_err());
    }
}
