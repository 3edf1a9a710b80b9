//! Algorithm allowlists: every OID we accept maps to one variant here, everything else is refused
//! by name (RFC 8894 §2.9: no single DES unless a platform opts in, never MD5).

#[allow(deprecated)] // DES and 3DES are legacy by name; RFC 8894 clients still send them.
use aws_lc_rs::cipher::{
    AES_128, AES_192, AES_256, DES_EDE3_FOR_LEGACY_USE_ONLY, DES_FOR_LEGACY_USE_ONLY,
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey,
};
use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use zeroize::Zeroizing;

use crate::der::{DerError, Reader, Tlv, oid, tag, writer};

/// Why an algorithm or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlgorithmError {
    /// The OID is known but refused by policy, or not known at all.
    #[error("unsupported algorithm {0}")]
    Unsupported(String),
    /// The parameters of a known algorithm are malformed.
    #[error("malformed algorithm parameters")]
    BadParameters,
    /// A signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// The public key is malformed, of the wrong type, or too small.
    #[error("unacceptable public key: {0}")]
    BadKey(&'static str),
    /// Symmetric decryption failed (wrong key or corrupt padding).
    #[error("content decryption failed")]
    Decrypt,
}

impl From<DerError> for AlgorithmError {
    fn from(_: DerError) -> Self {
        Self::BadParameters
    }
}

/// Message digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlg {
    /// SHA-1 (legacy; accepted on input for old clients, never used for our signatures).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlg {
    /// From the OID content octets; MD5 and anything unknown are refused.
    pub fn from_oid(o: &[u8]) -> Result<Self, AlgorithmError> {
        Ok(match o {
            oid::SHA1 => Self::Sha1,
            oid::SHA256 => Self::Sha256,
            oid::SHA384 => Self::Sha384,
            oid::SHA512 => Self::Sha512,
            _ => {
                return Err(AlgorithmError::Unsupported(format!(
                    "digest {}",
                    oid::dotted(o)
                )));
            }
        })
    }

    /// The OID content octets.
    pub fn oid(self) -> &'static [u8] {
        match self {
            Self::Sha1 => oid::SHA1,
            Self::Sha256 => oid::SHA256,
            Self::Sha384 => oid::SHA384,
            Self::Sha512 => oid::SHA512,
        }
    }

    /// Parses a DigestAlgorithmIdentifier (parameters absent or NULL).
    pub fn from_algorithm_identifier(t: Tlv<'_>) -> Result<Self, AlgorithmError> {
        let mut r = t.expect(tag::SEQUENCE)?.reader();
        Self::from_oid(r.expect(tag::OID)?.value)
    }

    /// DER AlgorithmIdentifier (parameters absent, RFC 5754 §2).
    pub fn algorithm_identifier(self) -> Vec<u8> {
        writer::algorithm(self.oid(), None)
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> digest::Digest {
        digest::digest(self.ring_alg(), data)
    }

    fn ring_alg(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }

    /// Display name as GetCACaps spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }
}

/// Signature algorithms we verify (and, except SHA-1, produce).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlg {
    /// sha1WithRSAEncryption (verify only).
    RsaSha1,
    /// sha256WithRSAEncryption.
    RsaSha256,
    /// sha384WithRSAEncryption.
    RsaSha384,
    /// sha512WithRSAEncryption.
    RsaSha512,
    /// ecdsa-with-SHA256.
    EcdsaSha256,
    /// ecdsa-with-SHA384.
    EcdsaSha384,
    /// RSASSA-PSS (RFC 4055) with SHA-256, SHA-384 or SHA-512, MGF1 with the same hash, and
    /// this salt length (strongSwan `--rsa-padding pss`). Verify only.
    RsaPss {
        /// The hash of the signature and of MGF1.
        hash: DigestAlg,
        /// saltLength, in octets.
        salt_len: u16,
    },
}

