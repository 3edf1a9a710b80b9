//! EnvelopedData with RSA key transport and CBC content encryption.
//!
//! ```text
//! EnvelopedData ::= SEQUENCE { version, originatorInfo [0] IMPLICIT OPTIONAL, recipientInfos SET OF,
//!     encryptedContentInfo SEQUENCE { contentType, contentEncryptionAlgorithm,
//!         encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }, unprotectedAttrs [1] OPTIONAL }
//! KeyTransRecipientInfo ::= SEQUENCE { version, rid RecipientIdentifier, keyEncryptionAlgorithm,
//!     encryptedKey OCTET STRING }
//! ```

use std::borrow::Cow;

use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, Pkcs1PublicEncryptingKey, PublicEncryptingKey};
use zeroize::Zeroizing;

use super::{CmsError, issuer_and_serial};
use crate::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use crate::der::{Reader, Tlv, oid, tag, writer};
use crate::keys::Decrypter;
use crate::random::Random;
use crate::x509::Certificate;
use crate::x509::certificate::subject_key_id;

/// One KeyTransRecipientInfo.
#[derive(Debug, Clone)]
pub struct KeyTransRecipient<'a> {
    /// Issuer+serial or subjectKeyIdentifier of the recipient certificate.
    pub rid: super::signed_data::SignerId<'a>,
    /// RSA v1.5 or OAEP.
    pub transport: KeyTransport,
    /// The wrapped content-encryption key.
    pub encrypted_key: &'a [u8],
}

/// A parsed EnvelopedData.
#[derive(Debug, Clone)]
pub struct EnvelopedData<'a> {
    /// Key-transport recipients (other recipient kinds are skipped).
    pub recipients: Vec<KeyTransRecipient<'a>>,
    /// The content cipher, or the refusal if its OID is not on our list.
    pub cipher: Result<ContentCipher, crate::algorithms::AlgorithmError>,
    iv: &'a [u8],
    ciphertext: Cow<'a, [u8]>,
}

impl<'a> EnvelopedData<'a> {
    /// Parses either a ContentInfo(envelopedData) or a bare EnvelopedData.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CmsError> {
        let first = Reader::new(bytes).expect(tag::SEQUENCE)?;
        let body = match first.reader().peek_tag() {
            Some(tag::OID) => super::signed_data::unwrap_content_info(bytes, oid::ENVELOPED_DATA)?,
            _ => first.raw,
        };
        let mut r = Reader::new(body).expect(tag::SEQUENCE)?.reader();
        r.expect(tag::INTEGER)?;
        r.optional(tag::context_constructed(0))?;
        let mut recipients = Vec::new();
        let mut ris = r.expect(tag::SET)?.reader();
        while !ris.is_empty() {
            let ri = ris.read()?;
            // KeyTransRecipientInfo is the untagged SEQUENCE choice; others are [1]..[4].
            if ri.tag == tag::SEQUENCE {
                recipients.push(parse_ktri(ri)?);
            }
        }
        let mut eci = r.expect(tag::SEQUENCE)?.reader();
        eci.expect(tag::OID)?;
        let mut alg = eci.expect(tag::SEQUENCE)?.reader();
        let cipher_oid = alg.expect(tag::OID)?.value;
        let cipher = ContentCipher::from_oid(cipher_oid);
        let iv = match (&cipher, alg.optional(tag::OCTET_STRING)?) {
            (Ok(_), Some(iv)) => iv.value,
            (Ok(_), None) => return Err(CmsError::Malformed("content cipher IV missing")),
            (Err(_), _) => &[],
        };
        let enc = eci.read()?;
        if enc.tag & 0x1f != 0 || enc.tag & 0xc0 != 0x80 {
            return Err(CmsError::Malformed("encryptedContent missing"));
        }
        Ok(Self {
            recipients,
            cipher,
            iv,
            ciphertext: enc.octets()?,
        })
    }

    /// Decrypts with `key` for the recipient matching `recipient_cert`.
    ///
    /// If the RSA step fails, a random key of the right length is used instead and decryption
    /// continues, so a padding-oracle attacker sees the same failure either way
    /// (docs/architecture.md gotcha 5, Bleichenbacher/Marvin).
    pub fn decrypt(
        &self,
        recipient_cert: &Certificate<'_>,
        key: &dyn Decrypter,
        allow_des: bool,
        rng: &dyn Random,
    ) -> Result<(ContentCipher, KeyTransport, Zeroizing<Vec<u8>>), CmsError> {
        let cipher = self.cipher.clone()?;
        if cipher == ContentCipher::DesCbc && !allow_des {
            return Err(CmsError::Algorithm(
                crate::algorithms::AlgorithmError::Unsupported(
                    "single DES is disabled for this platform (RFC 8894 §2.9); use AES or 3DES"
                        .into(),
                ),
            ));
        }
        let ri = self
            .recipients
            .iter()
            .find(|ri| ri.rid.names(recipient_cert))
            .ok_or(CmsError::WrongRecipient)?;
        let mut cek = Zeroizing::new(vec![0u8; cipher.key_len()]);
        rng.fill(&mut cek).map_err(|_| CmsError::Crypto("random"))?;
        if let Ok(k) = key.decrypt_key(ri.transport, ri.encrypted_key) {
            if k.len() == cek.len() {
                cek.copy_from_slice(&k);
            }
        }
        let plain = cipher
            .decrypt(&cek, self.iv, &self.ciphertext)
            .map_err(|_| CmsError::Decrypt)?;
        Ok((cipher, ri.transport, plain))
    }
}

