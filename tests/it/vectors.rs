//! Captured messages from real SCEP clients and servers (tests/data/vectors, provenance in its
//! README): our pki crate must parse them, verify their signatures, open the Apple request with
//! its published test key, and refuse any of them once a signature byte is flipped.
//! Pure library tests: no server.

use std::ops::Range;
use std::path::PathBuf;

use scepd_pki::algorithms::{
    ContentCipher, DigestAlg, KeyTransport, PublicKeyInfo, SignatureAlg, verify_signature,
};
use scepd_pki::ca::hierarchy::{HierarchySpec, bootstrap};
use scepd_pki::cms::enveloped_data::EnvelopedData;
use scepd_pki::cms::signed_data::{SignedData, SignerId};
use scepd_pki::der::{Reader, oid, tag};
use scepd_pki::encoding::decode_base64_lenient;
use scepd_pki::issue::{DeviceProfile, IssueError, issue_device_certificate};
use scepd_pki::keys::{KeyAlgorithm, SoftwareKey};
use scepd_pki::pkcs10::{CertificationRequest, Csr};
use scepd_pki::random::SystemRandom;
use scepd_pki::scep::{DecodeError, Envelope, MessageType, Recipient};
use scepd_pki::x509::{Certificate, name};

/// 2020-01-01T00:00:00Z: inside the validity of the Apple vector's CA (2016-05-29..2026-05-29).
const PINNED_2020: i64 = 1_577_836_800;
/// 2026-05-30T00:00:00Z: the day after that CA expired.
const PINNED_AFTER_EXPIRY: i64 = 1_780_099_200;
/// transactionID of the Apple PKCSReq (and echoed by the Apple-side CertRep).
const APPLE_TXID: &str = "A13090761A30F66664F85D37433D2065E1112BA1";