/// The hash of an explicit `[1] maskGenAlgorithm` (RSAES-OAEP and RSASSA-PSS parameters):
/// only MGF1 is known; `scheme` names the parameters in the refusal.
fn mgf1_hash(tagged: Tlv<'_>, scheme: &str) -> Result<DigestAlg, AlgorithmError> {
    let mut mgf = tagged.reader().expect(tag::SEQUENCE)?.reader();
    if mgf.expect(tag::OID)?.value != oid::MGF1 {
        return Err(AlgorithmError::Unsupported(format!(
            "{scheme} mask generation function"
        )));
    }
    DigestAlg::from_algorithm_identifier(mgf.read()?)
}

/// Largest PSS salt accepted: a 8192-bit key with SHA-256 allows 990 octets; nobody sends more
/// than the hash length in practice, and a bound keeps the parameters honest.
const MAX_PSS_SALT: u16 = 1024;

impl SignatureAlg {
    /// From an X.509 / PKCS#10 signature AlgorithmIdentifier.
    pub fn from_algorithm_identifier(t: Tlv<'_>) -> Result<Self, AlgorithmError> {
        let mut r = t.expect(tag::SEQUENCE)?.reader();
        let o = r.expect(tag::OID)?.value;
        Ok(match o {
            oid::SHA1_WITH_RSA => Self::RsaSha1,
            oid::SHA256_WITH_RSA => Self::RsaSha256,
            oid::SHA384_WITH_RSA => Self::RsaSha384,
            oid::SHA512_WITH_RSA => Self::RsaSha512,
            oid::ECDSA_WITH_SHA256 => Self::EcdsaSha256,
            oid::ECDSA_WITH_SHA384 => Self::EcdsaSha384,
            oid::RSASSA_PSS => Self::pss_params(&mut r)?,
            _ => {
                return Err(AlgorithmError::Unsupported(format!(
                    "signature {}",
                    oid::dotted(o)
                )));
            }
        })
    }

    /// RSASSA-PSS-params (RFC 4055 §3.1): hashAlgorithm [0], maskGenAlgorithm [1], saltLength
    /// [2], trailerField [3], defaulting to SHA-1 / MGF1-SHA-1 / 20 / 1. SHA-1 and a mask hash
    /// other than the signature's are refused as unsupported (badAlg), not as malformed.
    fn pss_params(r: &mut Reader<'_>) -> Result<Self, AlgorithmError> {
        // Absent parameters mean all defaults: SHA-1, which we do not verify under PSS.
        let mut p = match r.is_empty() {
            true => Reader::new(&[]),
            false => r.expect(tag::SEQUENCE)?.reader(),
        };
        let mut hash = DigestAlg::Sha1;
        let mut mgf_hash = DigestAlg::Sha1;
        let mut salt_len: u16 = 20;
        if let Some(h) = p.optional(tag::context_constructed(0))? {
            hash = DigestAlg::from_algorithm_identifier(h.reader().read()?)?;
        }
        if let Some(m) = p.optional(tag::context_constructed(1))? {
            mgf_hash = mgf1_hash(m, "PSS")?;
        }
        if let Some(n) = p.optional(tag::context_constructed(2))? {
            let v = n.reader().expect(tag::INTEGER)?.unsigned_integer()?;
            salt_len = match v {
                [b] => u16::from(*b),
                [hi, lo] => u16::from_be_bytes([*hi, *lo]),
                _ => return Err(AlgorithmError::BadParameters),
            };
        }
        if let Some(t) = p.optional(tag::context_constructed(3))? {
            if t.reader().expect(tag::INTEGER)?.value != [1] {
                return Err(AlgorithmError::Unsupported("PSS trailer field".into()));
            }
        }
        if !p.is_empty() {
            return Err(AlgorithmError::BadParameters);
        }
        if hash == DigestAlg::Sha1 {
            return Err(AlgorithmError::Unsupported("PSS with SHA-1".into()));
        }
        if hash != mgf_hash {
            return Err(AlgorithmError::Unsupported(
                "PSS with differing hash and MGF1 hash".into(),
            ));
        }
        if salt_len > MAX_PSS_SALT {
            return Err(AlgorithmError::Unsupported("PSS salt length".into()));
        }
        Ok(Self::RsaPss { hash, salt_len })
    }