fn parse_ktri(t: Tlv<'_>) -> Result<KeyTransRecipient<'_>, CmsError> {
    let mut r = t.reader();
    r.expect(tag::INTEGER)?;
    let rid_tlv = r.read()?;
    let rid = super::signed_data::SignerId::parse(rid_tlv)?;
    let transport = KeyTransport::from_algorithm_identifier(r.expect(tag::SEQUENCE)?)?;
    let encrypted_key = r.expect(tag::OCTET_STRING)?.value;
    Ok(KeyTransRecipient {
        rid,
        transport,
        encrypted_key,
    })
}

/// How a built KeyTransRecipientInfo names the recipient certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientIdKind {
    /// IssuerAndSerialNumber (version 0; what SCEP clients expect in a CertRep).
    IssuerAndSerial,
    /// `[0]` subjectKeyIdentifier (version 2); the certificate must carry the extension.
    SubjectKeyId,
}

/// Encrypts `content` for the holder of `recipient`'s key, naming it by issuer and serial;
/// returns ContentInfo(envelopedData).
pub fn build(
    content: &[u8],
    recipient: &Certificate<'_>,
    transport: KeyTransport,
    cipher: ContentCipher,
    rng: &dyn Random,
) -> Result<Vec<u8>, CmsError> {
    build_for(
        content,
        recipient,
        RecipientIdKind::IssuerAndSerial,
        transport,
        cipher,
        rng,
    )
}

/// Like [`build`], choosing how the recipient is identified.
pub fn build_for(
    content: &[u8],
    recipient: &Certificate<'_>,
    rid: RecipientIdKind,
    transport: KeyTransport,
    cipher: ContentCipher,
    rng: &dyn Random,
) -> Result<Vec<u8>, CmsError> {
    let mut cek = Zeroizing::new(vec![0u8; cipher.key_len()]);
    let mut iv = vec![0u8; cipher.iv_len()];
    rng.fill(&mut cek).map_err(|_| CmsError::Crypto("random"))?;
    rng.fill(&mut iv).map_err(|_| CmsError::Crypto("random"))?;
    let encrypted_key = wrap_key(recipient.spki, transport, &cek)?;
    let ciphertext = cipher
        .encrypt(&cek, &iv, content)
        .map_err(|_| CmsError::Crypto("encrypt"))?;
    // RFC 5652 §6.2.1: ktri version 0 with issuerAndSerialNumber, 2 with subjectKeyIdentifier;
    // §6.1: EnvelopedData version 0 only when every recipient is version 0.
    let (ktri_version, rid_der, ed_version) = match rid {
        RecipientIdKind::IssuerAndSerial => (0, issuer_and_serial(recipient), 0),
        RecipientIdKind::SubjectKeyId => {
            let kid = subject_key_id(recipient).ok_or(CmsError::Crypto(
                "recipient certificate has no subjectKeyIdentifier",
            ))?;
            (2, writer::tlv(tag::context_primitive(0), &[kid]), 2)
        }
    };
    let ktri = writer::sequence(&[
        &writer::small_integer(ktri_version),
        &rid_der,
        &transport.algorithm_identifier(),
        &writer::octet_string(&encrypted_key),
    ]);
    let eci = writer::sequence(&[
        &writer::oid(oid::DATA),
        &writer::algorithm(cipher.oid(), Some(&writer::octet_string(&iv))),
        &writer::tlv(tag::context_primitive(0), &[&ciphertext]),
    ]);
    let ed = writer::sequence(&[
        &writer::small_integer(ed_version),
        &writer::set_of(&[&ktri]),
        &eci,
    ]);
    Ok(writer::sequence(&[
        &writer::oid(oid::ENVELOPED_DATA),
        &writer::context(0, &[&ed]),
    ]))
}

fn wrap_key(spki: &[u8], transport: KeyTransport, cek: &[u8]) -> Result<Vec<u8>, CmsError> {
    let public = PublicEncryptingKey::from_der(spki)
        .map_err(|_| CmsError::Crypto("recipient key is not RSA"))?;
    let mut out = vec![0u8; public.key_size_bytes()];
    let n = match transport {
        KeyTransport::RsaPkcs1v15 => {
            let k =
                Pkcs1PublicEncryptingKey::new(public).map_err(|_| CmsError::Crypto("rsa key"))?;
            k.encrypt(cek, &mut out)
                .map_err(|_| CmsError::Crypto("rsa encrypt"))?
                .len()
        }
        KeyTransport::RsaOaep(h) => {
            let k =
                OaepPublicEncryptingKey::new(public).map_err(|_| CmsError::Crypto("rsa key"))?;
            let alg = match h {
                DigestAlg::Sha1 => &OAEP_SHA1_MGF1SHA1,
                DigestAlg::Sha256 => &OAEP_SHA256_MGF1SHA256,
                DigestAlg::Sha384 => &OAEP_SHA384_MGF1SHA384,
                DigestAlg::Sha512 => &OAEP_SHA512_MGF1SHA512,
            };
            k.encrypt(alg, cek, &mut out, None)
                .map_err(|_| CmsError::Crypto("rsa encrypt"))?
                .len()
        }
    };
    out.truncate(n);
    Ok(out)
}
