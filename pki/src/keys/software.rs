//! Keys held in process memory (aws-lc-rs). Key material is loaded once from PKCS#8 and the
//! encoded form is zeroized by the caller (the keystore); aws-lc frees and cleanses on drop.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384,
    OAEP_SHA512_MGF1SHA512, OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey,
    PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use zeroize::Zeroizing;

use super::{Decrypter, KeyAlgorithm, KeyError, Signer};
use crate::algorithms::{DigestAlg, KeyTransport, SignatureAlg};

enum Inner {
    Rsa {
        sign: RsaKeyPair,
        pkcs1: Pkcs1PrivateDecryptingKey,
        oaep: OaepPrivateDecryptingKey,
    },
    Ec {
        pair: EcdsaKeyPair,
        p384: bool,
    },
}

/// An RSA or ECDSA private key in memory.
pub struct SoftwareKey {
    inner: Inner,
    spki: Vec<u8>,
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SoftwareKey(..)")
    }
}

impl SoftwareKey {
    /// Generates a key; returns it with its PKCS#8 encoding (zeroized on drop) for the keystore.
    pub fn generate(alg: KeyAlgorithm) -> Result<(Self, Zeroizing<Vec<u8>>), KeyError> {
        let pkcs8 = match alg {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let size = match alg {
                    KeyAlgorithm::Rsa2048 => KeySize::Rsa2048,
                    KeyAlgorithm::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let pair = RsaKeyPair::generate(size).map_err(|_| KeyError::Generation)?;
                let der = pair.as_der().map_err(|_| KeyError::Generation)?;
                Zeroizing::new(der.as_ref().to_vec())
            }
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
                let a = if alg == KeyAlgorithm::EcP256 {
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING
                };
                let pair = EcdsaKeyPair::generate(a).map_err(|_| KeyError::Generation)?;
                let doc = pair.to_pkcs8v1().map_err(|_| KeyError::Generation)?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
        };
        Ok((Self::from_pkcs8(&pkcs8)?, pkcs8))
    }

    /// Loads an RSA or ECDSA (P-256/P-384) key from PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(sign) = RsaKeyPair::from_pkcs8(der) {
            let spki = sign
                .public_key()
                .as_der()
                .map_err(|_| KeyError::Rejected("rsa public key"))?
                .as_ref()
                .to_vec();
            let dec =
                || PrivateDecryptingKey::from_pkcs8(der).map_err(|_| KeyError::Rejected("rsa key"));
            let pkcs1 = Pkcs1PrivateDecryptingKey::new(dec()?)
                .map_err(|_| KeyError::Rejected("rsa key"))?;
            let oaep =
                OaepPrivateDecryptingKey::new(dec()?).map_err(|_| KeyError::Rejected("rsa key"))?;
            return Ok(Self {
                inner: Inner::Rsa { sign, pkcs1, oaep },
                spki,
            });
        }
        for (alg, p384) in [
            (&signature::ECDSA_P256_SHA256_ASN1_SIGNING, false),
            (&signature::ECDSA_P384_SHA384_ASN1_SIGNING, true),
        ] {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(alg, der) {
                let spki = pair
                    .public_key()
                    .as_der()
                    .map_err(|_| KeyError::Rejected("ec public key"))?
                    .as_ref()
                    .to_vec();
                return Ok(Self {
                    inner: Inner::Ec { pair, p384 },
                    spki,
                });
            }
        }
        Err(KeyError::Rejected(
            "not an RSA or P-256/P-384 PKCS#8 private key",
        ))
    }

    /// The algorithm of this key (RSA by modulus size; other RSA sizes report the next lower
    /// standard size).
    pub fn algorithm(&self) -> KeyAlgorithm {
        match &self.inner {
            Inner::Rsa { sign, .. } => match sign.public_modulus_len() * 8 {
                b if b >= 4096 => KeyAlgorithm::Rsa4096,
                b if b >= 3072 => KeyAlgorithm::Rsa3072,
                _ => KeyAlgorithm::Rsa2048,
            },
            Inner::Ec { p384: false, .. } => KeyAlgorithm::EcP256,
            Inner::Ec { p384: true, .. } => KeyAlgorithm::EcP384,
        }
    }

    /// True for RSA keys.
    pub fn is_rsa(&self) -> bool {
        matches!(self.inner, Inner::Rsa { .. })
    }

    /// RSA modulus size in bytes (0 for EC keys).
    pub fn rsa_modulus_len(&self) -> usize {
        match &self.inner {
            Inner::Rsa { sign, .. } => sign.public_modulus_len(),
            Inner::Ec { .. } => 0,
        }
    }
}