    /// From a CMS SignerInfo: the signature algorithm is often plain `rsaEncryption`, with the
    /// hash in `digestAlgorithm` (docs/architecture.md gotcha 4).
    pub fn for_signer_info(sig_alg: Tlv<'_>, digest: DigestAlg) -> Result<Self, AlgorithmError> {
        let mut r = sig_alg.expect(tag::SEQUENCE)?.reader();
        let o = r.expect(tag::OID)?.value;
        if o == oid::RSA_ENCRYPTION {
            return Ok(match digest {
                DigestAlg::Sha1 => Self::RsaSha1,
                DigestAlg::Sha256 => Self::RsaSha256,
                DigestAlg::Sha384 => Self::RsaSha384,
                DigestAlg::Sha512 => Self::RsaSha512,
            });
        }
        Self::from_algorithm_identifier(sig_alg)
    }

    /// DER AlgorithmIdentifier for certificates and CSRs (RSA with NULL parameters, RFC 4055).
    pub fn algorithm_identifier(self) -> Vec<u8> {
        match self {
            Self::RsaSha1 => writer::algorithm(oid::SHA1_WITH_RSA, Some(&writer::null())),
            Self::RsaSha256 => writer::algorithm(oid::SHA256_WITH_RSA, Some(&writer::null())),
            Self::RsaSha384 => writer::algorithm(oid::SHA384_WITH_RSA, Some(&writer::null())),
            Self::RsaSha512 => writer::algorithm(oid::SHA512_WITH_RSA, Some(&writer::null())),
            Self::EcdsaSha256 => writer::algorithm(oid::ECDSA_WITH_SHA256, None),
            Self::EcdsaSha384 => writer::algorithm(oid::ECDSA_WITH_SHA384, None),
            Self::RsaPss { hash, salt_len } => {
                let h = hash.algorithm_identifier();
                let mgf = writer::algorithm(oid::MGF1, Some(&h));
                let params = writer::sequence(&[
                    &writer::context(0, &[&h]),
                    &writer::context(1, &[&mgf]),
                    &writer::context(2, &[&writer::small_integer(u64::from(salt_len))]),
                ]);
                writer::algorithm(oid::RSASSA_PSS, Some(&params))
            }
        }
    }

    /// The AlgorithmIdentifier a CMS SignerInfo carries: `rsaEncryption` for RSA, as OpenSSL and
    /// most SCEP clients emit and expect.
    pub fn signer_info_identifier(self) -> Vec<u8> {
        match self {
            Self::RsaSha1 | Self::RsaSha256 | Self::RsaSha384 | Self::RsaSha512 => {
                writer::algorithm(oid::RSA_ENCRYPTION, Some(&writer::null()))
            }
            _ => self.algorithm_identifier(),
        }
    }

    /// The digest this signature hashes with.
    pub fn digest(self) -> DigestAlg {
        match self {
            Self::RsaSha1 => DigestAlg::Sha1,
            Self::RsaSha256 | Self::EcdsaSha256 => DigestAlg::Sha256,
            Self::RsaSha384 | Self::EcdsaSha384 => DigestAlg::Sha384,
            Self::RsaSha512 => DigestAlg::Sha512,
            Self::RsaPss { hash, .. } => hash,
        }
    }
}

/// The parts of a SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy)]
pub struct PublicKeyInfo<'a> {
    /// Algorithm OID content octets.
    pub algorithm: &'a [u8],
    /// Algorithm parameters (raw TLV), if present.
    pub parameters: Option<&'a [u8]>,
    /// The subjectPublicKey BIT STRING content without the unused-bits octet.
    pub key: &'a [u8],
}

impl<'a> PublicKeyInfo<'a> {
    /// Parses a DER SubjectPublicKeyInfo.
    pub fn parse(spki: &'a [u8]) -> Result<Self, AlgorithmError> {
        let mut outer = Reader::new(spki);
        let mut r = outer.expect(tag::SEQUENCE)?.reader();
        let mut alg = r.expect(tag::SEQUENCE)?.reader();
        let algorithm = alg.expect(tag::OID)?.value;
        let parameters = if alg.is_empty() {
            None
        } else {
            Some(alg.read()?.raw)
        };
        let bits = r.expect(tag::BIT_STRING)?.value;
        match bits.split_first() {
            Some((0, key)) => Ok(Self {
                algorithm,
                parameters,
                key,
            }),
            _ => Err(AlgorithmError::BadKey("subjectPublicKey bit string")),
        }
    }

