//! Private keys behind two narrow traits, so the protocol code never sees key material and a
//! PKCS#11 backend can follow without touching callers.

pub mod encrypted_pkcs8;
mod software;

pub use software::SoftwareKey;

use zeroize::Zeroizing;

use crate::algorithms::{DigestAlg, KeyTransport, SignatureAlg};

/// Errors from key operations (deliberately without detail: key errors must not leak oracles).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key material could not be parsed or is of an unsupported type.
    #[error("unsupported or malformed key: {0}")]
    Rejected(&'static str),
    /// Key generation failed.
    #[error("key generation failed")]
    Generation,
    /// The cryptographic operation failed.
    #[error("key operation failed")]
    Operation,
}

/// Key algorithms we generate for CA, RA and test keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
}

impl KeyAlgorithm {
    /// The configuration spelling (`rsa-2048`, `ecdsa-p256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::EcP256 => "ecdsa-p256",
            Self::EcP384 => "ecdsa-p384",
        }
    }

    /// True for the RSA variants (SCEP recipients must be RSA).
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "rsa-2048" | "rsa2048" => Self::Rsa2048,
            "rsa-3072" | "rsa3072" => Self::Rsa3072,
            "rsa-4096" | "rsa4096" => Self::Rsa4096,
            "ecdsa-p256" | "p256" | "p-256" => Self::EcP256,
            "ecdsa-p384" | "p384" | "p-384" => Self::EcP384,
            _ => {
                return Err(KeyError::Rejected(
                    "unknown key algorithm (rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384)",
                ));
            }
        })
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that signs with a private key (CA, RA, or a client's key in our test client).
pub trait Signer: Send + Sync {
    /// DER SubjectPublicKeyInfo of the matching public key.
    fn public_key_der(&self) -> &[u8];
    /// The signature algorithm used for `digest` (RSA PKCS#1 v1.5 or ECDSA).
    fn signature_alg(&self, digest: DigestAlg) -> Result<SignatureAlg, KeyError>;
    /// Signs `message`, hashing it with `digest`.
    fn sign(&self, digest: DigestAlg, message: &[u8]) -> Result<Vec<u8>, KeyError>;
}

/// Something that can undo RSA key transport (the RA key).
pub trait Decrypter: Send + Sync {
    /// Decrypts a wrapped content-encryption key.
    fn decrypt_key(
        &self,
        transport: KeyTransport,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError>;
}