impl Signer for SoftwareKey {
    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn signature_alg(&self, digest: DigestAlg) -> Result<SignatureAlg, KeyError> {
        match (&self.inner, digest) {
            (Inner::Rsa { .. }, DigestAlg::Sha256) => Ok(SignatureAlg::RsaSha256),
            (Inner::Rsa { .. }, DigestAlg::Sha384) => Ok(SignatureAlg::RsaSha384),
            (Inner::Rsa { .. }, DigestAlg::Sha512) => Ok(SignatureAlg::RsaSha512),
            // aws-lc-rs does not sign with SHA-1 (docs/architecture.md §4); callers pick SHA-256.
            (Inner::Rsa { .. }, DigestAlg::Sha1) => {
                Err(KeyError::Rejected("SHA-1 signing is not supported"))
            }
            (Inner::Ec { p384: false, .. }, DigestAlg::Sha256) => Ok(SignatureAlg::EcdsaSha256),
            (Inner::Ec { p384: true, .. }, DigestAlg::Sha384) => Ok(SignatureAlg::EcdsaSha384),
            (Inner::Ec { .. }, _) => Err(KeyError::Rejected(
                "ECDSA key signs with its curve's digest only",
            )),
        }
    }

    fn sign(&self, digest: DigestAlg, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Rsa { sign, .. } => {
                let enc: &'static dyn signature::RsaEncoding = match digest {
                    DigestAlg::Sha256 => &signature::RSA_PKCS1_SHA256,
                    DigestAlg::Sha384 => &signature::RSA_PKCS1_SHA384,
                    DigestAlg::Sha512 => &signature::RSA_PKCS1_SHA512,
                    DigestAlg::Sha1 => {
                        return Err(KeyError::Rejected("SHA-1 signing is not supported"));
                    }
                };
                let mut sig = vec![0u8; sign.public_modulus_len()];
                sign.sign(enc, &rng, message, &mut sig)
                    .map_err(|_| KeyError::Operation)?;
                Ok(sig)
            }
            Inner::Ec { pair, .. } => {
                self.signature_alg(digest)?;
                let sig = pair.sign(&rng, message).map_err(|_| KeyError::Operation)?;
                Ok(sig.as_ref().to_vec())
            }
        }
    }
}

impl Decrypter for SoftwareKey {
    fn decrypt_key(
        &self,
        transport: KeyTransport,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let Inner::Rsa { pkcs1, oaep, .. } = &self.inner else {
            return Err(KeyError::Rejected("key transport needs an RSA key"));
        };
        let mut out = Zeroizing::new(vec![
            0u8;
            pkcs1.min_output_size().max(oaep.min_output_size())
        ]);
        let n = match transport {
            KeyTransport::RsaPkcs1v15 => pkcs1.decrypt(wrapped, &mut out),
            KeyTransport::RsaOaep(h) => {
                let alg = match h {
                    DigestAlg::Sha1 => &OAEP_SHA1_MGF1SHA1,
                    DigestAlg::Sha256 => &OAEP_SHA256_MGF1SHA256,
                    DigestAlg::Sha384 => &OAEP_SHA384_MGF1SHA384,
                    DigestAlg::Sha512 => &OAEP_SHA512_MGF1SHA512,
                };
                oaep.decrypt(alg, wrapped, &mut out, None)
            }
        }
        .map_err(|_| KeyError::Operation)?
        .len();
        out.truncate(n);
        Ok(out)
    }
}