    /// RSA modulus length in bits, or `None` for non-RSA keys.
    pub fn rsa_bits(&self) -> Option<usize> {
        if self.algorithm != oid::RSA_ENCRYPTION {
            return None;
        }
        let mut r = Reader::new(self.key);
        let mut seq = r.expect(tag::SEQUENCE).ok()?.reader();
        let n = seq.expect(tag::INTEGER).ok()?.unsigned_integer().ok()?;
        let lead = n.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
        Some((n.len().saturating_sub(1)) * 8 + lead)
    }

    /// Short description for logs and errors ("RSA-2048", "EC P-256").
    pub fn describe(&self) -> String {
        match (self.rsa_bits(), self.parameters) {
            (Some(b), _) => format!("RSA-{b}"),
            (None, Some(p)) if p == writer::oid(oid::SECP256R1) => "EC P-256".into(),
            (None, Some(p)) if p == writer::oid(oid::SECP384R1) => "EC P-384".into(),
            _ => format!("key {}", oid::dotted(self.algorithm)),
        }
    }
}

/// Largest RSA modulus accepted anywhere a key from outside is used (signatures, CSRs).
pub const MAX_RSA_BITS: usize = 8192;

/// Verifies `sig` over `msg` with the key in `spki`.
pub fn verify_signature(
    spki: &[u8],
    alg: SignatureAlg,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), AlgorithmError> {
    let info = PublicKeyInfo::parse(spki)?;
    let is_rsa = info.algorithm == oid::RSA_ENCRYPTION;
    // Bounded CPU per request: refuse oversized RSA keys before any big-number work (aws-lc's
    // *_8192 parameters refuse them too; this makes the limit explicit and cheap).
    if info.rsa_bits().is_some_and(|b| b > MAX_RSA_BITS) {
        return Err(AlgorithmError::BadKey("RSA key larger than 8192 bits"));
    }
    let params: &'static dyn signature::VerificationAlgorithm = match (alg, is_rsa) {
        // The 1024-bit floor here is for *message* signatures of throwaway signer certs; the
        // requested key size is policy, enforced on the CSR.
        (SignatureAlg::RsaSha1, true) => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (SignatureAlg::RsaSha256, true) => {
            &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
        }
        (SignatureAlg::RsaSha384, true) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (SignatureAlg::RsaSha512, true) => {
            &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
        }
        (SignatureAlg::RsaPss { hash, salt_len }, true) => {
            let base = match hash {
                DigestAlg::Sha256 => signature::RSA_PSS_2048_8192_SHA256,
                DigestAlg::Sha384 => signature::RSA_PSS_2048_8192_SHA384,
                DigestAlg::Sha512 => signature::RSA_PSS_2048_8192_SHA512,
                DigestAlg::Sha1 => {
                    return Err(AlgorithmError::Unsupported("PSS with SHA-1".into()));
                }
            };
            // The salt length is the signer's choice, carried in the parameters.
            let params = base.with_pss_salt_length(signature::RsaPssSaltLength::Custom(salt_len));
            return signature::VerificationAlgorithm::verify_sig(&params, info.key, msg, sig)
                .map_err(|_| AlgorithmError::BadSignature);
        }
        (SignatureAlg::EcdsaSha256 | SignatureAlg::EcdsaSha384, false) => {
            let curve = info
                .parameters
                .ok_or(AlgorithmError::BadKey("EC key without curve"))?;
            let p256 = curve == writer::oid(oid::SECP256R1).as_slice();
            let p384 = curve == writer::oid(oid::SECP384R1).as_slice();
            match (alg, p256, p384) {
                (SignatureAlg::EcdsaSha256, true, _) => &signature::ECDSA_P256_SHA256_ASN1,
                (SignatureAlg::EcdsaSha384, true, _) => &signature::ECDSA_P256_SHA384_ASN1,
                (SignatureAlg::EcdsaSha256, _, true) => &signature::ECDSA_P384_SHA256_ASN1,
                (SignatureAlg::EcdsaSha384, _, true) => &signature::ECDSA_P384_SHA384_ASN1,
                _ => return Err(AlgorithmError::BadKey("unsupported EC curve")),
            }
        }
        _ => {
            return Err(AlgorithmError::BadKey(
                "key type does not match signature algorithm",
            ));
        }
    };
    UnparsedPublicKey::new(params, info.key)
        .verify(msg, sig)
        .map_err(|_| AlgorithmError::BadSignature)
}