fn vector(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vectors")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The first certificate of a PEM file, as DER.
fn pem_cert(rel: &str) -> Vec<u8> {
    let text = String::from_utf8(vector(rel)).unwrap();
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    decode_base64_lenient(b64.as_bytes()).expect("PEM body is base64")
}

/// Byte range (in `der`) of the first SignerInfo's signature octets of a ContentInfo(SignedData),
/// found by walking the structure, not by guessing.
pub fn signature_range(der: &[u8]) -> Range<usize> {
    let mut ci = Reader::new(der).expect(tag::SEQUENCE).unwrap().reader();
    ci.expect(tag::OID).unwrap();
    let explicit = ci.expect(tag::context_constructed(0)).unwrap();
    let mut sd = explicit.reader().expect(tag::SEQUENCE).unwrap().reader();
    sd.expect(tag::INTEGER).unwrap();
    sd.expect(tag::SET).unwrap();
    sd.expect(tag::SEQUENCE).unwrap();
    sd.optional(tag::context_constructed(0)).unwrap();
    sd.optional(tag::context_constructed(1)).unwrap();
    let mut signers = sd.expect(tag::SET).unwrap().reader();
    let mut si = signers.expect(tag::SEQUENCE).unwrap().reader();
    si.expect(tag::INTEGER).unwrap();
    si.read().unwrap(); // sid
    si.expect(tag::SEQUENCE).unwrap(); // digestAlgorithm
    si.optional(tag::context_constructed(0)).unwrap(); // signedAttrs
    si.expect(tag::SEQUENCE).unwrap(); // signatureAlgorithm
    let sig = si.expect(tag::OCTET_STRING).unwrap();
    assert!(!sig.value.is_empty(), "empty signature");
    let start = sig.value.as_ptr() as usize - der.as_ptr() as usize;
    start..start + sig.value.len()
}

/// A copy of `der` with the middle octet of its SignerInfo signature flipped.
fn with_flipped_signature(der: &[u8]) -> Vec<u8> {
    let r = signature_range(der);
    let mut out = der.to_vec();
    out[r.start + r.len() / 2] ^= 0x01;
    out
}

fn rsa_bits(spki: &[u8]) -> Option<usize> {
    PublicKeyInfo::parse(spki).unwrap().rsa_bits()
}

fn attr_text(sd: &SignedData<'_>, o: &[u8]) -> Option<String> {
    let t = sd.signers[0].attribute(o).unwrap()?;
    Some(String::from_utf8(t.value.to_vec()).unwrap())
}

/// What the Apple request holds once opened.
struct AppleOpened {
    cipher: ContentCipher,
    transport: KeyTransport,
    message_data: Vec<u8>,
}

/// The Apple request opened with the vector CA's certificate and key.
fn apple_opened() -> AppleOpened {
    let der = vector("apple-micromdm/PKCSReq.der");
    let msg = Envelope::decode(&der).expect("signature verifies");
    let ca_der = pem_cert("apple-micromdm/ca.pem");
    let key = SoftwareKey::from_pkcs8(&vector("apple-micromdm/ca.key.pk8.der")).unwrap();
    let ca = [Recipient {
        cert: Certificate::parse(&ca_der).unwrap(),
        key: &key,
    }];
    let opened = msg.open(&ca, false, &SystemRandom).expect("opens");
    AppleOpened {
        cipher: opened.cipher,
        transport: opened.transport,
        message_data: opened.message_data().to_vec(),
    }
}

/// An Apple device's PKCSReq (2016) decodes, its SHA-1 signature verifies, and with the recipient
/// CA key it opens to 3DES-CBC + RSA v1.5 and a PKCS#10 for `com.apple.security.scep.<UUID>`:
/// old Apple devices can reach our envelope code.
#[test]
fn apple_pkcsreq_decodes_verifies_and_opens() {
    let der = vector("apple-micromdm/PKCSReq.der");
    let msg = Envelope::decode(&der).expect("signature verifies");
    assert_eq!(msg.header.message_type, MessageType::PkcsReq);
    assert_eq!(msg.header.transaction_id.as_str(), APPLE_TXID);
    assert_eq!(msg.header.digest, DigestAlg::Sha1);
    assert!(msg.header.signing_time.is_some());
    // The throwaway signer ("MDM SCEP SIGNER") is RSA-2048; the requested key is RSA-1024.
    assert_eq!(
        name::common_name(msg.signer_cert.subject).as_deref(),
        Some("MDM SCEP SIGNER")
    );
    assert_eq!(rsa_bits(msg.signer_cert.spki), Some(2048));

    let ca_der = pem_cert("apple-micromdm/ca.pem");
    let ca = Certificate::parse(&ca_der).unwrap();
    assert_eq!(rsa_bits(ca.spki), Some(4096));
    // The recipient certificate has expired: only a pinned clock sees it valid.
    assert!(ca.is_valid_at(PINNED_2020));
    assert!(!ca.is_valid_at(PINNED_AFTER_EXPIRY));

    let opened = apple_opened();
    assert_eq!(opened.cipher, ContentCipher::DesEde3Cbc);
    assert_eq!(opened.transport, KeyTransport::RsaPkcs1v15);
    let csr = AppleCsr::read(&opened.message_data);
    assert!(csr.verify(), "the CSR self-signature is genuine");
    assert_eq!(csr.version, 2, "what this Apple device sent");
    let cn = name::common_name(csr.subject).expect("CSR has a CN");
    assert!(cn.starts_with("com.apple.security.scep."), "{cn}");
    assert_eq!(rsa_bits(csr.spki), Some(1024));
}

/// The Apple CSR passes `CertificationRequest::parse_and_verify`, so the server can certify it
/// (it carries version INTEGER 2 where RFC 2986 says 0; OpenSSL and Go parse it).
#[test]
fn apple_csr_passes_parse_and_verify() {
    let opened = apple_opened();
    let csr = CertificationRequest::parse_and_verify(&opened.message_data)
        .expect("a real Apple CSR is accepted");
    let cn = name::common_name(csr.subject).expect("CSR has a CN");
    assert!(cn.starts_with("com.apple.security.scep."), "{cn}");
    assert_eq!(rsa_bits(csr.spki), Some(1024));
    assert!(csr.challenge_password.is_none(), "this profile sent none");
}

/// The Apple CSR read field by field (independently of `parse_and_verify`).
struct AppleCsr<'a> {
    info: &'a [u8],
    version: u64,
    subject: &'a [u8],
    spki: &'a [u8],
    signature: &'a [u8],
}

impl<'a> AppleCsr<'a> {
    fn read(der: &'a [u8]) -> Self {
        let csr = Reader::new(der).expect(tag::SEQUENCE).unwrap();
        let mut c = csr.reader();
        let info = c.expect(tag::SEQUENCE).unwrap();
        let alg = c.expect(tag::SEQUENCE).unwrap();
        assert_eq!(
            alg.reader().expect(tag::OID).unwrap().value,
            oid::SHA1_WITH_RSA
        );
        let bits = c.expect(tag::BIT_STRING).unwrap().value;
        let mut i = info.reader();
        let version = i.expect(tag::INTEGER).unwrap().small_uint().unwrap();
        Self {
            info: info.raw,
            version,
            subject: i.expect(tag::SEQUENCE).unwrap().raw,
            spki: i.expect(tag::SEQUENCE).unwrap().raw,
            signature: &bits[1..],
        }
    }

