//! Bounded work per request: RSA keys over 8192 bits and SignedData with too many certificates
//! or SignerInfos are refused before any expensive step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scepd_pki::algorithms::{
    AlgorithmError, DigestAlg, MAX_RSA_BITS, SignatureAlg, verify_signature,
};
use scepd_pki::cms::CmsError;
use scepd_pki::cms::signed_data::{MAX_CERTIFICATES, SignedData, SignedDataBuilder};
use scepd_pki::der::{oid, tag, writer};
use scepd_pki::keys::{KeyAlgorithm, SoftwareKey};
use scepd_pki::random::SystemRandom;
use scepd_pki::scep::client::self_signed_signer;
use scepd_pki::x509::{Certificate, name};

/// An RSA SubjectPublicKeyInfo with a `bits`-bit modulus (not a real key: never used to verify).
fn rsa_spki(bits: usize) -> Vec<u8> {
    let mut n = vec![0xffu8; bits / 8];
    n.insert(0, 0);
    let rsa_key = writer::sequence(&[
        &writer::tlv(tag::INTEGER, &[&n]),
        &writer::tlv(tag::INTEGER, &[&[1, 0, 1]]),
    ]);
    let mut bits_content = vec![0u8];
    bits_content.extend_from_slice(&rsa_key);
    writer::sequence(&[
        &writer::sequence(&[
            &writer::oid(oid::RSA_ENCRYPTION),
            &writer::tlv(tag::NULL, &[]),
        ]),
        &writer::tlv(tag::BIT_STRING, &[&bits_content]),
    ])
}

#[test]
fn rsa_keys_over_8192_bits_are_refused_before_verification() {
    for bits in [MAX_RSA_BITS + 8, 16_384, 65_536] {
        let e =
            verify_signature(&rsa_spki(bits), SignatureAlg::RsaSha256, b"m", &[0; 32]).unwrap_err();
        assert_eq!(
            e,
            AlgorithmError::BadKey("RSA key larger than 8192 bits"),
            "{bits}"
        );
    }
    // 8192 itself reaches the (failing) signature check, not the size refusal.
    let e = verify_signature(&rsa_spki(8192), SignatureAlg::RsaSha256, b"m", &[0; 32]);
    assert_ne!(
        e,
        Err(AlgorithmError::BadKey("RSA key larger than 8192 bits"))
    );
}

#[test]
fn signed_data_with_too_many_certificates_is_refused() {
    let (key, _) = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    let subject = name::build(&[(oid::AT_COMMON_NAME, "many certs")]);
    let cert_der = self_signed_signer(&key, &subject, 1_795_000_000, &SystemRandom).unwrap();
    let cert = Certificate::parse(&cert_der).unwrap();
    let build = |n: usize| {
        SignedDataBuilder {
            content: Some(b"x"),
            certificates: vec![cert_der.as_slice(); n],
            signer_cert: &cert,
            signer: &key,
            digest: DigestAlg::Sha256,
            attributes: vec![],
            signing_time: None,
        }
        .build()
        .unwrap()
    };
    let ok = build(MAX_CERTIFICATES);
    assert_eq!(
        SignedData::parse(&ok).unwrap().certificates.len(),
        MAX_CERTIFICATES
    );
    let too_many = build(MAX_CERTIFICATES + 1);
    assert!(matches!(
        SignedData::parse(&too_many),
        Err(CmsError::TooMany {
            what: "certificates",
            limit: MAX_CERTIFICATES
        })
    ));
}