/// RSA key transport (RFC 5652 KeyTransRecipientInfo.keyEncryptionAlgorithm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyTransport {
    /// RSAES-PKCS1-v1_5 (`rsaEncryption`).
    RsaPkcs1v15,
    /// RSAES-OAEP with the given hash for both OAEP and MGF1 (RFC 8017; Windows uses SHA-1).
    RsaOaep(DigestAlg),
}

impl KeyTransport {
    /// Parses the keyEncryptionAlgorithm AlgorithmIdentifier.
    pub fn from_algorithm_identifier(t: Tlv<'_>) -> Result<Self, AlgorithmError> {
        let mut r = t.expect(tag::SEQUENCE)?.reader();
        let o = r.expect(tag::OID)?.value;
        match o {
            oid::RSA_ENCRYPTION => Ok(Self::RsaPkcs1v15),
            oid::RSAES_OAEP => Self::oaep_params(&mut r),
            _ => Err(AlgorithmError::Unsupported(format!(
                "key transport {}",
                oid::dotted(o)
            ))),
        }
    }

    /// RSAES-OAEP-params (RFC 8017 A.2.1): hashAlgorithm [0], maskGenAlgorithm [1],
    /// pSourceAlgorithm [2], all defaulting to SHA-1 / MGF1-SHA-1 / empty label.
    fn oaep_params(r: &mut Reader<'_>) -> Result<Self, AlgorithmError> {
        if r.is_empty() || r.peek_tag() == Some(tag::NULL) {
            return Ok(Self::RsaOaep(DigestAlg::Sha1));
        }
        let mut p = r.expect(tag::SEQUENCE)?.reader();
        let mut hash = DigestAlg::Sha1;
        let mut mgf_hash = DigestAlg::Sha1;
        if let Some(h) = p.optional(tag::context_constructed(0))? {
            hash = DigestAlg::from_algorithm_identifier(h.reader().read()?)?;
        }
        if let Some(m) = p.optional(tag::context_constructed(1))? {
            mgf_hash = mgf1_hash(m, "OAEP")?;
        }
        if p.optional(tag::context_constructed(2))?.is_some() {
            return Err(AlgorithmError::Unsupported("OAEP with a label".into()));
        }
        if hash != mgf_hash {
            return Err(AlgorithmError::Unsupported(
                "OAEP with differing hash and MGF1 hash".into(),
            ));
        }
        Ok(Self::RsaOaep(hash))
    }

    /// DER AlgorithmIdentifier (OAEP-SHA-1 encodes as empty parameters, the DER default).
    pub fn algorithm_identifier(self) -> Vec<u8> {
        match self {
            Self::RsaPkcs1v15 => writer::algorithm(oid::RSA_ENCRYPTION, Some(&writer::null())),
            Self::RsaOaep(DigestAlg::Sha1) => {
                writer::algorithm(oid::RSAES_OAEP, Some(&writer::sequence(&[])))
            }
            Self::RsaOaep(h) => {
                let hash = h.algorithm_identifier();
                let mgf = writer::algorithm(oid::MGF1, Some(&hash));
                let params = writer::sequence(&[
                    &writer::context(0, &[&hash]),
                    &writer::context(1, &[&mgf]),
                ]);
                writer::algorithm(oid::RSAES_OAEP, Some(&params))
            }
        }
    }
}

/// CBC content-encryption ciphers (CMS EncryptedContentInfo.contentEncryptionAlgorithm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentCipher {
    /// Single DES-CBC: forbidden by RFC 8894 §2.9; only where a platform explicitly allows it.
    DesCbc,
    /// Triple-DES (EDE3) CBC.
    DesEde3Cbc,
    /// AES-128-CBC.
    Aes128Cbc,
    /// AES-192-CBC.
    Aes192Cbc,
    /// AES-256-CBC.
    Aes256Cbc,
}