    fn verify(&self) -> bool {
        verify_signature(self.spki, SignatureAlg::RsaSha1, self.info, self.signature).is_ok()
    }
}

/// The default policy refuses the Apple request's RSA-1024 key with a reason naming 1024; a fleet
/// that sets `min_rsa_bits = 1024` gets it certified.
#[test]
fn apple_rsa_1024_key_is_refused_by_default_and_issued_when_allowed() {
    let opened = apple_opened();
    let csr = Csr::parse_and_verify(&opened.message_data).unwrap();

    let now = super::testkit::unix_now();
    let h = bootstrap(
        &HierarchySpec {
            organization: "Vector Test".into(),
            root_key: KeyAlgorithm::EcP256,
            intermediate_key: KeyAlgorithm::EcP256,
            ra_key: KeyAlgorithm::Rsa2048,
            root_validity_secs: 10 * 365 * 86_400,
            intermediate_validity_secs: 5 * 365 * 86_400,
            ra_validity_secs: 2 * 365 * 86_400,
            now,
        },
        &SystemRandom,
    )
    .unwrap();
    let issuer = Certificate::parse(&h.intermediate.cert_der).unwrap();
    let issue = |profile: &DeviceProfile| {
        issue_device_certificate(
            &csr,
            profile,
            &issuer,
            &h.intermediate.key,
            now,
            &SystemRandom,
        )
    };
    match issue(&DeviceProfile::default()) {
        Err(IssueError::Key(reason)) => assert!(reason.contains("1024"), "{reason}"),
        other => panic!("expected IssueError::Key, got {other:?}"),
    }
    let legacy = DeviceProfile {
        min_rsa_bits: 1024,
        ..DeviceProfile::default()
    };
    let cert = issue(&legacy).expect("RSA-1024 allowed by policy");
    let parsed = Certificate::parse(&cert.der).unwrap();
    assert_eq!(parsed.spki, csr.request.spki);
    assert_eq!(parsed.issuer, issuer.subject);
    assert!(parsed.verify_signed_by(issuer.spki).is_ok());
    assert!(cert.subject.contains("com.apple.security.scep."));
}

/// A Windows device's PKCSReq (2024) decodes with its SHA-1 signature verified, and its envelope
/// shows RSAES-OAEP (SHA-1) key transport with AES-128-CBC: Windows requests are readable.
#[test]
fn windows_pkcsreq_decodes_with_oaep_and_aes128() {
    let der = vector("windows/PKCSReq-windows.der");
    let msg = Envelope::decode(&der).expect("signature verifies");
    assert_eq!(msg.header.message_type, MessageType::PkcsReq);
    assert_eq!(
        msg.header.transaction_id.as_str(),
        "252e27f890ea721a5a5790225ce6b42a02d14fbf"
    );
    assert_eq!(msg.header.digest, DigestAlg::Sha1);
    assert_eq!(
        name::common_name(msg.signer_cert.subject).as_deref(),
        Some("SCEP Protocol Certificate")
    );
    let aki = msg
        .signer_cert
        .extension(oid::AUTHORITY_KEY_IDENTIFIER)
        .expect("signer cert carries an AKI");
    assert!(aki.critical, "Windows marks it critical");

    let sd = SignedData::parse(&der).unwrap();
    let env = sd.content.as_deref().expect("pkcsPKIEnvelope");
    let ed = EnvelopedData::parse(env).unwrap();
    assert_eq!(ed.cipher, Ok(ContentCipher::Aes128Cbc));
    assert_eq!(ed.recipients.len(), 1);
    assert_eq!(
        ed.recipients[0].transport,
        KeyTransport::RsaOaep(DigestAlg::Sha1)
    );
}

/// sscep's PKCSReq decodes although its signer serial is 32 octets (over RFC 5280's 20), with
/// SHA-256, RSA-2048, v1.5 key transport and AES-256: OpenSSL-based clients work.
#[test]
fn sscep_pkcsreq_decodes_with_a_32_octet_signer_serial() {
    let der = vector("sscep/sscep_pkcsreq.der");
    let msg = Envelope::decode(&der).expect("signature verifies");
    assert_eq!(msg.header.message_type, MessageType::PkcsReq);
    assert_eq!(
        msg.header.transaction_id.as_str(),
        "2CEA9D1E5DC298DA9198663B976F6D0C"
    );
    assert_eq!(msg.header.digest, DigestAlg::Sha256);
    assert_eq!(msg.signer_cert.serial.len(), 32);
    assert_eq!(rsa_bits(msg.signer_cert.spki), Some(2048));

    let sd = SignedData::parse(&der).unwrap();
    match sd.signers[0].sid {
        SignerId::IssuerSerial(_, serial) => assert_eq!(serial.len(), 32),
        other => panic!("{other:?}"),
    }
    let ed = EnvelopedData::parse(sd.content.as_deref().unwrap()).unwrap();
    assert_eq!(ed.cipher, Ok(ContentCipher::Aes256Cbc));
    assert_eq!(ed.recipients[0].transport, KeyTransport::RsaPkcs1v15);
}

/// A Microsoft NDES CertRep (signer certificate not embedded, extra Microsoft attribute) parses
/// as SignedData without panicking, and reports its signer.
#[test]
fn ndes_cert_rep_parses_without_its_signer_certificate() {
    let der = vector("ndes/CertRep_NoCertificatesForSigners.der");
    let sd = SignedData::parse(&der).expect("parses");
    assert_eq!(sd.content_type, oid::DATA);
    assert_eq!(sd.signers.len(), 1);
    let signer = &sd.signers[0];
    assert_eq!(signer.digest, Ok(DigestAlg::Sha1));
    match signer.sid {
        SignerId::IssuerSerial(issuer, serial) => {
            assert!(!issuer.is_empty());
            assert_eq!(
                scepd_pki::hex(serial),
                "4700000002f5400d7585dd8788000000000002"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        sd.signer_certificate(signer).is_none(),
        "NDES did not embed it"
    );
    assert_eq!(attr_text(&sd, oid::SCEP_MESSAGE_TYPE).as_deref(), Some("3"));
    assert_eq!(attr_text(&sd, oid::SCEP_PKI_STATUS).as_deref(), Some("0"));
    let ms_attr = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x15, 0x26]; // 1.3.6.1.4.1.311.21.38
    assert!(signer.signed_attrs.iter().any(|a| a.oid == ms_attr));
    // Handing it to the request decoder is an error, never a panic.
    assert!(Envelope::decode(&der).is_err());
}

/// The CertRep answering the Apple request parses, is signed by the vector CA (its signature
/// verifies), and echoes the request's transactionID with status SUCCESS: our reading of the
/// response shape matches a real server's.
#[test]
fn apple_side_cert_rep_parses_and_verifies() {
    let der = vector("apple-micromdm/CertRep.der");
    let sd = SignedData::parse(&der).expect("parses");
    assert_eq!(sd.signers.len(), 1);
    let signer = &sd.signers[0];
    assert_eq!(signer.digest, Ok(DigestAlg::Sha1));
    let ca_der = pem_cert("apple-micromdm/ca.pem");
    let cert = sd
        .signer_certificate(signer)
        .expect("signer certificate embedded");
    assert_eq!(cert.raw, ca_der.as_slice(), "signed by the vector CA");
    signer
        .verify(
            sd.content_type,
            sd.content.as_deref().unwrap_or(&[]),
            cert.spki,
        )
        .expect("CertRep signature verifies");
    assert_eq!(attr_text(&sd, oid::SCEP_MESSAGE_TYPE).as_deref(), Some("3"));
    assert_eq!(attr_text(&sd, oid::SCEP_PKI_STATUS).as_deref(), Some("0"));
    assert_eq!(
        attr_text(&sd, oid::SCEP_TRANSACTION_ID).as_deref(),
        Some(APPLE_TXID)
    );
    assert!(
        sd.certificates.len() >= 2,
        "issued certificate and CA carried"
    );
    assert!(EnvelopedData::parse(sd.content.as_deref().unwrap()).is_ok());

    // One flipped signature octet and it no longer verifies.
    let bad = with_flipped_signature(&der);
    let sd = SignedData::parse(&bad).unwrap();
    let cert = sd.signer_certificate(&sd.signers[0]).unwrap();
    assert!(
        sd.signers[0]
            .verify(
                sd.content_type,
                sd.content.as_deref().unwrap_or(&[]),
                cert.spki
            )
            .is_err()
    );
}

/// Each captured request with one signature octet flipped is refused as BadSignature (answered
/// with a signed badMessageCheck), never accepted and never a parse error.
#[test]
fn tampered_captured_requests_fail_with_bad_signature() {
    for rel in [
        "apple-micromdm/PKCSReq.der",
        "windows/PKCSReq-windows.der",
        "sscep/sscep_pkcsreq.der",
    ] {
        let der = vector(rel);
        assert!(Envelope::decode(&der).is_ok(), "{rel}: original verifies");
        let bad = with_flipped_signature(&der);
        match Envelope::decode(&bad) {
            Err(DecodeError::BadSignature { header, .. }) => {
                assert_eq!(header.message_type, MessageType::PkcsReq, "{rel}");
            }
            other => panic!("{rel}: expected BadSignature, got {other:?}"),
        }
    }
}