impl ContentCipher {
    /// From the OID content octets.
    pub fn from_oid(o: &[u8]) -> Result<Self, AlgorithmError> {
        Ok(match o {
            oid::DES_CBC => Self::DesCbc,
            oid::DES_EDE3_CBC => Self::DesEde3Cbc,
            oid::AES128_CBC => Self::Aes128Cbc,
            oid::AES192_CBC => Self::Aes192Cbc,
            oid::AES256_CBC => Self::Aes256Cbc,
            _ => {
                return Err(AlgorithmError::Unsupported(format!(
                    "content cipher {}",
                    oid::dotted(o)
                )));
            }
        })
    }

    /// The OID content octets.
    pub fn oid(self) -> &'static [u8] {
        match self {
            Self::DesCbc => oid::DES_CBC,
            Self::DesEde3Cbc => oid::DES_EDE3_CBC,
            Self::Aes128Cbc => oid::AES128_CBC,
            Self::Aes192Cbc => oid::AES192_CBC,
            Self::Aes256Cbc => oid::AES256_CBC,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::DesCbc => 8,
            Self::DesEde3Cbc | Self::Aes192Cbc => 24,
            Self::Aes128Cbc => 16,
            Self::Aes256Cbc => 32,
        }
    }

    /// IV (block) length in bytes.
    pub fn iv_len(self) -> usize {
        match self {
            Self::DesCbc | Self::DesEde3Cbc => 8,
            _ => 16,
        }
    }

    /// Short name for logs and failInfoText.
    pub fn name(self) -> &'static str {
        match self {
            Self::DesCbc => "DES-CBC",
            Self::DesEde3Cbc => "3DES-CBC",
            Self::Aes128Cbc => "AES-128-CBC",
            Self::Aes192Cbc => "AES-192-CBC",
            Self::Aes256Cbc => "AES-256-CBC",
        }
    }

    #[allow(deprecated)] // see the import: 3DES/DES exist for old clients, DES only by opt-in.
    fn unbound(self, key: &[u8]) -> Result<UnboundCipherKey, AlgorithmError> {
        let alg = match self {
            Self::DesCbc => &DES_FOR_LEGACY_USE_ONLY,
            Self::DesEde3Cbc => &DES_EDE3_FOR_LEGACY_USE_ONLY,
            Self::Aes128Cbc => &AES_128,
            Self::Aes192Cbc => &AES_192,
            Self::Aes256Cbc => &AES_256,
        };
        UnboundCipherKey::new(alg, key).map_err(|_| AlgorithmError::Decrypt)
    }

    /// Decrypts CBC with PKCS#7 padding.
    pub fn decrypt(
        self,
        key: &[u8],
        iv: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AlgorithmError> {
        if iv.len() != self.iv_len()
            || ciphertext.is_empty()
            || ciphertext.len() % self.iv_len() != 0
        {
            return Err(AlgorithmError::Decrypt);
        }
        let k = PaddedBlockDecryptingKey::cbc_pkcs7(self.unbound(key)?)
            .map_err(|_| AlgorithmError::Decrypt)?;
        let ctx = match self.iv_len() {
            8 => DecryptionContext::Iv64(iv.try_into().map_err(|_| AlgorithmError::Decrypt)?),
            _ => DecryptionContext::Iv128(iv.try_into().map_err(|_| AlgorithmError::Decrypt)?),
        };
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let n = k
            .decrypt(&mut buf, ctx)
            .map_err(|_| AlgorithmError::Decrypt)?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    /// Encrypts CBC with PKCS#7 padding under `key` and `iv`.
    pub fn encrypt(
        self,
        key: &[u8],
        iv: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AlgorithmError> {
        let k = PaddedBlockEncryptingKey::cbc_pkcs7(self.unbound(key)?)
            .map_err(|_| AlgorithmError::Decrypt)?;
        let ctx = match self.iv_len() {
            8 => EncryptionContext::Iv64(iv.try_into().map_err(|_| AlgorithmError::Decrypt)?),
            _ => EncryptionContext::Iv128(iv.try_into().map_err(|_| AlgorithmError::Decrypt)?),
        };
        let mut buf = plaintext.to_vec();
        k.less_safe_encrypt(&mut buf, ctx)
            .map_err(|_| AlgorithmError::Decrypt)?;
        Ok(buf)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{KeyPair, RsaKeyPair};

    fn parse_alg(der: &[u8]) -> Result<SignatureAlg, AlgorithmError> {
        SignatureAlg::from_algorithm_identifier(Reader::new(der).read()?)
    }

    fn pss_params(parts: &[&[u8]]) -> Vec<u8> {
        writer::algorithm(oid::RSASSA_PSS, Some(&writer::sequence(parts)))
    }

    #[test]
    fn pss_identifiers_round_trip_and_verify_strongswan_style_signatures() {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let spki = writer::sequence(&[
            &writer::algorithm(oid::RSA_ENCRYPTION, Some(&writer::null())),
            &writer::bit_string(pair.public_key().as_ref()),
        ]);
        let msg = b"signed attributes";
        for (hash, enc) in [
            (DigestAlg::Sha256, &signature::RSA_PSS_SHA256),
            (DigestAlg::Sha384, &signature::RSA_PSS_SHA384),
            (DigestAlg::Sha512, &signature::RSA_PSS_SHA512),
        ] {
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(enc, &SystemRandom::new(), msg, &mut sig).unwrap();
            let salt_len = u16::try_from(hash.digest(b"").as_ref().len()).unwrap();
            let alg = SignatureAlg::RsaPss { hash, salt_len };
            assert_eq!(parse_alg(&alg.algorithm_identifier()), Ok(alg));
            assert_eq!(alg.digest(), hash);
            assert_eq!(verify_signature(&spki, alg, msg, &sig), Ok(()));
            assert_eq!(
                verify_signature(&spki, alg, b"other attributes", &sig),
                Err(AlgorithmError::BadSignature)
            );
            // The salt length is part of what was signed: another one does not verify.
            let wrong_salt = SignatureAlg::RsaPss { hash, salt_len: 20 };
            assert_eq!(
                verify_signature(&spki, wrong_salt, msg, &sig),
                Err(AlgorithmError::BadSignature)
            );
        }
    }

    #[test]
    fn pss_parameters_we_cannot_verify_are_unsupported_not_malformed() {
        let sha256 = DigestAlg::Sha256.algorithm_identifier();
        let sha1 = DigestAlg::Sha1.algorithm_identifier();
        let mgf = |h: &[u8]| writer::algorithm(oid::MGF1, Some(h));
        let unsupported =
            |der: &[u8]| matches!(parse_alg(der), Err(AlgorithmError::Unsupported(_)));
        // Absent parameters and an empty sequence both mean SHA-1 / MGF1-SHA-1 / 20.
        assert!(unsupported(&writer::algorithm(oid::RSASSA_PSS, None)));
        assert!(unsupported(&pss_params(&[])));
        // SHA-256 with the default MGF1 (SHA-1).
        assert!(unsupported(&pss_params(&[&writer::context(0, &[&sha256])])));
        // A mask hash other than the signature's.
        assert!(unsupported(&pss_params(&[
            &writer::context(0, &[&sha256]),
            &writer::context(1, &[&mgf(&sha1)]),
        ])));
        // Trailer field other than 1.
        assert!(unsupported(&pss_params(&[
            &writer::context(0, &[&sha256]),
            &writer::context(1, &[&mgf(&sha256)]),
            &writer::context(3, &[&writer::small_integer(2)]),
        ])));
        // An MD5 hash: refused by name.
        let md5 = writer::algorithm(oid::MD5, None);
        assert!(unsupported(&pss_params(&[&writer::context(0, &[&md5])])));
        // The default salt length (20) with SHA-256 is accepted: it is the signer's choice.
        assert_eq!(
            parse_alg(&pss_params(&[
                &writer::context(0, &[&sha256]),
                &writer::context(1, &[&mgf(&sha256)]),
            ])),
            Ok(SignatureAlg::RsaPss {
                hash: DigestAlg::Sha256,
                salt_len: 20
            })
        );
        // Trailing garbage inside the parameters is malformed.
        assert_eq!(
            parse_alg(&pss_params(&[
                &writer::context(0, &[&sha256]),
                &writer::null()
            ])),
            Err(AlgorithmError::BadParameters)
        );
    }
}
